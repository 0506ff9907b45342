package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"riff/internal/blobkey"
)

// The replication outbox: publishing a song version records a copy of its
// version folder, and collecting a version (GC after a replacement or a
// takedown) records a delete, in the same transaction as the change, so
// replication is never lost and never done for a change that rolled back.
// The dispatcher (package catalogd/replicate) applies the rows to every
// region but the home region in id order and records per region the
// highest id applied (its cursor), so a region that was unreachable gets
// everything it missed when it comes back, in order (a delete never
// overtakes the copy it undoes). version_regions records which regions
// hold which version, whole and verified; catalogd names only those in
// playback URLs. The ordering argument is the purge outbox's (outbox.go):
// on PostgreSQL enqueueReplication locks the table, so ids commit in
// order.

// Replication operations.
const (
	ReplicateCopy   = "copy"
	ReplicateDelete = "delete"
)

// ReplicationEntry is one row of the replication outbox.
type ReplicationEntry struct {
	ID        int64
	Op        string // ReplicateCopy or ReplicateDelete
	SongID    int64
	Version   int
	Prefix    string // the version folder (blobkey.VersionFolder)
	CreatedAt time.Time
}

// enqueueReplication adds a row to the replication outbox inside tx. Call
// it before purgeInTx (both lock their table on PostgreSQL; one order
// everywhere keeps transactions from waiting on each other in a cycle).
func enqueueReplication(ctx context.Context, tx *sql.Tx, d Dialect, now int64, op string, songID, artistID, albumID int64, version int) error {
	if d == Postgres {
		if _, err := tx.ExecContext(ctx, "LOCK TABLE replication_outbox IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("store: enqueue replication: %w", err)
		}
	}
	prefix := blobkey.VersionFolder(artistID, albumID, songID, version)
	if _, err := tx.ExecContext(ctx, `INSERT INTO replication_outbox (op, song_id, version, prefix, created_at)
		VALUES ($1, $2, $3, $4, $5)`, op, songID, version, prefix, now); err != nil {
		return fmt.Errorf("store: enqueue replication: %w", err)
	}
	return nil
}

// replicateInTx queues op of a song version for every other region inside
// tx (see enqueueReplication).
func (s *conn) replicateInTx(ctx context.Context, tx *sql.Tx, op string, songID, artistID, albumID int64, version int) error {
	return enqueueReplication(ctx, tx, s.dialect, s.nowMs(), op, songID, artistID, albumID, version)
}

// EnqueueReplication adds op of song songID's version to the outbox in a
// transaction of its own (an operator's repair, a backfill after adding a
// region). Publishing and collecting enqueue their own rows.
func (s *Outbox) EnqueueReplication(ctx context.Context, op string, songID int64, version int) error {
	if op != ReplicateCopy && op != ReplicateDelete {
		return fmt.Errorf("store: replication op %q: want copy or delete", op)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var artistID, albumID int64
		if err := tx.QueryRowContext(ctx, `SELECT al.artist_id, al.id FROM songs s JOIN albums al ON al.id = s.album_id WHERE s.id = $1`,
			songID).Scan(&artistID, &albumID); err != nil {
			return notFound(err, "song", songID)
		}
		return enqueueReplication(ctx, tx, s.dialect, s.nowMs(), op, songID, artistID, albumID, version)
	})
}

// PendingReplications returns up to limit outbox rows with ids above
// after, in id order.
func (s *Outbox) PendingReplications(ctx context.Context, after int64, limit int) ([]ReplicationEntry, error) {
	es, err := queryAll(ctx, s.read, func(r scanner) (ReplicationEntry, error) {
		var e ReplicationEntry
		var created int64
		err := r.Scan(&e.ID, &e.Op, &e.SongID, &e.Version, &e.Prefix, &created)
		e.CreatedAt = fromMs(created)
		return e, err
	}, `SELECT id, op, song_id, version, prefix, created_at FROM replication_outbox WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending replications: %w", err)
	}
	return es, nil
}

// ReplicationBacklog counts the outbox rows with ids above after and
// returns the creation time of the oldest (zero when there are none).
func (s *Outbox) ReplicationBacklog(ctx context.Context, after int64) (n int, oldest time.Time, err error) {
	return replicationTables.backlog(ctx, s.conn, after)
}

// ReplicationCursor returns the highest outbox id applied in region, 0
// for a region never seen (it then gets every row still in the outbox).
func (s *Outbox) ReplicationCursor(ctx context.Context, region string) (int64, error) {
	return replicationTables.cursor(ctx, s.conn, region)
}

// AckReplication records that region applied every outbox row up to id
// and, for e (the row with that id), which versions region now holds: a
// copy marks the version there, a delete unmarks it, in one transaction
// with the cursor. The cursor only moves forward.
func (s *Outbox) AckReplication(ctx context.Context, region string, e ReplicationEntry) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		now := s.nowMs()
		var err error
		switch e.Op {
		case ReplicateCopy:
			_, err = tx.ExecContext(ctx, `INSERT INTO version_regions (song_id, version, region, replicated_at) VALUES ($1, $2, $3, $4)
				ON CONFLICT (song_id, version, region) DO NOTHING`, e.SongID, e.Version, region, now)
		case ReplicateDelete:
			_, err = tx.ExecContext(ctx, `DELETE FROM version_regions WHERE song_id = $1 AND version = $2 AND region = $3`, e.SongID, e.Version, region)
		}
		if err != nil {
			return err
		}
		return replicationTables.ack(ctx, tx, region, e.ID, now)
	})
	if err != nil {
		return fmt.Errorf("store: ack replication %d in %s: %w", e.ID, region, err)
	}
	return nil
}

// VersionRegions returns the regions recorded as holding song songID's
// version (never the home region, which holds every published version).
func (s *Store) VersionRegions(ctx context.Context, songID int64, version int) ([]string, error) {
	rs, err := queryAll(ctx, s.read, func(r scanner) (string, error) {
		var name string
		err := r.Scan(&name)
		return name, err
	}, `SELECT region FROM version_regions WHERE song_id = $1 AND version = $2 ORDER BY region`, songID, version)
	if err != nil {
		return nil, fmt.Errorf("store: regions of song %d v%d: %w", songID, version, err)
	}
	return rs, nil
}

// PruneReplications deletes the outbox rows every one of regions has
// applied and that were created before before, and returns how many it
// deleted. A region without a cursor holds everything back.
func (s *Outbox) PruneReplications(ctx context.Context, regions []string, before time.Time) (int64, error) {
	return replicationTables.prune(ctx, s.conn, regions, before)
}
