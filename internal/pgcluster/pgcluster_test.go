package pgcluster

import (
	"context"
	"database/sql"
	"testing"
	"time"
)

// TestReplication: a row written on the primary is read on both standbys;
// a paused standby does not see the next one until resumed; a stopped
// standby starts again and catches up.
func TestReplication(t *testing.T) {
	c := ForTest(t, Options{Standbys: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := open(t, c.Primary.DSN("riff"))
	if _, err := p.ExecContext(ctx, "CREATE TABLE t (v int)"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ExecContext(ctx, "INSERT INTO t VALUES (1)"); err != nil {
		t.Fatal(err)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Standbys {
		if got := count(t, open(t, n.DSN("riff"))); got != 1 {
			t.Errorf("%s: %d rows, want 1", n.Name, got)
		}
	}
	s0 := c.Standbys[0]
	if err := s0.PauseReplay(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ExecContext(ctx, "INSERT INTO t VALUES (2)"); err != nil {
		t.Fatal(err)
	}
	if err := s0.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s0.Start(ctx); err != nil { // replay is no longer paused after a restart
		t.Fatal(err)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	if got := count(t, open(t, s0.DSN("riff"))); got != 2 {
		t.Errorf("%s after restart: %d rows, want 2", s0.Name, got)
	}
}

func open(t *testing.T, dsn string) *sql.DB {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB) int {
	var n int
	if err := db.QueryRow("SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
