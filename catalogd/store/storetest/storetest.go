// Package storetest gives tests of packages built on catalogd/store a
// database of their own: a fresh PostgreSQL schema per test.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// PostgresDSN returns a DSN for a fresh schema of the RIFF_TEST_POSTGRES
// database (search_path: that schema, then public, where pg_trgm lives),
// dropped at cleanup, or skips the test loudly when the variable is unset
// (CI sets it).
func PostgresDSN(t testing.TB) string {
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
