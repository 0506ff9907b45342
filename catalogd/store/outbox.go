package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"riff/internal/blobkey"
)

// The purge outbox: a change that makes objects cached at the edges wrong
// (a new version published, a song taken down) records the blob-key
// prefixes to purge in the same transaction as the change, so the purge is
// never lost and never sent for a change that rolled back. The dispatcher
// (package catalogd/purge) sends the rows to every configured edge in id
// order and records per edge the highest id the edge acknowledged (its
// cursor), so an edge that is down gets everything it missed when it comes
// back. Rows every configured edge has acknowledged are deleted once they
// are older than a retention window.
//
// Ordering: a reader that sees id N must have seen every id below N that
// will ever commit, or a cursor would step over a late commit. SQLite has
// one writer, so ids commit in order. On PostgreSQL, identity values are
// handed out at insert time and transactions commit in any order, so
// enqueuePurge first takes a SHARE ROW EXCLUSIVE lock on purge_outbox
// (it conflicts with itself and with plain inserts, not with reads): the
// transactions that enqueue purges then take ids and commit one after the
// other.

// PurgeEntry is one row of the purge outbox.
type PurgeEntry struct {
	ID        int64
	Prefix    string // canonical, see PurgePrefix
	CreatedAt time.Time
}

// errPurgePrefix is wrapped by PurgePrefix errors.
var errPurgePrefix = errors.New("not an artist, album or song folder")

// PurgePrefix returns the canonical form of a purge prefix
// (blobkey.PurgeFolder), the form the outbox stores: "artists/" (everything;
// also for "" and "artists"), or an artist, album or song folder with a
// trailing slash ("artists/1/", "artists/1/albums/2/",
// "artists/1/albums/2/songs/3/"; the slash may be left off). These are the
// prefixes an edge accepts on POST /purge (see edge.AdminHandler); anything
// else is an error, so a bad row can never block an edge's queue.
func PurgePrefix(p string) (string, error) {
	c, ok := blobkey.PurgeFolder(p)
	if !ok {
		return "", fmt.Errorf("store: purge prefix %q: %w", p, errPurgePrefix)
	}
	return c, nil
}

// maxPurgeInsert bounds the rows of one INSERT statement.
const maxPurgeInsert = 200

// enqueuePurge adds prefixes to the purge outbox inside tx, which belongs
// to a store of dialect d; now is the store clock in unix milliseconds.
// Duplicates within the call are written once. Every prefix must pass
// PurgePrefix, or nothing is written and the error says which one failed.
//
// Call it as the last write of the transaction: on PostgreSQL it locks
// purge_outbox until the transaction ends (see the ordering note above),
// which serialises the transactions that enqueue purges.
func enqueuePurge(ctx context.Context, tx *sql.Tx, d Dialect, now int64, prefixes ...string) error {
	var canon []string
	seen := map[string]bool{}
	for _, p := range prefixes {
		c, err := PurgePrefix(p)
		if err != nil {
			return err
		}
		if !seen[c] {
			seen[c] = true
			canon = append(canon, c)
		}
	}
	if len(canon) == 0 {
		return nil
	}
	if d == Postgres {
		if _, err := tx.ExecContext(ctx, "LOCK TABLE purge_outbox IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return fmt.Errorf("store: enqueue purge: %w", err)
		}
	}
	for len(canon) > 0 {
		chunk := canon[:min(len(canon), maxPurgeInsert)]
		canon = canon[len(chunk):]
		var q strings.Builder
		q.WriteString("INSERT INTO purge_outbox (prefix, created_at) VALUES ")
		args := []any{now}
		for i, p := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			fmt.Fprintf(&q, "($%d, $1)", i+2)
			args = append(args, p)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return fmt.Errorf("store: enqueue purge: %w", err)
		}
	}
	return nil
}

// EnqueuePurge adds prefixes to the purge outbox in a transaction of its
// own, for callers that have no transaction to join (an operator's purge,
// a repair). Changes made by the store itself enqueue their purges in
// their own transaction instead. See PurgePrefix for what a prefix may be.
func (s *Outbox) EnqueuePurge(ctx context.Context, prefixes ...string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return enqueuePurge(ctx, tx, s.dialect, s.nowMs(), prefixes...)
	})
}

// PendingPurges returns up to limit outbox rows with ids above after, in id
// order.
func (s *Outbox) PendingPurges(ctx context.Context, after int64, limit int) ([]PurgeEntry, error) {
	es, err := queryAll(ctx, s.read, func(r scanner) (PurgeEntry, error) {
		var e PurgeEntry
		var created int64
		err := r.Scan(&e.ID, &e.Prefix, &created)
		e.CreatedAt = fromMs(created)
		return e, err
	}, `SELECT id, prefix, created_at FROM purge_outbox WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: pending purges: %w", err)
	}
	return es, nil
}

// PurgeBacklog counts the outbox rows with ids above after and returns the
// creation time of the oldest (zero when there are none).
func (s *Outbox) PurgeBacklog(ctx context.Context, after int64) (n int, oldest time.Time, err error) {
	return purgeTables.backlog(ctx, s.conn, after)
}

// PurgeCursor returns the highest outbox id edge acknowledged, 0 for an
// edge never seen (it then receives every row still in the outbox).
func (s *Outbox) PurgeCursor(ctx context.Context, edge string) (int64, error) {
	return purgeTables.cursor(ctx, s.conn, edge)
}

// AckPurges records that edge acknowledged every outbox row up to id. A
// cursor only moves forward: acknowledging less than recorded (a slower
// catalogd instance sending the same rows) changes nothing.
func (s *Outbox) AckPurges(ctx context.Context, edge string, id int64) error {
	return purgeTables.ack(ctx, s.write, edge, id, s.nowMs())
}

// PrunePurges deletes the outbox rows that every one of edges has
// acknowledged and that were created before before, and returns how many
// it deleted. An edge without a cursor holds everything back. Cursors of
// edges not named are ignored (an edge removed from the configuration no
// longer holds rows back); they stay, so an edge that returns resumes
// where it was.
func (s *Outbox) PrunePurges(ctx context.Context, edges []string, before time.Time) (int64, error) {
	return purgeTables.prune(ctx, s.conn, edges, before)
}

// outboxTables names an outbox's two tables: its rows (id, created_at,
// and what the row says) and its cursors (key, acked_id, updated_at: the
// last row each target has).
type outboxTables struct {
	what    string // in errors: "purge", "replication"
	rows    string
	cursors string
	key     string // the cursors' key column
}

var (
	purgeTables       = outboxTables{what: "purge", rows: "purge_outbox", cursors: "purge_cursors", key: "edge"}
	replicationTables = outboxTables{what: "replication", rows: "replication_outbox", cursors: "replication_cursors", key: "region"}
)

// backlog counts the rows with ids above after and returns the creation
// time of the oldest (zero when there are none).
func (t outboxTables) backlog(ctx context.Context, s *conn, after int64) (n int, oldest time.Time, err error) {
	var first sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*), MIN(created_at) FROM `+t.rows+` WHERE id > $1`, after).
		Scan(&n, &first); err != nil {
		return 0, time.Time{}, fmt.Errorf("store: %s backlog: %w", t.what, err)
	}
	if first.Valid {
		oldest = fromMs(first.Int64)
	}
	return n, oldest, nil
}

// cursor returns target's cursor, 0 for a target never seen.
func (t outboxTables) cursor(ctx context.Context, s *conn, target string) (int64, error) {
	var id int64
	err := s.read.QueryRowContext(ctx, `SELECT acked_id FROM `+t.cursors+` WHERE `+t.key+` = $1`, target).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("store: %s cursor of %s: %w", t.what, target, err)
	}
	return id, nil
}

// ack moves target's cursor forward to id (never back) through x: the
// store's writer, or a transaction that records more with it.
func (t outboxTables) ack(ctx context.Context, x interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, target string, id, nowMs int64) error {
	_, err := x.ExecContext(ctx, `INSERT INTO `+t.cursors+` (`+t.key+`, acked_id, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (`+t.key+`) DO UPDATE SET acked_id = excluded.acked_id, updated_at = excluded.updated_at
		WHERE `+t.cursors+`.acked_id < excluded.acked_id`, target, id, nowMs)
	if err != nil {
		return fmt.Errorf("store: ack %s of %s up to %d: %w", t.what, target, id, err)
	}
	return nil
}

// prune deletes the rows every one of targets has and that were created
// before before, and returns how many it deleted. A target without a
// cursor holds everything back.
func (t outboxTables) prune(ctx context.Context, s *conn, targets []string, before time.Time) (int64, error) {
	if len(targets) == 0 {
		return 0, nil
	}
	floor := int64(-1)
	for _, target := range targets {
		c, err := t.cursor(ctx, s, target)
		if err != nil {
			return 0, err
		}
		if floor < 0 || c < floor {
			floor = c
		}
	}
	if floor <= 0 {
		return 0, nil
	}
	res, err := s.write.ExecContext(ctx, `DELETE FROM `+t.rows+` WHERE id <= $1 AND created_at < $2`, floor, before.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("store: prune %s outbox: %w", t.what, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: prune %s outbox: %w", t.what, err)
	}
	return n, nil
}

// purgeInTx queues edge purges of prefixes in the purge outbox inside tx,
// so they are sent if and only if the change commits (see outbox.go). It
// must be the last write of the transaction.
func (s *conn) purgeInTx(ctx context.Context, tx *sql.Tx, prefixes ...string) error {
	return enqueuePurge(ctx, tx, s.dialect, s.nowMs(), prefixes...)
}
