package store

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	"riff/catalogd/store/storetest"
	"riff/internal/testrun"
)

// testClock is a settable clock for tests.
type testClock = testrun.Clock

func newTestClock() *testClock { return testrun.NewClock() }

// eachDB runs fn against a fresh SQLite store and, when RIFF_TEST_POSTGRES
// is set, a fresh PostgreSQL store in a schema of its own.
func eachDB(t *testing.T, fn func(t *testing.T, s *Store, clock *testClock)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) {
		clock := newTestClock()
		fn(t, openSQLite(t, clock), clock)
	})
	t.Run("postgres", func(t *testing.T) {
		clock := newTestClock()
		fn(t, openPostgres(t, clock), clock)
	})
}

func openSQLite(t testing.TB, clock *testClock) *Store {
	t.Helper()
	s, err := Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "riff.db"), Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openPostgres makes schema riff_test_<random> in the RIFF_TEST_POSTGRES
// database, opens a store whose search_path is that schema (then public,
// where pg_trgm lives) and drops the schema when the test ends.
func openPostgres(t testing.TB, clock *testClock) *Store {
	t.Helper()
	dsn := storetest.PostgresDSN(t)
	s, err := Open(context.Background(), dsn, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// mustExec runs statements on the store's writer (test setup only).
func mustExec(t testing.TB, s *Store, q string, args ...any) {
	t.Helper()
	if _, err := s.w.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", strings.TrimSpace(q), err)
	}
}

// searchIDs returns the ids of what search finds for q (the first 20),
// in order, and checks that the total counts them all.
func searchIDs[T any](t *testing.T, search func(context.Context, Query, int, int) (SearchPage[T], error), q string, id func(T) int64) []int64 {
	t.Helper()
	p, err := search(context.Background(), ParseQuery(q), 20, 0)
	if err != nil {
		t.Fatalf("search %q: %v", q, err)
	}
	if p.Total != len(p.Items) || p.Capped {
		t.Errorf("search %q: total %d (capped %v), %d items", q, p.Total, p.Capped, len(p.Items))
	}
	ids := []int64{}
	for _, it := range p.Items {
		ids = append(ids, id(it))
	}
	return ids
}

// openUpgraded runs stmts on db (an old schema being filled), closes it
// and opens the store at dsn, which migrates it; the store is closed when
// the test ends.
func openUpgraded(t *testing.T, db *sql.DB, dsn string, stmts ...string) *Store {
	t.Helper()
	ctx := context.Background()
	for _, q := range stmts {
		if _, err := db.ExecContext(ctx, q); err != nil {
			t.Fatalf("%.60s: %v", q, err)
		}
	}
	db.Close()
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
