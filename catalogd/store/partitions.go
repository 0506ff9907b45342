package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Listening-event retention. On PostgreSQL play_events is partitioned by
// the UTC day of started_at (migration 0011): one partition per day, named
// play_events_pYYYYMMDD, made PartitionsAhead days ahead and dropped whole
// once the day is older than the retention, which costs a catalog lock
// and an unlink instead of a DELETE of millions of rows and the vacuum
// after it. On SQLite old rows are deleted in small batches, each its own
// short write transaction, so the one writer is never held for long.
// The rollups (song_plays_daily, song_plays_hourly, the counts on songs
// and artists) are separate tables and are never touched by retention.
//
// song_listeners_daily (who was already counted for a song on a day) gets
// the same treatment (migration 0014: partitions by day on PostgreSQL,
// batched deletes on SQLite), with a fixed retention of
// MinEventsRetention whatever -events-retention says: an event is
// accepted up to EventRetention after it started, so older days are never
// read again, and the table is the catalog's largest otherwise (a row per
// listener, song and day).

const (
	// PartitionsAhead is how many days after today have a partition.
	PartitionsAhead = 3
	// MinEventsRetention is the shortest retention allowed: an event may
	// arrive EventRetention after it started, and its day must still have
	// a partition then.
	MinEventsRetention = EventRetention + 24*time.Hour
	// eventDeleteBatch is how many rows one SQLite retention DELETE takes.
	eventDeleteBatch = 1000
	partitionPrefix  = "play_events_p"
	listenerPrefix   = "song_listeners_daily_p"
	dayMs            = 24 * 3600 * 1000
)

// partitionLockID serialises partition upkeep of concurrent instances
// ("riffprt" in ASCII).
const partitionLockID = 0x72696666707274

// EnsureEventPartitions makes the play_events partitions of every day from
// MinEventsRetention before now through PartitionsAhead days after it that
// are missing. Open calls it; catalogd calls it (through PruneEvents)
// hourly. It does nothing on SQLite.
func (s *Store) EnsureEventPartitions(ctx context.Context, now time.Time) error {
	if s.dialect != Postgres {
		return nil
	}
	today := now.UnixMilli() / dayMs
	from := today - int64(MinEventsRetention/(24*time.Hour))
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(partitionLockID)); err != nil {
			return fmt.Errorf("store: partition lock: %w", err)
		}
		have, err := eventPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for d := from; d <= today+PartitionsAhead; d++ {
			name := partitionName(d)
			if slices.Contains(have, name) {
				continue
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF play_events FOR VALUES FROM (%d) TO (%d)`,
				name, d*dayMs, (d+1)*dayMs)); err != nil {
				return fmt.Errorf("store: partition %s: %w", name, err)
			}
		}
		haveListeners, err := listenerPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for d := from; d <= today+PartitionsAhead; d++ {
			name := listenerPartitionName(d)
			if slices.Contains(haveListeners, name) {
				continue
			}
			if _, err := tx.ExecContext(ctx, fmt.Sprintf(`CREATE TABLE %s PARTITION OF song_listeners_daily FOR VALUES FROM (%d) TO (%d)`,
				name, d, d+1)); err != nil {
				return fmt.Errorf("store: partition %s: %w", name, err)
			}
		}
		return nil
	})
}

// PruneEvents removes the listening events that started before the UTC
// day now-retention falls in (retention at least MinEventsRetention), and
// the song_listeners_daily rows of the days before now-MinEventsRetention,
// and returns how many partitions it dropped (PostgreSQL, which then makes
// the partitions ahead) or rows it deleted (SQLite), of both tables.
// Rollups are kept.
func (s *Store) PruneEvents(ctx context.Context, now time.Time, retention time.Duration) (int64, error) {
	retention = max(retention, MinEventsRetention)
	cutoff := now.Add(-retention).UnixMilli() / dayMs * dayMs // whole days only
	listenerCutoff := now.Add(-MinEventsRetention).UnixMilli() / dayMs
	if s.dialect != Postgres {
		total, err := s.deleteInBatches(ctx, `DELETE FROM song_listeners_daily WHERE (song_id, day, user_id) IN
			(SELECT song_id, day, user_id FROM song_listeners_daily WHERE day < $1 LIMIT $2)`, listenerCutoff)
		if err != nil {
			return total, fmt.Errorf("store: prune listeners: %w", err)
		}
		n, err := s.deleteInBatches(ctx, `DELETE FROM play_events WHERE (user_id, event_id) IN
			(SELECT user_id, event_id FROM play_events WHERE started_at < $1 LIMIT $2)`, cutoff)
		if err != nil {
			return total + n, fmt.Errorf("store: prune events: %w", err)
		}
		return total + n, nil
	}
	var dropped int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(partitionLockID)); err != nil {
			return fmt.Errorf("store: partition lock: %w", err)
		}
		// Dropping a partition locks play_events briefly; give up rather
		// than queue every insert behind a long reader.
		if _, err := tx.ExecContext(ctx, "SET LOCAL lock_timeout = '5s'"); err != nil {
			return err
		}
		have, err := eventPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, name := range have {
			day, ok := partitionDay(name)
			if !ok || (day+1)*dayMs > cutoff {
				continue
			}
			if _, err := tx.ExecContext(ctx, "DROP TABLE "+name); err != nil {
				return fmt.Errorf("store: drop partition %s: %w", name, err)
			}
			dropped++
		}
		haveListeners, err := listenerPartitions(ctx, tx)
		if err != nil {
			return err
		}
		for _, name := range haveListeners {
			day, ok := partitionDayOf(name, listenerPrefix)
			if !ok || day >= listenerCutoff {
				continue
			}
			if _, err := tx.ExecContext(ctx, "DROP TABLE "+name); err != nil {
				return fmt.Errorf("store: drop partition %s: %w", name, err)
			}
			dropped++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: prune events: %w", err)
	}
	return dropped, s.EnsureEventPartitions(ctx, now)
}

// EventPartitions returns the names of play_events' partitions in day
// order (none on SQLite).
func (s *Store) EventPartitions(ctx context.Context) ([]string, error) {
	if s.dialect != Postgres {
		return nil, nil
	}
	var names []string
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		names, err = eventPartitions(ctx, tx)
		return err
	})
	return names, err
}

// ListenerPartitions returns the names of song_listeners_daily's
// partitions in day order (none on SQLite).
func (s *Store) ListenerPartitions(ctx context.Context) ([]string, error) {
	if s.dialect != Postgres {
		return nil, nil
	}
	var names []string
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		names, err = listenerPartitions(ctx, tx)
		return err
	})
	return names, err
}

func eventPartitions(ctx context.Context, tx *sql.Tx) ([]string, error) {
	return partitionsOf(ctx, tx, "play_events")
}

func listenerPartitions(ctx context.Context, tx *sql.Tx) ([]string, error) {
	return partitionsOf(ctx, tx, "song_listeners_daily")
}

// partitionsOf returns the partitions of table, by name.
func partitionsOf(ctx context.Context, tx *sql.Tx, table string) ([]string, error) {
	names, err := queryColumn[string](ctx, tx, `SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = $1::regclass ORDER BY c.relname`, table)
	if err != nil {
		return nil, fmt.Errorf("store: partitions of %s: %w", table, err)
	}
	return names, nil
}

// deleteInBatches runs del (a DELETE taking $1 = arg and $2 = the batch
// size) until it deletes fewer rows than a batch, each batch its own
// short write, and returns the rows deleted.
func (s *Store) deleteInBatches(ctx context.Context, del string, arg int64) (int64, error) {
	var total int64
	for {
		res, err := s.write.ExecContext(ctx, del, arg, eventDeleteBatch)
		if err != nil {
			return total, err
		}
		n, _ := res.RowsAffected()
		total += n
		if n < eventDeleteBatch {
			return total, nil
		}
	}
}

// isNoPartition reports whether err is PostgreSQL's refusal of a row no
// partition takes.
func isNoPartition(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23514" && strings.Contains(pgErr.Message, "no partition")
}

// partitionName names the partition of day (days since the unix epoch).
func partitionName(day int64) string {
	return partitionPrefix + time.UnixMilli(day*dayMs).UTC().Format("20060102")
}

// listenerPartitionName names the song_listeners_daily partition of day.
func listenerPartitionName(day int64) string {
	return listenerPrefix + time.UnixMilli(day*dayMs).UTC().Format("20060102")
}

// partitionDay is partitionName's inverse.
func partitionDay(name string) (int64, bool) { return partitionDayOf(name, partitionPrefix) }

// partitionDayOf returns the day of the partition name made of prefix and
// the date.
func partitionDayOf(name, prefix string) (int64, bool) {
	t, err := time.Parse("20060102", strings.TrimPrefix(name, prefix))
	if err != nil || !strings.HasPrefix(name, prefix) {
		return 0, false
	}
	return t.UnixMilli() / dayMs, true
}
