package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"riff/internal/pgcluster"
)

func TestLSNText(t *testing.T) {
	for _, in := range []string{"0/0", "0/16b3748", "16/b374d848", "ffffffff/ffffffff"} {
		l, err := ParseLSN(in)
		if err != nil {
			t.Fatalf("ParseLSN(%q): %v", in, err)
		}
		if got := l.String(); got != in {
			t.Errorf("ParseLSN(%q).String() = %q", in, got)
		}
	}
	for _, in := range []string{"", "0", "/1", "1/", "x/1", "1/1/1", "123456789/0"} {
		if _, err := ParseLSN(in); err == nil {
			t.Errorf("ParseLSN(%q) = nil error", in)
		}
	}
	a, _ := ParseLSN("1/0")
	b, _ := ParseLSN("0/ffffffff")
	if a <= b {
		t.Errorf("1/0 <= 0/ffffffff")
	}
}

func TestReplicasNeedPostgres(t *testing.T) {
	_, err := Open(context.Background(), "file:"+filepath.Join(t.TempDir(), "riff.db"),
		Options{Replicas: []string{"postgres://127.0.0.1:1/x"}})
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("Open(SQLite, replicas) = %v, want an error naming PostgreSQL", err)
	}
}

// openCluster opens a Store on a fresh primary with two replicas.
func openCluster(t *testing.T, maxLag time.Duration) (*Store, *pgcluster.Cluster) {
	t.Helper()
	c := pgcluster.ForTest(t, pgcluster.Options{Standbys: 2})
	var reps []string
	for _, n := range c.Standbys {
		reps = append(reps, n.DSN("riff"))
	}
	s, err := Open(context.Background(), c.Primary.DSN("riff"), Options{
		Replicas: reps, ReplicaMaxLag: maxLag, ReplicaCheck: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// The schema was just migrated on the primary: wait until both replicas
	// have it and are in rotation.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both replicas in rotation", func() bool {
		for _, r := range s.Replicas() {
			if r.State != ReplicaUp {
				return false
			}
		}
		return true
	})
	return s, c
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func replicaReads(s *Store) uint64 {
	var n uint64
	for _, r := range s.Replicas() {
		n += r.Reads
	}
	return n
}

// TestReplicaRouting: replica-safe reads go to the replicas (both of
// them), other reads and writes, and the reads inside writes, to the
// primary; ReadAfter sends a read to the primary until a replica has
// replayed the write; a replica that stops leaves rotation and comes back.
func TestReplicaRouting(t *testing.T) {
	s, c := openCluster(t, time.Hour) // a paused replica stays in rotation
	ctx := context.Background()
	u, err := s.CreateUser(ctx, NewUser{Email: "a@example.com", PasswordHash: "x", DisplayName: "A"})
	if err != nil {
		t.Fatal(err)
	}

	// Writes, and the reads they make, never touch a replica.
	r0, p0 := replicaReads(s), s.PrimaryReads()
	wctx, mark := TrackWrites(ctx)
	pl, err := s.CreatePlaylist(wctx, u.ID, NewPlaylist{Name: "Mine"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdatePlaylist(wctx, pl.ID, Editor{UserID: u.ID}, PlaylistUpdate{Name: new("Renamed")}); err != nil {
		t.Fatal(err)
	}
	if got := replicaReads(s); got != r0 {
		t.Errorf("writes made %d replica reads, want 0", got-r0)
	}
	if !mark.Wrote() {
		t.Error("WriteMark.Wrote() = false after writes")
	}
	lsn, err := s.WriteLSN(ctx)
	if err != nil || lsn == 0 {
		t.Fatalf("WriteLSN = %v, %v", lsn, err)
	}

	// Not replica-safe: the primary.
	if _, err := s.UserByEmail(ctx, "a@example.com"); err != nil {
		t.Fatal(err)
	}
	if got := replicaReads(s); got != r0 {
		t.Errorf("UserByEmail read a replica")
	}
	if s.PrimaryReads() == p0 {
		t.Errorf("UserByEmail did not read the primary")
	}

	// Replica-safe and the write replayed: the replicas, both of them.
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a replica past the write", func() bool {
		for _, r := range s.Replicas() {
			if r.ReplayLSN >= lsn {
				return true
			}
		}
		return false
	})
	before := s.Replicas()
	for range 20 {
		got, err := s.PlaylistByID(ReadAfter(ctx, lsn), pl.ID)
		if err != nil || got.Name != "Renamed" {
			t.Fatalf("PlaylistByID = %q, %v; want Renamed", got.Name, err)
		}
	}
	if _, err := s.SearchPlaylists(ctx, ParseQuery("renamed"), 10, 0); err != nil {
		t.Fatal(err)
	}
	after := s.Replicas()
	for i := range after {
		if after[i].Reads == before[i].Reads {
			t.Errorf("%s served none of 20 reads", after[i].Name)
		}
	}
	// ReadPrimary: the primary.
	r1 := replicaReads(s)
	if _, err := s.PlaylistByID(ReadPrimary(ctx), pl.ID); err != nil {
		t.Fatal(err)
	}
	if replicaReads(s) != r1 {
		t.Error("ReadPrimary read a replica")
	}

	// Both replicas paused: a write is invisible on them. A reader with no
	// LSN reads the stale name from a replica (that proves the routing);
	// the writer, with its LSN, reads the primary and sees its write.
	for _, n := range c.Standbys {
		if err := n.PauseReplay(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wctx, _ = TrackWrites(ctx)
	if _, err := s.UpdatePlaylist(wctx, pl.ID, Editor{UserID: u.ID}, PlaylistUpdate{Name: new("Third")}); err != nil {
		t.Fatal(err)
	}
	lsn2, err := s.WriteLSN(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.PlaylistByID(ctx, pl.ID); err != nil || got.Name != "Renamed" {
		t.Errorf("a reader without LSN on paused replicas: %q, %v; want the stale Renamed", got.Name, err)
	}
	if got, err := s.PlaylistByID(ReadAfter(ctx, lsn2), pl.ID); err != nil || got.Name != "Third" {
		t.Errorf("the writer: %q, %v; want its own Third", got.Name, err)
	}
	waitFor(t, "the lag to show", func() bool {
		for _, r := range s.Replicas() {
			if r.Lag <= 0 {
				return false
			}
		}
		return true
	})
	for _, n := range c.Standbys {
		if err := n.ResumeReplay(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// A replica stopped: reads go on; started again: it rejoins.
	stopped := c.Standbys[1]
	if err := stopped.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if _, err := s.PlaylistByID(ctx, pl.ID); err != nil {
			t.Fatalf("read with a replica stopped: %v", err)
		}
	}
	waitFor(t, "replica1 down", func() bool { return s.Replicas()[1].State == ReplicaDown })
	if err := stopped.Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica1 back in rotation", func() bool { return s.Replicas()[1].State == ReplicaUp })
	r1 = s.Replicas()[1].Reads
	for range 20 {
		if _, err := s.PlaylistByID(ctx, pl.ID); err != nil {
			t.Fatal(err)
		}
	}
	if s.Replicas()[1].Reads == r1 {
		t.Error("replica1 serves no reads after it rejoined")
	}

	// The primary stopped: writes fail as Unavailable, replica-safe reads
	// still work.
	if err := c.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = s.CreatePlaylist(ctx, u.ID, NewPlaylist{Name: "Lost"})
	if !Unavailable(err) {
		t.Errorf("write with the primary down: %v, want Unavailable", err)
	}
	waitFor(t, "the primary seen down", func() bool { return !s.PrimaryUp() })
	if got, err := s.PlaylistByID(ReadAfter(ctx, lsn2), pl.ID); err != nil || got.Name != "Third" {
		t.Errorf("read with the primary down: %q, %v", got.Name, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Errorf("Ping with the primary down and replicas up: %v", err)
	}
}

func TestUnavailable(t *testing.T) {
	if Unavailable(nil) || Unavailable(ErrNotFound) || Unavailable(errors.New("x")) {
		t.Error("Unavailable of an ordinary error")
	}
}

// BenchmarkReplicaPick is the routing cost every read pays with replicas:
// finding the Store method on the stack and choosing a replica.
func BenchmarkReplicaPick(b *testing.B) {
	rs := &replicaSet{list: []*replica{{name: "replica0"}, {name: "replica1"}}}
	for _, r := range rs.list {
		r.state.Store(ReplicaUp)
	}
	ctx := ReadAfter(context.Background(), 1)
	b.ReportAllocs()
	for b.Loop() {
		rs.pick(ctx)
	}
}
