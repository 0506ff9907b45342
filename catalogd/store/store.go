package store

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL database behind a Store.
type Dialect int

const (
	SQLite Dialect = iota + 1
	Postgres
)

func (d Dialect) String() string {
	switch d {
	case SQLite:
		return "sqlite"
	case Postgres:
		return "postgres"
	}
	return "unknown"
}

// Errors the store returns, wrapped with context. Callers test them with
// errors.Is.
var (
	// ErrNotFound: the row asked for does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict: a uniqueness rule would be broken (e.g. the email is taken).
	ErrConflict = errors.New("conflict")
	// ErrNewerSchema: the database was migrated by a newer binary.
	ErrNewerSchema = errors.New("database schema is newer than this binary")
)

// Options tune Open. The zero value is usable.
type Options struct {
	// Now is the clock for created/updated times. Default time.Now.
	Now func() time.Time
	// ReadConns caps the SQLite reader pool or the PostgreSQL pool
	// (default 4×GOMAXPROCS, at least 8: a search runs several queries at
	// once).
	ReadConns int
	// SearchUpkeep is how often an SQLite store checks whether its
	// full-text indexes need merging (see MergeSearchIndexes; default 5
	// minutes, negative: never). The first check runs when Open returns.
	SearchUpkeep time.Duration
	// Tracer, when it traces, gets a span per store call from a sampled
	// context (see trace.go). Nil: no spans.
	Tracer Tracer
	// Replicas are DSNs of PostgreSQL hot standbys of the database, which
	// serve the reads that may be slightly stale (see replicas.go). They
	// are not migrated. PostgreSQL only.
	Replicas []string
	// ReplicaMaxLag takes a replica out of rotation while it lags more
	// (default DefaultReplicaMaxLag); ReplicaCheck is how often the
	// replicas' health and lag are measured (default DefaultReplicaCheck).
	ReplicaMaxLag time.Duration
	ReplicaCheck  time.Duration
}

// Store is the catalog database. It is safe for concurrent use; Close it
// when done.
//
// The methods handlers call are on Store itself, one file per aggregate
// (see the package doc). The job queue and the purge outbox, which serve
// the packaging workers and the purge dispatcher rather than requests,
// are types of their own embedded in Store: their methods are Store's
// too, and a worker can be handed just the part it needs (s.JobQueue,
// s.Outbox).
type Store struct {
	*conn
	JobQueue
	Outbox

	stmts      *stmtCache
	stopUpkeep func()      // stops the background index upkeep, or nil
	replicas   *replicaSet // nil: no replicas (see replicas.go)

	closeOnce sync.Once
	closeErr  error
}

// conn is what a Store and its parts share: the dialect, the pools and
// the clock.
type conn struct {
	dialect Dialect
	w       *sql.DB  // writes; SQLite: exactly one connection
	r       *sql.DB  // reads; the same pool as w on PostgreSQL
	read    querier  // r through prepared statements, or in tests a wrapper that explains every query
	write   sqlDB    // w, for statements outside a transaction
	spans   *spanner // nil: no spans (see trace.go)
	now     func() time.Time
}

// JobQueue is the durable queue of packaging and collection jobs
// (jobs.go), worked by catalogd's job workers. It shares its Store's
// connections and is safe for concurrent use.
type JobQueue struct{ *conn }

// Outbox is the purge outbox (outbox.go), drained by the purge
// dispatcher. It shares its Store's connections and is safe for
// concurrent use.
type Outbox struct{ *conn }

// Open connects to the database named by dsn, migrates it to the newest
// schema this binary knows and returns the Store.
//
// dsn is "file:PATH[?params]" for SQLite (the directory is created when
// missing; params are passed to modernc.org/sqlite) or
// "postgres://…"/"postgresql://…" for PostgreSQL (pgx connection string;
// e.g. search_path=… selects a schema).
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	c := &conn{now: opts.Now}
	if c.now == nil {
		c.now = time.Now
	}
	s := &Store{conn: c, JobQueue: JobQueue{c}, Outbox: Outbox{c}}
	var err error
	switch {
	case strings.HasPrefix(dsn, "file:"):
		s.dialect = SQLite
		err = s.openSQLite(dsn, opts)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		s.dialect = Postgres
		err = s.openPostgres(dsn, opts)
	default:
		return nil, fmt.Errorf("store: database %q: want file:PATH (SQLite) or postgres://… (PostgreSQL)", redact(dsn))
	}
	if len(opts.Replicas) > 0 && s.dialect != Postgres {
		return nil, errors.New("store: replicas need PostgreSQL (the database is SQLite)")
	}
	if err != nil {
		s.Close()
		return nil, err
	}
	if err := s.w.PingContext(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: connect %s: %w", redact(dsn), err)
	}
	s.stmts = newStmtCache(s.r)
	s.read, s.write = s.stmts, s.w
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.EnsureEventPartitions(ctx, s.now()); err != nil {
		s.Close()
		return nil, err
	}
	if len(opts.Replicas) > 0 {
		if err := s.openReplicas(ctx, opts.Replicas, opts); err != nil {
			s.Close()
			return nil, err
		}
		s.write = markingDB{s.write}
	}
	s.traceSQL(opts.Tracer)
	if s.dialect == SQLite {
		// Before any reader connection loads the statistics.
		if err := s.dropSearchStats(ctx); err != nil {
			s.Close()
			return nil, err
		}
		if every := cmp.Or(opts.SearchUpkeep, defaultSearchUpkeep); every > 0 {
			s.startSearchUpkeep(every)
		}
	}
	return s, nil
}

func (s *Store) openSQLite(dsn string, opts Options) error {
	path, query, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	path = strings.TrimPrefix(path, "//") // file:///abs/path
	if path == "" || path == ":memory:" || strings.Contains(query, "mode=memory") {
		return errors.New("store: SQLite needs a file (the reader pool and the writer share it)")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("store: %w", err)
		}
	}
	base := "file:" + path + "?"
	if query != "" {
		base += query + "&"
	}
	common := "_busy_timeout=10000&_foreign_keys=1&_pragma=cache_size(-32768)&_pragma=temp_store(memory)"
	var err error
	// The writer opens first so that WAL mode is set before any reader.
	if s.w, err = sql.Open("sqlite", base+common+"&_journal_mode=WAL&_synchronous=NORMAL&_txlock=immediate"); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxIdleTime(0)
	if err := s.w.Ping(); err != nil {
		return fmt.Errorf("store: open %s: %w", path, err)
	}
	// Readers map up to 4 GiB of the file: reads of a hot catalog are then
	// memory accesses to the OS page cache, not read calls into a small
	// per-connection cache.
	if s.r, err = sql.Open("sqlite", base+common+"&_pragma=mmap_size(4294967296)&_query_only=1"); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	n := opts.ReadConns
	if n <= 0 {
		n = max(8, 4*runtime.GOMAXPROCS(0))
	}
	s.r.SetMaxOpenConns(n)
	s.r.SetMaxIdleConns(n)
	s.r.SetConnMaxIdleTime(0)
	return nil
}

func (s *Store) openPostgres(dsn string, opts Options) error {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return fmt.Errorf("store: %s: %w", redact(dsn), err)
	}
	n := opts.ReadConns
	if n <= 0 {
		n = max(8, 4*runtime.GOMAXPROCS(0))
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s.w, s.r = db, db
	return nil
}

// Dialect reports which database the Store talks to.
func (s *Store) Dialect() Dialect { return s.dialect }

// Ping checks that the database answers (for /readyz). With replicas, a
// primary that does not answer while a replica is in rotation is not a
// failure: reads still work (writes answer unavailable).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		if s.replicas != nil && s.replicas.anyUp() {
			return nil
		}
		return err
	}
	var one int
	return s.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Close closes the connection pools. It is idempotent and safe after a
// failed Open.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.stopUpkeep != nil {
			s.stopUpkeep()
		}
		if s.replicas != nil {
			s.replicas.close()
		}
		if s.stmts != nil {
			s.stmts.close()
		}
		if s.r != nil && s.r != s.w {
			errs = append(errs, s.r.Close())
		}
		if s.w != nil {
			if s.dialect == SQLite {
				// Fold the WAL back into the database file on a clean stop.
				_, _ = s.w.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			}
			errs = append(errs, s.w.Close())
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// Optimize refreshes the query planner's statistics (ANALYZE) and, on
// SQLite, merges each full-text index into one segment. Run it after bulk
// loads.
func (s *Store) Optimize(ctx context.Context) error {
	if _, err := s.write.ExecContext(ctx, "ANALYZE"); err != nil {
		return fmt.Errorf("store: optimize: %w", err)
	}
	if s.dialect == SQLite {
		if err := s.dropSearchStats(ctx); err != nil {
			return fmt.Errorf("store: optimize: %w", err)
		}
		if err := s.optimizeSearch(ctx); err != nil {
			return fmt.Errorf("store: optimize: %w", err)
		}
	}
	return nil
}

// inTx runs fn in a write transaction and commits when fn returns nil.
// With tracing on, a sampled transaction is one span.
func (s *conn) inTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	if sctx, span, ok := s.spans.start(ctx, ""); ok {
		ctx = sctx
		defer func() { end(span, err) }()
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	markWrite(ctx)
	return nil
}

// nowMs is the store clock in unix milliseconds.
func (s *conn) nowMs() int64 { return s.now().UnixMilli() }

// fromMs turns stored unix milliseconds into a UTC time.
func fromMs(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || sqErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// notFound turns sql.ErrNoRows into ErrNotFound, naming what was missing.
func notFound(err error, what string, id any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("store: %s %v: %w", what, id, ErrNotFound)
	}
	return fmt.Errorf("store: %s %v: %w", what, id, err)
}

// placeholders returns "$from, $from+1, …" for n parameters.
func placeholders(from, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
	return b.String()
}

// redact hides a password in a connection string for error messages.
func redact(dsn string) string {
	scheme, rest, ok := strings.Cut(dsn, "://")
	if !ok {
		return dsn
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return dsn
	}
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return dsn
}
