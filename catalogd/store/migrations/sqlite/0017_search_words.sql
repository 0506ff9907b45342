-- Nothing on SQLite: FTS5 has prefix indexes and reads them in rank
-- order. (On PostgreSQL this migration adds the search_words lexicon that
-- expands a typed prefix into the words it stands for; see searchpg.go.)
SELECT 1;
