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

// TestMatchKeysSparseAndDense: on PostgreSQL matchKeys asks the full-text
// index first and walks the rank order only for terms with more than
// sparseMatches rows; both ways give exactly the first n matching rows in
// rank order, as a plain sort of every match does.
func TestMatchKeysSparseAndDense(t *testing.T) {
	s := openPostgres(t, newTestClock())
	ctx := context.Background()
	if _, err := s.Seed(ctx, SeedOptions{Songs: 6000, Seed: 11, TrendingSongs: -1}); err != nil {
		t.Fatal(err)
	}
	// The most and a least common name words of the seeded songs.
	var common, rare string
	if err := s.w.QueryRowContext(ctx, `SELECT word FROM ts_stat('SELECT search_tsv FROM songs')
		WHERE length(word) > 2 ORDER BY ndoc DESC, word LIMIT 1`).Scan(&common); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(ctx, `SELECT word FROM ts_stat('SELECT search_tsv FROM songs')
		WHERE length(word) > 2 AND ndoc BETWEEN 20 AND 200 ORDER BY ndoc, word LIMIT 1`).Scan(&rare); err != nil {
		t.Fatal(err)
	}
	var dense int
	for _, tc := range []struct {
		word  string
		dense bool
	}{{common, true}, {rare, false}} {
		m := matcher{expr: tc.word + ":*"}
		var total int
		if err := s.w.QueryRowContext(ctx, `SELECT count(*) FROM songs s WHERE s.search_tsv @@ to_tsquery('simple', $1) AND s.status = 'ready'`,
			m.expr).Scan(&total); err != nil {
			t.Fatal(err)
		}
		if (total > sparseMatches) != tc.dense {
			t.Fatalf("%q matches %d rows: not the case wanted (dense %v); seed more", tc.word, total, tc.dense)
		}
		if tc.dense {
			dense++
		}
		for _, n := range []int{1, 20, 300} {
			got, err := s.matchKeys(ctx, songSearch, m, n)
			if err != nil {
				t.Fatal(err)
			}
			want, err := queryColumn[int64](ctx, s.w, `SELECT s.rank_key FROM songs s WHERE s.search_tsv @@ to_tsquery('simple', $1)
				AND s.status = 'ready' ORDER BY s.rank_key + 0 DESC LIMIT $2`, m.expr, n)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%q (%d matches), first %d: got %d keys %v…, want %d %v…", tc.word, total, n, len(got), head(got), len(want), head(want))
			}
		}
	}
	if dense != 1 {
		t.Fatal("no dense term tested")
	}
}

func head(k []int64) []int64 { return k[:min(len(k), 5)] }
