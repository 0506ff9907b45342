package store

import (
	"context"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

// fragmentSearch gives every full-text index of s many segments: each
// write transaction adds one to the index it touches (a popularity that
// doubles moves the row to another rank_key: a delete and an insert).
func fragmentSearch(t *testing.T, s *Store, c catalog) {
	t.Helper()
	ctx := context.Background()
	for i := range 3 * maxSearchSegments {
		if _, err := s.CreateSong(ctx, NewSong{AlbumID: c.album.ID, Title: fmt.Sprintf("Night Fever %d", i), Genre: "disco",
			Status: StatusReady, CurrentVersion: 1}); err != nil {
			t.Fatal(err)
		}
		mustExec(t, s, `UPDATE artists SET popularity = popularity * 2 + 1 WHERE id = $1`, c.queen.ID)
		mustExec(t, s, `UPDATE albums SET popularity = popularity * 2 + 1 WHERE id = $1`, c.album.ID)
		mustExec(t, s, `INSERT INTO playlists (owner_user_id, name, is_public, name_key, search_text, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4, 0, 0)`, c.owner.ID, fmt.Sprintf("Fever List %d", i), true, fmt.Sprintf("fever list %d", i))
	}
	segs, err := s.SearchSegments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for tb, n := range segs {
		if n <= maxSearchSegments {
			t.Fatalf("%s has %d segments after %d writes; the test needs more than %d", tb, n, 3*maxSearchSegments, maxSearchSegments)
		}
	}
}

// searchSnapshot is what a few searches answer, to compare before and
// after the indexes are merged.
func searchSnapshot(t *testing.T, s *Store) []any {
	t.Helper()
	ctx := context.Background()
	var out []any
	for _, q := range []string{"night", "night fever", "fever 1", "fev", "queen", "opera", "rhapsody", "n", "zzzz"} {
		pq := ParseQuery(q)
		songs, err := s.SearchSongs(ctx, pq, 50, 0)
		if err != nil {
			t.Fatal(err)
		}
		artists, err := s.SearchArtists(ctx, pq, 50, 0)
		if err != nil {
			t.Fatal(err)
		}
		albums, err := s.SearchAlbums(ctx, pq, 50, 0)
		if err != nil {
			t.Fatal(err)
		}
		lists, err := s.SearchPlaylists(ctx, pq, 50, 0)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, q, songs, artists, albums, lists)
	}
	return out
}

func TestMergeSearchIndexes(t *testing.T) {
	clock := newTestClock()
	s, err := Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "riff.db"), Options{Now: clock.Now, SearchUpkeep: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	c := newCatalog(t, s)
	fragmentSearch(t, s, c)
	before := searchSnapshot(t, s)
	if p, _ := s.SearchSongs(ctx, ParseQuery("night fever"), 50, 0); p.Total != 3*maxSearchSegments {
		t.Fatalf("night fever: %d songs, want %d", p.Total, 3*maxSearchSegments)
	}

	// Below the threshold nothing happens; over it, every index ends in
	// one segment and searches answer exactly as before.
	if err := s.MergeSearchIndexes(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	if segs, _ := s.SearchSegments(ctx); segs["songs_fts"] <= maxSearchSegments {
		t.Fatalf("merged although under the threshold: %v", segs)
	}
	if err := s.MergeSearchIndexes(ctx, 1); err != nil {
		t.Fatal(err)
	}
	segs, err := s.SearchSegments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range ftsTables {
		if segs[tb] != 1 {
			t.Errorf("%s: %d segments after merging, want 1", tb, segs[tb])
		}
	}
	if after := searchSnapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("searches changed by merging:\nbefore %+v\nafter  %+v", before, after)
	}
	for _, tb := range ftsTables {
		mustExec(t, s, `INSERT INTO `+tb+`(`+tb+`) VALUES ('integrity-check')`)
	}
	// Writes after a merge are found.
	if _, err := s.CreateSong(ctx, NewSong{AlbumID: c.album.ID, Title: "Night Fever Reprise", Status: StatusReady, CurrentVersion: 1}); err != nil {
		t.Fatal(err)
	}
	if p, _ := s.SearchSongs(ctx, ParseQuery("fever reprise"), 50, 0); p.Total != 1 {
		t.Errorf("fever reprise after merging: %+v", p)
	}
}

// TestSearchUpkeepAtOpen: a database with fragmented indexes (as an older
// binary, or a busy writer, leaves it) is merged in the background as soon
// as a Store opens it.
func TestSearchUpkeepAtOpen(t *testing.T) {
	clock := newTestClock()
	dsn := "file:" + filepath.Join(t.TempDir(), "riff.db")
	ctx := context.Background()
	s, err := Open(ctx, dsn, Options{Now: clock.Now, SearchUpkeep: -1})
	if err != nil {
		t.Fatal(err)
	}
	fragmentSearch(t, s, newCatalog(t, s))
	before := searchSnapshot(t, s)
	s.Close()

	s, err = Open(ctx, dsn, Options{Now: clock.Now, SearchUpkeep: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		segs, err := s.SearchSegments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		merged := true
		for _, n := range segs {
			merged = merged && n <= maxSearchSegments
		}
		if merged {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("indexes not merged in the background: %v", segs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := searchSnapshot(t, s); !reflect.DeepEqual(before, after) {
		t.Errorf("searches changed by merging:\nbefore %+v\nafter  %+v", before, after)
	}
}

// TestSearchStatistics: no planner statistics for the full-text shadow
// tables survive Optimize or a reopen (they make FTS5 re-prepare its
// statements on every lookup), while those of the other tables stay.
func TestSearchStatistics(t *testing.T) {
	clock := newTestClock()
	dsn := "file:" + filepath.Join(t.TempDir(), "riff.db")
	ctx := context.Background()
	s, err := Open(ctx, dsn, Options{Now: clock.Now, SearchUpkeep: -1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Seed(ctx, SeedOptions{Songs: 2000, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	stats := func(s *Store) (fts, other int) {
		t.Helper()
		for _, stat := range []string{"sqlite_stat1", "sqlite_stat4"} {
			var a, b int
			if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FILTER (WHERE tbl LIKE '%\_fts\_%' ESCAPE '\'),
				COUNT(*) FILTER (WHERE tbl NOT LIKE '%\_fts\_%' ESCAPE '\') FROM `+stat).Scan(&a, &b); err != nil {
				t.Fatal(err)
			}
			fts, other = fts+a, other+b
		}
		return fts, other
	}
	// What an older binary's Optimize (plain ANALYZE) left.
	mustExec(t, s, `ANALYZE`)
	if fts, _ := stats(s); fts == 0 {
		t.Fatal("ANALYZE wrote no statistics for the full-text tables: the test proves nothing")
	}
	s.Close()
	s, err = Open(ctx, dsn, Options{Now: clock.Now, SearchUpkeep: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if fts, other := stats(s); fts != 0 || other == 0 {
		t.Errorf("after reopening: %d full-text statistics rows (want 0), %d others (want some)", fts, other)
	}
	if err := s.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	if fts, other := stats(s); fts != 0 || other == 0 {
		t.Errorf("after Optimize: %d full-text statistics rows (want 0), %d others (want some)", fts, other)
	}
	segs, err := s.SearchSegments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range ftsTables {
		if segs[tb] != 1 {
			t.Errorf("after Optimize %s has %d segments, want 1", tb, segs[tb])
		}
	}
}

// TestPostgresSearchPaths: pgSearch answers a common term from its walk
// of the most popular rows, a rare one from the GIN index and one in
// between by walking further; every way gives exactly the first n
// results of a plain sort in ranking order (tier 0, 1, 2, then rank_key),
// and a total that is exact when not capped and capped when more than
// MaxSearchTotal rows match.
func TestPostgresSearchPaths(t *testing.T) {
	s := openPostgres(t, newTestClock())
	ctx := context.Background()
	if _, err := s.Seed(ctx, SeedOptions{Songs: 6000, Seed: 11, TrendingSongs: -1}); err != nil {
		t.Fatal(err)
	}
	mustExec(t, s, `VACUUM ANALYZE songs`) // the walk's size estimate (reltuples)
	// The most common name word, one of a few hundred rows, one of a few
	// dozen, and a credited artist's word that is in few titles.
	word := func(q string) string {
		t.Helper()
		var w string
		if err := s.w.QueryRowContext(ctx, q).Scan(&w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	stat := `SELECT word FROM ts_stat('SELECT ts_filter(search_tsv, ''{a}'') FROM songs') WHERE length(word) > 2 AND `
	common := word(stat + `true ORDER BY ndoc DESC, word LIMIT 1`)
	mid := word(stat + `ndoc BETWEEN 150 AND 400 ORDER BY ndoc, word LIMIT 1`)
	rare := word(stat + `ndoc BETWEEN 20 AND 60 ORDER BY ndoc, word LIMIT 1`)
	credit := word(`SELECT word FROM ts_stat('SELECT search_tsv FROM songs', 'b') WHERE length(word) > 3 ORDER BY ndoc DESC, word LIMIT 1`)
	paths := map[string]bool{}
	for _, text := range []string{common, mid, rare, credit, common[:1], common[:2], mid[:3], common + " " + mid[:2], "zzzzqx"} {
		q := ParseQuery(text)
		all, names := s.matchers(songSearch, q)
		for _, n := range []int{1, 20, 300, MaxSearchTotal} {
			matches, total := checkPgSearch(t, s, q, all, names, text, n)
			paths[fmt.Sprint(matches > MaxSearchTotal, total > MaxSearchTotal)] = true
		}
	}
	if !paths["true true"] || !paths["false false"] {
		t.Errorf("paths taken %v: want both a capped and an exact total", paths)
	}
}

// checkPgSearch runs pgSearch for the first n results of q (typed as
// text) and checks them against searchReference: the same keys in the same
// order, and a total that is exact unless capped. It returns the real
// number of matches and the total pgSearch gave.
func checkPgSearch(t *testing.T, s *Store, q Query, all, names matcher, text string, n int) (matches, total int) {
	t.Helper()
	got, total, err := s.pgSearch(context.Background(), songSearch, q, all, names, n)
	if err != nil {
		t.Fatal(err)
	}
	got = got[:min(n, len(got))]
	want, matches := searchReference(t, s, q, n)
	if !slices.Equal(got, want) {
		t.Errorf("%q, first %d: got %d keys %v…, want %d %v…", text, n, len(got), head(got), len(want), head(want))
	}
	switch {
	case total <= MaxSearchTotal && total != matches:
		t.Errorf("%q: total %d, want %d (not capped: exact)", text, total, matches)
	case matches > MaxSearchTotal && total <= MaxSearchTotal:
		t.Errorf("%q: total %d for %d matches, want capped", text, total, matches)
	}
	return matches, total
}

// searchReference ranks every song matching q with one plain sort and
// returns the first n rank keys and how many songs match.
func searchReference(t *testing.T, s *Store, q Query, n int) ([]int64, int) {
	t.Helper()
	ctx := context.Background()
	all, names := s.matchers(songSearch, q)
	cond := `s.search_tsv @@ to_tsquery('simple', $1) AND s.status = 'ready'`
	var matches int
	if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM songs s WHERE `+cond, all.row).Scan(&matches); err != nil {
		t.Fatal(err)
	}
	keys, err := queryColumn[int64](ctx, s.w, `SELECT s.rank_key FROM songs s WHERE `+cond+`
		ORDER BY s.name_key = $2 DESC, s.search_tsv @@ to_tsquery('simple', $3) DESC, s.rank_key + 0 DESC LIMIT $4`,
		all.row, q.Key, names.row, n)
	if err != nil {
		t.Fatal(err)
	}
	return keys, matches
}

func head(k []int64) []int64 { return k[:min(len(k), 5)] }

// TestSearchTotalsAndPages, on both databases over a seeded catalog:
// pages of a search are slices of one long answer in ranking order (a
// short prefix, a common word, two words), a total that is not capped
// is exactly how many rows match (the whole answer), and a capped one
// means more than MaxSearchTotal do. On PostgreSQL a common word's
// total comes from the popular-first walk and the others from GIN.
func TestSearchTotalsAndPages(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, _ *testClock) {
		ctx := context.Background()
		if _, err := s.Seed(ctx, SeedOptions{Songs: 3000, Seed: 5, TrendingSongs: -1}); err != nil {
			t.Fatal(err)
		}
		if s.Dialect() == Postgres {
			mustExec(t, s, `VACUUM ANALYZE songs`)
		}
		capped := 0
		for _, text := range []string{"l", "lo", "love", "night", "love n", "heart", "zzzzqx"} {
			q := ParseQuery(text)
			whole, err := s.SearchSongs(ctx, q, MaxSearchTotal, 0)
			if err != nil {
				t.Fatal(err)
			}
			ids := songIDs(whole.Items)
			switch {
			case whole.Capped:
				capped++
				if whole.Total != MaxSearchTotal || len(ids) != MaxSearchTotal {
					t.Errorf("%q: capped with total %d and %d songs, want %d of each", text, whole.Total, len(ids), MaxSearchTotal)
				}
			case whole.Total != len(ids):
				t.Errorf("%q: total %d, but %d songs match", text, whole.Total, len(ids))
			}
			for off := 0; off < min(len(ids), 60); off += 7 {
				p, err := s.SearchSongs(ctx, q, 7, off)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := songIDs(p.Items), ids[off:min(len(ids), off+7)]; !slices.Equal(got, want) {
					t.Errorf("%q page at %d = %v, want %v (the long answer's)", text, off, got, want)
				}
				if p.Total != whole.Total || p.Capped != whole.Capped {
					t.Errorf("%q page at %d: total %d capped %v, want %d %v", text, off, p.Total, p.Capped, whole.Total, whole.Capped)
				}
			}
		}
		if capped == 0 {
			t.Error("no query matched more than MaxSearchTotal songs: seed more")
		}
	})
}

func songIDs(songs []Song) []int64 {
	ids := make([]int64, len(songs))
	for i, so := range songs {
		ids[i] = so.ID
	}
	return ids
}

// TestPostgresSearchPrefixWords: a two-word query whose last word is
// typed as a prefix reads GIN with the prefix spelled out as the words
// of the search_words lexicon (migration 0017), and gives exactly what a
// plain sort in ranking order gives: for prefixes of a few words, of
// more than maxPrefixWords (left as a prefix), of a word added by an
// insert after the lexicon was filled, and of a renamed song's new and
// old words. Popularity updates leave the lexicon alone.
func TestPostgresSearchPrefixWords(t *testing.T) {
	s := openPostgres(t, newTestClock())
	ctx := context.Background()
	if _, err := s.Seed(ctx, SeedOptions{Songs: 6000, Seed: 13, TrendingSongs: -1}); err != nil {
		t.Fatal(err)
	}
	c := newCatalog(t, s)
	// The seed's words (bulk inserts) are all in the lexicon, and no other.
	var missing, extra int
	if err := s.w.QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM (SELECT DISTINCT unnest(tsvector_to_array(search_tsv)) FROM songs
			EXCEPT SELECT word FROM search_words WHERE kind = 'songs') m),
		(SELECT count(*) FROM (SELECT word FROM search_words WHERE kind = 'songs'
			EXCEPT SELECT DISTINCT unnest(tsvector_to_array(search_tsv)) FROM songs) e)`).Scan(&missing, &extra); err != nil {
		t.Fatal(err)
	}
	if missing != 0 || extra != 0 {
		t.Errorf("lexicon of songs: %d words missing, %d extra", missing, extra)
	}
	// After the seed: one song with a word of its own, and a prefix that
	// stands for more words than are expanded.
	add := func(title string) int64 {
		t.Helper()
		so, err := s.CreateSong(ctx, NewSong{AlbumID: c.album.ID, Title: title, Status: StatusReady, CurrentVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		return so.ID
	}
	quake := add("Zyxw Heartquake")
	for i := range maxPrefixWords + 1 {
		add(fmt.Sprintf("Zyxw Qqword%d", i))
	}
	mustExec(t, s, `VACUUM ANALYZE songs`) // the walk's size estimate (reltuples)
	var common, mid string
	stat := `SELECT word FROM ts_stat('SELECT ts_filter(search_tsv, ''{a}'') FROM songs') WHERE length(word) > 4 AND `
	if err := s.w.QueryRowContext(ctx, stat+`true ORDER BY ndoc DESC, word LIMIT 1`).Scan(&common); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(ctx, stat+`ndoc BETWEEN 100 AND 400 ORDER BY ndoc, word LIMIT 1`).Scan(&mid); err != nil {
		t.Fatal(err)
	}
	check := func(text string, expanded bool) {
		t.Helper()
		q := ParseQuery(text)
		words, err := s.expandPrefix(ctx, songSearch, q)
		if err != nil {
			t.Fatal(err)
		}
		if (words != nil) != expanded {
			t.Errorf("%q: expanded to %v, want expanded %v", text, words, expanded)
		}
		all, names := s.matchers(songSearch, q)
		for _, n := range []int{1, 20, MaxSearchTotal} {
			checkPgSearch(t, s, q, all, names, text, n)
		}
	}
	check(mid+" "+common[:3], true)
	check(common+" "+mid[:len(mid)-1], true)
	check(mid+" "+common[:1], true)  // every word starting with that letter: few in the seed's vocabulary
	check("zyxw heartq", true)       // inserted after the lexicon was filled
	check("zyxw qqword", false)      // more than maxPrefixWords words: the prefix as typed
	check("zyxw qqword1", true)      // qqword1, qqword10…19
	check(mid+" "+common+" ", false) // typed whole: nothing to expand
	check(common[:4], false)         // one word: its bitmap is its matches

	// Renamed: the new word is found; the old one stays in the lexicon and
	// matches nothing (check: no word matches, total 0).
	mustExec(t, s, `UPDATE songs SET title = 'Zyxw Heartbreaker', name_key = 'zyxw heartbreaker',
		search_text = 'zyxw heartbreaker' WHERE id = $1`, quake)
	check("zyxw heartb", true)
	check("zyxw heartq", true)
	if got, err := s.SearchSongs(ctx, ParseQuery("zyxw heartb"), 10, 0); err != nil || !slices.Equal(songIDs(got.Items), []int64{quake}) {
		t.Errorf("after the rename, zyxw heartb found %v (%v), want [%d]", songIDs(got.Items), err, quake)
	}

	// The update trigger fires when the searched text changes, not on
	// popularity or on the same text.
	has := func(w string) bool {
		t.Helper()
		var n int
		if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM search_words WHERE kind = 'songs' AND word = $1`, w).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 1
	}
	mustExec(t, s, `DELETE FROM search_words WHERE word = 'heartbreaker'`)
	mustExec(t, s, `UPDATE songs SET popularity = popularity + 100 WHERE id = $1`, quake)
	mustExec(t, s, `UPDATE songs SET search_text = search_text WHERE id = $1`, quake)
	if has("heartbreaker") {
		t.Error("a popularity update or an unchanged text added the song's words")
	}
	mustExec(t, s, `UPDATE songs SET search_text = 'zyxw heartbreaker again' WHERE id = $1`, quake)
	if !has("heartbreaker") || !has("again") {
		t.Error("a changed text did not add the song's words")
	}
}
