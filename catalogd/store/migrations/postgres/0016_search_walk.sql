-- Popular-first search without heap reads (see search.go, pgSearch): the
-- rank_key indexes that search walks carry search_tsv, so a walk in
-- rank order checks each row's words in the index (an index-only scan)
-- instead of fetching the row from the table. At 1M songs the songs heap
-- is about six times shared_buffers: every row fetched in rank order was
-- a random page, most of them not cached. The new indexes replace the
-- rank_key-only ones (same key, same partial predicate), so a popularity
-- change still writes one rank index entry per table.
CREATE INDEX songs_rank_search_ready ON songs (rank_key) INCLUDE (search_tsv) WHERE status = 'ready';
DROP INDEX songs_rank_ready;
CREATE INDEX artists_rank_search ON artists (rank_key) INCLUDE (search_tsv);
DROP INDEX artists_rank;
CREATE INDEX albums_rank_search ON albums (rank_key) INCLUDE (search_tsv);
DROP INDEX albums_rank;
CREATE INDEX playlists_rank_search_public ON playlists (rank_key) INCLUDE (search_tsv) WHERE is_public;
DROP INDEX playlists_rank_public;
