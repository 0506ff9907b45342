package store

import (
	"context"
	"database/sql"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// explainer is a querier that runs EXPLAIN QUERY PLAN on every query
// before running it, and keeps the plans.
type explainer struct {
	db    *sql.DB
	mu    sync.Mutex
	plans map[string][]string
	errs  []error
}

func (e *explainer) explain(ctx context.Context, q string, args []any) {
	rows, err := e.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q, args...)
	if err != nil {
		e.mu.Lock()
		e.errs = append(e.errs, err)
		e.mu.Unlock()
		return
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err == nil {
			lines = append(lines, detail)
		}
	}
	e.mu.Lock()
	e.plans[q] = lines
	e.mu.Unlock()
}

func (e *explainer) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	e.explain(ctx, q, args)
	return e.db.QueryContext(ctx, q, args...)
}

func (e *explainer) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	e.explain(ctx, q, args)
	return e.db.QueryRowContext(ctx, q, args...)
}

// TestQueryPlansUseIndexes runs every read the API makes against a seeded
// SQLite catalog with planner statistics and fails on any full scan of a
// table or index: what would hurt at a million songs.
func TestQueryPlansUseIndexes(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds a catalog")
	}
	clock := newTestClock()
	s := openSQLite(t, clock)
	ctx := context.Background()
	if _, err := s.Seed(ctx, SeedOptions{Songs: 8000, Seed: 11}); err != nil {
		t.Fatal(err)
	}
	c := newCatalog(t, s)
	mustExec(t, s, `INSERT INTO playlists (owner_user_id, name, is_public, name_key, search_text, created_at, updated_at)
		VALUES ($1, 'Road Trip', $2, 'road trip', 'road trip', 0, 0)`, c.owner.ID, true)
	s.CreateSession(ctx, c.owner.ID, hashOf("tok"), clock.Now().Add(time.Hour))
	if err := s.Optimize(ctx); err != nil {
		t.Fatal(err)
	}
	ex := &explainer{db: s.r, plans: map[string][]string{}}
	s.read = ex

	s.UserByID(ctx, c.owner.ID)
	s.UserByEmail(ctx, "label@example.com")
	s.SessionRevoked(ctx, 1)
	s.ArtistByID(ctx, c.queen.ID)
	s.ArtistsOwnedBy(ctx, c.owner.ID)
	s.AlbumByID(ctx, c.album.ID)
	s.AlbumsByArtist(ctx, c.queen.ID)
	s.AlbumSongs(ctx, c.album.ID, true)
	s.AlbumSongs(ctx, c.album.ID, false)
	s.SongByID(ctx, c.bohemian.ID)
	s.Renditions(ctx, c.bohemian.ID, 1)
	s.ArtistSongs(ctx, c.queen.ID, 50, 0)
	s.ArtistSongs(ctx, 1, 50, 0) // the busiest seeded artist
	for _, q := range []string{"l", "lo", "love", "love night", "bohemian rhap", "zzzzzz", "acdc"} {
		pq := ParseQuery(q)
		s.SearchSongs(ctx, pq, 20, 0)
		s.SearchArtists(ctx, pq, 20, 0)
		s.SearchAlbums(ctx, pq, 20, 0)
		s.SearchPlaylists(ctx, pq, 20, 0)
	}
	s.Trending(ctx, clock.Now(), "", 50)
	s.Trending(ctx, clock.Now(), "rock", 50)

	if len(ex.errs) > 0 {
		t.Fatalf("EXPLAIN failed: %v", ex.errs)
	}
	// A SCAN of anything but an FTS table, a bounded subquery or CTE, or a
	// constant row reads every row of a table or index.
	scan := regexp.MustCompile(`^SCAN (\S+)`)
	allowed := map[string]bool{"c": true, "sc": true, "CONSTANT": true} // bounded subqueries, CTEs, constants
	var queries []string
	for q := range ex.plans {
		queries = append(queries, q)
	}
	sort.Strings(queries)
	for _, q := range queries {
		plan := ex.plans[q]
		for _, line := range plan {
			if m := scan.FindStringSubmatch(line); m != nil && !allowed[m[1]] && !strings.Contains(line, "VIRTUAL TABLE") {
				t.Errorf("full scan %q in the plan of\n%s\nplan:\n  %s", line, q, strings.Join(plan, "\n  "))
			}
		}
	}
	if len(queries) < 15 {
		t.Errorf("only %d distinct queries explained", len(queries))
	}
	if testing.Verbose() {
		for _, q := range queries {
			t.Logf("%s\n  %s", strings.Join(strings.Fields(q), " "), strings.Join(ex.plans[q], "\n  "))
		}
	}
}
