-- Nothing on SQLite: FTS5 rowids are rank keys, so the full-text index is
-- read in rank order already. (On PostgreSQL this migration makes the
-- rank_key indexes carry search_tsv for index-only walks; see search.go.)
SELECT 1;
