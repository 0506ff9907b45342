-- A lexicon of the words each searchable table's search_tsv holds (see
-- searchpg.go, expandPrefix). A query whose last word is typed as a
-- prefix ("broken heart" is 'broken' & 'heart':*) made GIN build a bitmap
-- of every row holding any word that starts with "heart" (~120,000 songs
-- at 1M) before intersecting it with "broken": 40 ms. Rewritten as an OR
-- of the exact words the prefix stands for ('broken' & ('heart' |
-- 'hearts' | …)), GIN intersects the posting lists with skipping instead.
-- The words are lexemes as search_tsv stores them (the 'simple'
-- configuration: lowercased, not stemmed) under the C collation, so a
-- range of the primary key is a byte prefix, as tsquery's :* is.
--
-- Insert statements add their rows' words (one statement trigger with a
-- transition table, so a bulk insert is one INSERT here); updates add
-- them only when search_tsv changes (UPDATE OF a generated column fires
-- when a column it depends on is set), so popularity updates (event
-- ingest) never fire it. Words of deleted or renamed rows stay: a stale
-- word expands to a word that matches nothing.
CREATE TABLE search_words (
    kind TEXT NOT NULL, -- the table: songs, artists, albums, playlists
    word TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (kind, word)
);

INSERT INTO search_words (kind, word)
SELECT DISTINCT 'songs', w FROM songs, unnest(tsvector_to_array(search_tsv)) w
UNION SELECT DISTINCT 'artists', w FROM artists, unnest(tsvector_to_array(search_tsv)) w
UNION SELECT DISTINCT 'albums', w FROM albums, unnest(tsvector_to_array(search_tsv)) w
UNION SELECT DISTINCT 'playlists', w FROM playlists, unnest(tsvector_to_array(search_tsv)) w;

-- Words in order: two writers adding the same new words wait for each
-- other in the same order instead of deadlocking.
CREATE FUNCTION search_words_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_words (kind, word)
    SELECT DISTINCT TG_TABLE_NAME, w FROM new_rows, unnest(tsvector_to_array(new_rows.search_tsv)) w
    ORDER BY 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE FUNCTION search_words_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_words (kind, word)
    SELECT TG_TABLE_NAME, w FROM unnest(tsvector_to_array(NEW.search_tsv)) w
    ORDER BY 2
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE TRIGGER songs_words_insert AFTER INSERT ON songs
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_words_insert();
CREATE TRIGGER songs_words_update AFTER UPDATE OF search_tsv ON songs
    FOR EACH ROW WHEN (OLD.search_tsv IS DISTINCT FROM NEW.search_tsv) EXECUTE FUNCTION search_words_update();
CREATE TRIGGER artists_words_insert AFTER INSERT ON artists
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_words_insert();
CREATE TRIGGER artists_words_update AFTER UPDATE OF search_tsv ON artists
    FOR EACH ROW WHEN (OLD.search_tsv IS DISTINCT FROM NEW.search_tsv) EXECUTE FUNCTION search_words_update();
CREATE TRIGGER albums_words_insert AFTER INSERT ON albums
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_words_insert();
CREATE TRIGGER albums_words_update AFTER UPDATE OF search_tsv ON albums
    FOR EACH ROW WHEN (OLD.search_tsv IS DISTINCT FROM NEW.search_tsv) EXECUTE FUNCTION search_words_update();
CREATE TRIGGER playlists_words_insert AFTER INSERT ON playlists
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION search_words_insert();
CREATE TRIGGER playlists_words_update AFTER UPDATE OF search_tsv ON playlists
    FOR EACH ROW WHEN (OLD.search_tsv IS DISTINCT FROM NEW.search_tsv) EXECUTE FUNCTION search_words_update();
