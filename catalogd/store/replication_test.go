package store

import (
	"context"
	"slices"
	"testing"
	"time"

	"riff/internal/blobkey"
)

func TestReplicationOutbox(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		c := newCatalog(t, s)
		// Publishing writes a copy row in the same transaction.
		if err := s.PublishVersion(ctx, c.hidden.ID, 1, []Rendition{{"ogg", 128, "k/ogg_128.ogg", 10}}); err != nil {
			t.Fatal(err)
		}
		created := clock.Now()
		es, err := s.PendingReplications(ctx, 0, 10)
		if err != nil || len(es) != 1 {
			t.Fatalf("PendingReplications = %v, %v; want one row", es, err)
		}
		want := ReplicationEntry{ID: es[0].ID, Op: ReplicateCopy, SongID: c.hidden.ID, Version: 1,
			Prefix: blobkey.VersionFolder(c.queen.ID, c.album.ID, c.hidden.ID, 1), CreatedAt: created.UTC().Truncate(time.Millisecond)}
		if es[0] != want {
			t.Errorf("row = %+v, want %+v", es[0], want)
		}
		// A publish that fails (a rendition already there) writes nothing.
		if err := s.PublishVersion(ctx, c.hidden.ID, 1, []Rendition{{"ogg", 128, "k", 1}}); err == nil {
			t.Fatal("second publish of v1 succeeded")
		}
		clock.Advance(time.Minute)
		if err := s.EnqueueReplication(ctx, ReplicateDelete, c.hidden.ID, 1); err != nil {
			t.Fatal(err)
		}
		if err := s.EnqueueReplication(ctx, "move", c.hidden.ID, 1); err == nil {
			t.Error("EnqueueReplication accepted op move")
		}
		es, _ = s.PendingReplications(ctx, 0, 10)
		if len(es) != 2 || es[1].Op != ReplicateDelete || es[1].ID <= es[0].ID {
			t.Fatalf("rows = %+v, want copy then delete", es)
		}
		if n, oldest, err := s.ReplicationBacklog(ctx, 0); n != 2 || !oldest.Equal(want.CreatedAt) || err != nil {
			t.Errorf("ReplicationBacklog(0) = %d, %v, %v; want 2 from %v", n, oldest, err, want.CreatedAt)
		}
		// Acking the copy moves the cursor and marks the version there.
		if cur, err := s.ReplicationCursor(ctx, "na"); cur != 0 || err != nil {
			t.Errorf("cursor of a new region = %d, %v", cur, err)
		}
		if err := s.AckReplication(ctx, "na", es[0]); err != nil {
			t.Fatal(err)
		}
		if rs, err := s.VersionRegions(ctx, c.hidden.ID, 1); !slices.Equal(rs, []string{"na"}) || err != nil {
			t.Errorf("VersionRegions after copy = %v, %v; want [na]", rs, err)
		}
		if n, _, _ := s.ReplicationBacklog(ctx, es[0].ID); n != 1 {
			t.Errorf("backlog after the copy = %d, want 1", n)
		}
		// Acking an older row again changes neither cursor nor marks.
		if err := s.AckReplication(ctx, "na", es[1]); err != nil {
			t.Fatal(err)
		}
		if rs, _ := s.VersionRegions(ctx, c.hidden.ID, 1); len(rs) != 0 {
			t.Errorf("VersionRegions after delete = %v, want none", rs)
		}
		if cur, _ := s.ReplicationCursor(ctx, "na"); cur != es[1].ID {
			t.Errorf("cursor = %d, want %d", cur, es[1].ID)
		}
		if err := s.AckReplication(ctx, "na", ReplicationEntry{ID: es[0].ID, Op: ReplicateCopy, SongID: 999, Version: 1}); err != nil {
			t.Fatal(err)
		}
		if cur, _ := s.ReplicationCursor(ctx, "na"); cur != es[1].ID {
			t.Errorf("cursor went back to %d", cur)
		}
		// Pruning: a region without a cursor holds every row back.
		if n, err := s.PruneReplications(ctx, []string{"na", "apac"}, clock.Now().Add(time.Hour)); n != 0 || err != nil {
			t.Errorf("PruneReplications with apac behind = %d, %v", n, err)
		}
		if n, err := s.PruneReplications(ctx, []string{"na"}, clock.Now().Add(-30*time.Second)); n != 1 || err != nil {
			t.Errorf("PruneReplications(older than 30s) = %d, %v; want 1 (the retention keeps the newer)", n, err)
		}
	})
}
