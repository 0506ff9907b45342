-- Nothing on SQLite: FTS5 matches the name column ({search_text}) from its
-- own index already. (On PostgreSQL this migration indexes the name words
-- alone; see search.go, type matcher.)
SELECT 1;
