package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testClock is a settable clock for tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

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

func openSQLite(t *testing.T, clock *testClock) *Store {
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
func openPostgres(t *testing.T, clock *testClock) *Store {
	t.Helper()
	dsn := PostgresTestDSN(t)
	s, err := Open(context.Background(), dsn, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// PostgresTestDSN returns a DSN for a fresh schema of the RIFF_TEST_POSTGRES
// database, dropped at cleanup, or skips the test loudly when the variable
// is unset.
func PostgresTestDSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv("RIFF_TEST_POSTGRES")
	if base == "" {
		t.Skip("SKIPPING PostgreSQL: set RIFF_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run the store suite on PostgreSQL")
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	ctx := context.Background()
	// pg_trgm lives in public so every test schema sees it; racing
	// creators (parallel test binaries) may collide once, so retry.
	for i := 0; ; i++ {
		_, err = admin.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public")
		if err == nil || i == 3 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("pg_trgm: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "riff_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema+",public")
	u.RawQuery = q.Encode()
	return u.String()
}

// mustExec runs statements on the store's writer (test setup only).
func mustExec(t *testing.T, s *Store, q string, args ...any) {
	t.Helper()
	if _, err := s.w.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", strings.TrimSpace(q), err)
	}
}
