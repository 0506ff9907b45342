package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"riff/catalogd/store/storetest"
	"riff/internal/blobkey"
)

func TestPurgePrefix(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "artists/", true},
		{"artists", "artists/", true},
		{"artists/", "artists/", true},
		{"artists/1", "artists/1/", true},
		{"artists/1/", "artists/1/", true},
		{"artists/1/albums/2", "artists/1/albums/2/", true},
		{"artists/1/albums/2/songs/3/", "artists/1/albums/2/songs/3/", true},
		{"artists/1/albums/", "", false},                   // depth 3
		{"artists/1/albums/2/songs/3/v1/", "", false},      // a version folder carries no generation
		{"artists/1/albums/2/songs/3/v1/x.mp4", "", false}, // an object
		{"originals/3/", "", false},
		{"/artists/1/", "", false},
		{"artists//1/", "", false},
		{"artists/../1/", "", false},
		{"artists/.x/", "", false},
		{"artists/1//", "", false},
		{"artists/a\x00b/", "", false},
	}
	if p := blobkey.SongFolder(1, 2, 3); p != "artists/1/albums/2/songs/3/" {
		t.Errorf("blobkey.SongFolder(1, 2, 3) = %q", p)
	} else if c, err := PurgePrefix(p); c != p || err != nil {
		t.Errorf("PurgePrefix(blobkey.SongFolder) = %q, %v; want it unchanged", c, err)
	}
	for _, tt := range tests {
		got, err := PurgePrefix(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("PurgePrefix(%q) = %q, %v; want %q, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func prefixesOf(es []PurgeEntry) []string {
	var ps []string
	for _, e := range es {
		ps = append(ps, e.Prefix)
	}
	return ps
}

func TestPurgeOutbox(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		if es, err := s.PendingPurges(ctx, 0, 10); err != nil || len(es) != 0 {
			t.Fatalf("PendingPurges on empty outbox = %v, %v", es, err)
		}
		// Duplicates in one call are written once; prefixes are canonical.
		if err := s.EnqueuePurge(ctx, "artists/1/albums/2/songs/3", "artists/1/albums/2/songs/3/", "artists/5/"); err != nil {
			t.Fatal(err)
		}
		created := clock.Now()
		clock.Advance(time.Minute)
		if err := s.EnqueuePurge(ctx, "artists"); err != nil {
			t.Fatal(err)
		}
		// A bad prefix writes nothing, not even the good ones of the call.
		if err := s.EnqueuePurge(ctx, "artists/7/", "artists/7/albums/"); !errors.Is(err, errPurgePrefix) {
			t.Fatalf("EnqueuePurge(bad) = %v, want errPurgePrefix", err)
		}
		es, err := s.PendingPurges(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"artists/1/albums/2/songs/3/", "artists/5/", "artists/"}
		if got := prefixesOf(es); !slices.Equal(got, want) {
			t.Fatalf("pending = %q, want %q", got, want)
		}
		if !es[0].CreatedAt.Equal(created) || !es[2].CreatedAt.Equal(created.Add(time.Minute)) {
			t.Errorf("created = %v, %v; want %v, %v", es[0].CreatedAt, es[2].CreatedAt, created, created.Add(time.Minute))
		}
		for i := 1; i < len(es); i++ {
			if es[i].ID <= es[i-1].ID {
				t.Fatalf("ids not increasing: %v", es)
			}
		}
		if page, _ := s.PendingPurges(ctx, es[0].ID, 1); len(page) != 1 || page[0].ID != es[1].ID {
			t.Errorf("PendingPurges(after %d, 1) = %v, want row %d", es[0].ID, page, es[1].ID)
		}
		n, oldest, err := s.PurgeBacklog(ctx, es[0].ID)
		if err != nil || n != 2 || !oldest.Equal(created) {
			t.Errorf("PurgeBacklog(after first) = %d, %v, %v; want 2, %v", n, oldest, err, created)
		}
		if n, oldest, err := s.PurgeBacklog(ctx, es[2].ID); err != nil || n != 0 || !oldest.IsZero() {
			t.Errorf("PurgeBacklog(after last) = %d, %v, %v; want 0, zero", n, oldest, err)
		}

		// Cursors: unknown edges start at 0 and only move forward.
		const e1, e2 = "http://edge1:9082", "http://edge2:9082"
		if c, err := s.PurgeCursor(ctx, e1); err != nil || c != 0 {
			t.Fatalf("PurgeCursor(new edge) = %d, %v; want 0", c, err)
		}
		if err := s.AckPurges(ctx, e1, es[2].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.AckPurges(ctx, e1, es[0].ID); err != nil {
			t.Fatal(err)
		}
		if c, _ := s.PurgeCursor(ctx, e1); c != es[2].ID {
			t.Errorf("cursor after acking backwards = %d, want %d", c, es[2].ID)
		}

		// Pruning waits for every named edge and for the retention window.
		clock.Advance(time.Hour)
		if n, err := s.PrunePurges(ctx, []string{e1, e2}, clock.Now()); err != nil || n != 0 {
			t.Errorf("PrunePurges with an edge that acked nothing = %d, %v; want 0", n, err)
		}
		if err := s.AckPurges(ctx, e2, es[1].ID); err != nil {
			t.Fatal(err)
		}
		if n, err := s.PrunePurges(ctx, []string{e1, e2}, created); err != nil || n != 0 {
			t.Errorf("PrunePurges before anything is old enough = %d, %v; want 0", n, err)
		}
		if n, err := s.PrunePurges(ctx, []string{e1, e2}, clock.Now()); err != nil || n != 2 {
			t.Errorf("PrunePurges = %d, %v; want 2 (acked by both)", n, err)
		}
		if left, _ := s.PendingPurges(ctx, 0, 10); len(left) != 1 || left[0].ID != es[2].ID {
			t.Errorf("left after prune = %v, want row %d", left, es[2].ID)
		}
		// A removed edge no longer holds rows back.
		if n, err := s.PrunePurges(ctx, []string{e1}, clock.Now()); err != nil || n != 1 {
			t.Errorf("PrunePurges(e1 only) = %d, %v; want 1", n, err)
		}
		// Ids are never reused once the outbox is empty.
		if err := s.EnqueuePurge(ctx, "artists/9/"); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.PendingPurges(ctx, 0, 10); len(again) != 1 || again[0].ID <= es[2].ID {
			t.Errorf("after emptying, new row = %v; want an id above %d", again, es[2].ID)
		}
	})
}

func TestPurgeEnqueuedWithTheChange(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		boom := errors.New("boom")
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if err := enqueuePurge(ctx, tx, s.dialect, s.nowMs(), "artists/1/"); err != nil {
				return err
			}
			return boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("inTx = %v", err)
		}
		if es, _ := s.PendingPurges(ctx, 0, 10); len(es) != 0 {
			t.Fatalf("rolled-back purge is in the outbox: %v", es)
		}
		if err := s.inTx(ctx, func(tx *sql.Tx) error {
			return enqueuePurge(ctx, tx, s.dialect, s.nowMs())
		}); err != nil {
			t.Fatalf("enqueue of nothing: %v", err)
		}
	})
}

// TestPurgeOutboxCommitOrder: while one transaction that enqueued a purge
// is open, another cannot enqueue, so ids become visible in order and a
// reader never sees id N+1 before id N.
func TestPurgeOutboxCommitOrder(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		txA, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer txA.Rollback()
		if err := enqueuePurge(ctx, txA, s.dialect, s.nowMs(), "artists/1/"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- s.EnqueuePurge(ctx, "artists/2/") }()
		select {
		case err := <-done:
			t.Fatalf("second enqueue finished while the first transaction was open: %v", err)
		case <-time.After(300 * time.Millisecond):
		}
		if es, _ := s.PendingPurges(ctx, 0, 10); len(es) != 0 {
			t.Fatalf("uncommitted rows visible: %v", es)
		}
		if err := txA.Commit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		es, err := s.PendingPurges(ctx, 0, 10)
		if err != nil {
			t.Fatal(err)
		}
		if got := prefixesOf(es); !slices.Equal(got, []string{"artists/1/", "artists/2/"}) {
			t.Fatalf("outbox order = %q, want artists/1/ then artists/2/", got)
		}
	})
}

// TestPurgeMigrationUpgrades: a database made before migration 0005 gets
// the outbox on the next Open and keeps its data.
func TestPurgeMigrationUpgrades(t *testing.T) {
	ctx := context.Background()
	check := func(t *testing.T, open func() *Store) {
		s := open()
		u, err := s.CreateUser(ctx, NewUser{Email: "old@example.com", PasswordHash: "x", DisplayName: "Old"})
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, s, "DROP TABLE purge_cursors")
		mustExec(t, s, "DROP TABLE purge_outbox")
		mustExec(t, s, "DELETE FROM schema_migrations WHERE version = 5")
		s.Close()
		s = open()
		if _, err := s.UserByID(ctx, u.ID); err != nil {
			t.Fatalf("user lost in upgrade: %v", err)
		}
		if err := s.EnqueuePurge(ctx, "artists/1/"); err != nil {
			t.Fatalf("enqueue after upgrade: %v", err)
		}
		var applied int
		if err := s.read.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = 5").Scan(&applied); err != nil || applied != 1 {
			t.Fatalf("migration 5 recorded %d times, %v", applied, err)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		dsn := "file:" + filepath.Join(t.TempDir(), "riff.db")
		check(t, func() *Store {
			s, err := Open(ctx, dsn, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		check(t, func() *Store {
			s, err := Open(ctx, dsn, Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		})
	})
}

// BenchmarkEnqueuePurge is the cost of recording one song's purge in a
// transaction of its own (SQLite).
func BenchmarkEnqueuePurge(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, "file:"+filepath.Join(b.TempDir(), "riff.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for i := range b.N {
		if err := s.EnqueuePurge(ctx, fmt.Sprintf("artists/1/albums/2/songs/%d/", i+1)); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzPurgePrefix: whatever PurgePrefix accepts is canonical (a fixed
// point), a folder under artists/ at depth 1, 2, 4 or 6, and a valid blob
// key without its slash, so an edge never refuses an outbox row.
func FuzzPurgePrefix(f *testing.F) {
	for _, s := range []string{"", "artists", "artists/1", "artists/1/albums/2/songs/3/", "artists/1/albums/", "originals/1/", "artists/../x/", "artists/é/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := PurgePrefix(in)
		if err != nil {
			return
		}
		if again, err := PurgePrefix(out); again != out || err != nil {
			t.Fatalf("PurgePrefix(%q) = %q, but PurgePrefix(%q) = %q, %v", in, out, out, again, err)
		}
		depth := strings.Count(out, "/")
		if !strings.HasPrefix(out, "artists/") || !strings.HasSuffix(out, "/") || (depth != 1 && depth != 2 && depth != 4 && depth != 6) {
			t.Fatalf("PurgePrefix(%q) = %q: not an artists folder at a purgeable depth", in, out)
		}
		if out != "artists/" && blobkey.Validate(strings.TrimSuffix(out, "/")) != nil {
			t.Fatalf("PurgePrefix(%q) = %q: not a valid key", in, out)
		}
	})
}
