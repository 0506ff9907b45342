package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// Read replicas (PostgreSQL hot standbys).
//
// With Options.Replicas, a Store opens one more pool per standby (plain
// pools: a standby is read-only, so Open migrates only the primary) and
// sends some reads there. What may go to a replica is decided per Store
// method, in one place: replicaSafe below. A read goes to a replica only
// when all of these hold:
//
//   - the exported Store method that runs it (the outermost one on the
//     call stack: CreatePlaylist reading back through PlaylistByID stays a
//     write's read) is in replicaSafe;
//   - the context does not ask for the primary (ReadPrimary: catalogd
//     marks every request that may write, so a write request reads what
//     it just wrote);
//   - a replica is in rotation: it answers the health check and its lag
//     is at most Options.ReplicaMaxLag;
//   - that replica has replayed the context's ReadAfter position, the
//     WAL position of the caller's last write (read-your-writes).
//
// Otherwise the read goes to the primary. Everything written, and every
// read inside a write transaction, goes to the primary. When the primary
// is down, reads of replicaSafe methods use any replica that answers,
// whatever its lag or ReadAfter (stale beats unavailable); a replica
// that fails a read is taken out of rotation at once and the read is
// retried on the primary.
//
// Health is measured every Options.ReplicaCheck in the background: the
// primary's pg_current_wal_flush_lsn(), each standby's pg_last_wal_replay_lsn()
// and pg_last_xact_replay_timestamp(). A standby's lag is zero when it
// has replayed everything the primary had written at the last check,
// else the age of the last transaction it replayed.
//
// Read-your-writes across catalogd instances: after a request's write
// commits, catalogd asks WriteLSN for the primary's WAL position and
// hands it to the client (a response header and a cookie); the client's
// next requests carry it back to whichever instance serves them, which
// passes it to ReadAfter. See docs/scaling.md.

// replicaSafe reports whether the reads of the exported method may be
// served by a replica (slightly stale, at most the replica lag, and never
// older than the caller's own last write). Everything not listed reads
// the primary: account and credential reads that decide logins and
// permissions (UserByEmail, UserByID, SubsonicCredentials), the job
// queue, the outbox, leases, limits, uploads, the schema version.
func replicaSafe(method string) bool {
	switch method {
	case
		// The catalog: pages, lists, search, trending.
		"SongByID", "AlbumByID", "ArtistByID", "AlbumSongs", "ArtistSongs",
		"AlbumsByArtist", "ArtistsOwnedBy", "ArtistStats", "Renditions",
		"SearchSongs", "SearchArtists", "SearchAlbums", "SearchPlaylists",
		"Trending", "SongDailyPlays", "SampleSongIDs",
		// Browsing (the Subsonic API and the web player).
		"BrowseArtists", "BrowseAlbums", "Genres", "BrowseSongs",
		// Playlists and libraries: public pages, and the owner's own
		// reads, which read-your-writes keeps fresh.
		"PlaylistByID", "PlaylistItems", "UserPlaylists",
		"LikedSongs", "LikedAmong", "FollowedArtists", "RecentlyPlayed",
		// Token-related lookups that tolerate a bounded staleness: a
		// revoked refresh family or a deleted Subsonic key is seen by the
		// replicas within the lag bound (at most -replica-max-lag).
		"SessionRevoked", "UserBySubsonicKey":
		return true
	}
	return false
}

// LSN is a PostgreSQL WAL position (pg_lsn). Its text form, "16/B374D848",
// is what clients carry back; the zero LSN asks for nothing.
type LSN uint64

func (l LSN) String() string {
	return strconv.FormatUint(uint64(l)>>32, 16) + "/" + strconv.FormatUint(uint64(l)&0xffffffff, 16)
}

// ParseLSN reads the text form of an LSN ("16/B374D848").
func ParseLSN(s string) (LSN, error) {
	hi, lo, ok := strings.Cut(s, "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("store: LSN %q: want HEX/HEX", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("store: LSN %q: want HEX/HEX", s)
	}
	return LSN(h<<32 | l), nil
}

// readPolicy is what a context asks of the reads made with it.
type readPolicy struct {
	primary bool       // every read to the primary
	method  string     // the Store method reading, when it is not on the stack
	after   LSN        // a replica must have replayed this
	mark    *WriteMark // set when a write runs (nil: nobody asked)
}

type policyKey struct{}

func policyOf(ctx context.Context) readPolicy {
	p, _ := ctx.Value(policyKey{}).(readPolicy)
	return p
}

// carryMethod records the Store method on the stack in ctx, for reads
// made with it from another goroutine.
func carryMethod(ctx context.Context) context.Context {
	p := policyOf(ctx)
	if p.method != "" {
		return ctx
	}
	p.method = outerStoreMethod()
	return context.WithValue(ctx, policyKey{}, p)
}

// ReadPrimary returns a context whose reads all go to the primary.
func ReadPrimary(ctx context.Context) context.Context {
	p := policyOf(ctx)
	p.primary = true
	return context.WithValue(ctx, policyKey{}, p)
}

// ReadAfter returns a context whose reads go to a replica only when it
// has replayed lsn (a later lsn than the context's replaces it).
func ReadAfter(ctx context.Context, lsn LSN) context.Context {
	p := policyOf(ctx)
	if lsn <= p.after {
		return ctx
	}
	p.after = lsn
	return context.WithValue(ctx, policyKey{}, p)
}

// WriteMark records whether a write ran with a context. It is safe for
// concurrent use.
type WriteMark struct{ wrote atomic.Bool }

// Wrote reports whether a write ran with the context since TrackWrites.
func (m *WriteMark) Wrote() bool { return m != nil && m.wrote.Load() }

// TrackWrites returns a context that records, in the returned WriteMark,
// whether a statement ran on the primary with it (a transaction that
// committed, or a statement outside one).
func TrackWrites(ctx context.Context) (context.Context, *WriteMark) {
	p := policyOf(ctx)
	p.mark = &WriteMark{}
	return context.WithValue(ctx, policyKey{}, p), p.mark
}

// markWrite notes a write in ctx's WriteMark, if any.
func markWrite(ctx context.Context) {
	if m := policyOf(ctx).mark; m != nil {
		m.wrote.Store(true)
	}
}

// Unavailable reports whether err says the database could not be
// reached (refused or lost connections, a server shutting down or
// starting): the primary is down, not the request wrong.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// 08: connection exception; 57P01-03: admin/crash shutdown,
		// cannot connect now; 25006: read-only transaction (a standby).
		return strings.HasPrefix(pgErr.Code, "08") || pgErr.Code == "57P01" || pgErr.Code == "57P02" ||
			pgErr.Code == "57P03" || pgErr.Code == "25006"
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

// Replica states.
const (
	ReplicaUp      = "up"      // in rotation
	ReplicaLagging = "lagging" // answers, but lags more than ReplicaMaxLag
	ReplicaDown    = "down"    // does not answer (or is not a standby)
)

// ReplicaStatus is one replica's health, for metrics and /readyz. It
// names the replica by position ("replica0"), never by address.
type ReplicaStatus struct {
	Name      string
	State     string
	Lag       time.Duration // as of the last check; -1: unknown
	ReplayLSN LSN
	Reads     uint64 // statements run there since Open
}

// replica is one standby's pool and health.
type replica struct {
	name  string
	db    *sql.DB
	stmts *stmtCache

	state  atomic.Value // string
	lag    atomic.Int64 // time.Duration; -1 unknown
	replay atomic.Uint64
	reads  atomic.Uint64
}

func (r *replica) inRotation() bool { return r.state.Load() == ReplicaUp }

// replicaSet routes reads between the primary and the replicas and keeps
// their health. It is safe for concurrent use.
type replicaSet struct {
	primary      querier // the primary's statement cache
	primaryDB    *sql.DB
	list         []*replica
	maxLag       time.Duration
	every        time.Duration
	now          func() time.Time
	primaryLSN   atomic.Uint64
	primaryUp    atomic.Bool
	primaryReads atomic.Uint64
	next         atomic.Uint64 // round robin

	stop func()
	done chan struct{}
}

// openReplicas opens plain pools on dsns (not migrated: standbys are
// read-only), checks them once and starts the background checks.
func (s *Store) openReplicas(ctx context.Context, dsns []string, opts Options) error {
	if s.dialect != Postgres {
		return errors.New("store: replicas need PostgreSQL (-db postgres://…)")
	}
	rs := &replicaSet{
		primary: s.read, primaryDB: s.w, now: s.now,
		maxLag: opts.ReplicaMaxLag, every: opts.ReplicaCheck,
	}
	if rs.maxLag <= 0 {
		rs.maxLag = DefaultReplicaMaxLag
	}
	if rs.every <= 0 {
		rs.every = DefaultReplicaCheck
	}
	rs.primaryUp.Store(true)
	n := opts.ReadConns
	if n <= 0 {
		n = max(8, 4*runtime.GOMAXPROCS(0))
	}
	for i, dsn := range dsns {
		if !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://") {
			rs.closePools()
			return fmt.Errorf("store: replica %d: want postgres://…", i)
		}
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			rs.closePools()
			return fmt.Errorf("store: replica %d %s: %w", i, redact(dsn), err)
		}
		if cfg.ConnectTimeout == 0 {
			// A replica that vanished (not refused: silent) must not hold
			// a read for the kernel's connect timeout: the read falls back
			// to the primary after this.
			cfg.ConnectTimeout = replicaConnectTimeout
		}
		db := stdlib.OpenDB(*cfg)
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
		db.SetConnMaxIdleTime(5 * time.Minute)
		r := &replica{name: "replica" + strconv.Itoa(i), db: db, stmts: newStmtCache(db)}
		r.state.Store(ReplicaDown)
		r.lag.Store(-1)
		rs.list = append(rs.list, r)
	}
	// A replica down at start is not an error: it joins when it answers.
	rs.check(ctx)
	bg, cancel := context.WithCancel(context.Background())
	rs.done = make(chan struct{})
	rs.stop = cancel
	go rs.loop(bg)
	s.replicas = rs
	s.read = rs
	return nil
}

// replicaConnectTimeout bounds a connection attempt to a replica whose
// DSN sets no connect_timeout.
const replicaConnectTimeout = 2 * time.Second

// Defaults of Options.ReplicaMaxLag and ReplicaCheck.
const (
	DefaultReplicaMaxLag = 5 * time.Second
	DefaultReplicaCheck  = 200 * time.Millisecond
)

func (rs *replicaSet) loop(ctx context.Context) {
	defer close(rs.done)
	t := time.NewTicker(rs.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rs.check(ctx)
		}
	}
}

// check measures the primary's WAL position, then each replica's. A
// server that does not answer within the check's deadline is down; a
// check cut short by ctx (Close) changes nothing.
func (rs *replicaSet) check(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, max(time.Second, 2*rs.every))
	defer cancel()
	var lsn string
	if err := rs.primaryDB.QueryRowContext(cctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&lsn); err == nil {
		if l, err := ParseLSN(lsn); err == nil {
			rs.primaryLSN.Store(uint64(l))
			rs.primaryUp.Store(true)
		}
	} else if ctx.Err() == nil {
		rs.primaryUp.Store(false)
	}
	var wg sync.WaitGroup
	for _, r := range rs.list {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs.checkReplica(ctx, cctx, r)
		}()
	}
	wg.Wait()
}

func (rs *replicaSet) checkReplica(ctx, cctx context.Context, r *replica) {
	var (
		replay     sql.NullString
		replayedAt sql.NullInt64 // unix ms of the last replayed transaction
		standby    bool
	)
	err := r.db.QueryRowContext(cctx, `SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,
		(EXTRACT(EPOCH FROM pg_last_xact_replay_timestamp()) * 1000)::bigint`).Scan(&standby, &replay, &replayedAt)
	if err != nil || !standby || !replay.Valid {
		if ctx.Err() == nil {
			r.state.Store(ReplicaDown)
			r.lag.Store(-1)
		}
		return
	}
	l, err := ParseLSN(replay.String)
	if err != nil {
		r.state.Store(ReplicaDown)
		return
	}
	r.replay.Store(uint64(l))
	var lag time.Duration
	switch {
	case uint64(l) >= rs.primaryLSN.Load():
		lag = 0
	case replayedAt.Valid:
		lag = max(0, rs.now().Sub(time.UnixMilli(replayedAt.Int64)))
	default:
		lag = -1 // behind, and nothing replayed yet to date it
	}
	r.lag.Store(int64(lag))
	switch {
	case !rs.primaryUp.Load():
		// No primary to lag behind: a replica that answers is the best
		// there is.
		r.state.Store(ReplicaUp)
	case lag < 0 || lag > rs.maxLag:
		r.state.Store(ReplicaLagging)
	default:
		r.state.Store(ReplicaUp)
	}
}

// pick returns the replica to run a read of ctx on, or nil for the
// primary.
func (rs *replicaSet) pick(ctx context.Context) *replica {
	p := policyOf(ctx)
	if p.primary {
		return nil
	}
	method := p.method
	if method == "" {
		method = outerStoreMethod()
	}
	if !replicaSafe(method) {
		return nil
	}
	n := uint64(len(rs.list))
	start := rs.next.Add(1)
	for i := range n {
		r := rs.list[(start+i)%n]
		if r.inRotation() && (p.after == 0 || LSN(r.replay.Load()) >= p.after) {
			return r
		}
	}
	if !rs.primaryUp.Load() {
		for i := range n {
			if r := rs.list[(start+i)%n]; r.state.Load() != ReplicaDown {
				return r
			}
		}
	}
	return nil
}

// failed takes r out of rotation after a failed read (the next check
// puts it back when it answers) and reports whether the read should be
// retried on the primary.
func (rs *replicaSet) failed(ctx context.Context, r *replica, err error) bool {
	if err == nil || errors.Is(err, sql.ErrNoRows) || ctx.Err() != nil {
		return false
	}
	r.state.Store(ReplicaDown)
	return true
}

func (rs *replicaSet) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if r := rs.pick(ctx); r != nil {
		r.reads.Add(1)
		rows, err := r.stmts.QueryContext(ctx, q, args...)
		if !rs.failed(ctx, r, err) {
			return rows, err
		}
	}
	rs.primaryReads.Add(1)
	return rs.primary.QueryContext(ctx, q, args...)
}

func (rs *replicaSet) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if r := rs.pick(ctx); r != nil {
		r.reads.Add(1)
		row := r.stmts.QueryRowContext(ctx, q, args...)
		if !rs.failed(ctx, r, row.Err()) {
			return row
		}
	}
	rs.primaryReads.Add(1)
	return rs.primary.QueryRowContext(ctx, q, args...)
}

// anyUp reports whether a replica is in rotation.
func (rs *replicaSet) anyUp() bool {
	for _, r := range rs.list {
		if r.inRotation() {
			return true
		}
	}
	return false
}

func (rs *replicaSet) close() {
	if rs.stop != nil {
		rs.stop()
		<-rs.done
	}
	rs.closePools()
}

func (rs *replicaSet) closePools() {
	for _, r := range rs.list {
		r.stmts.close()
		r.db.Close()
	}
}

// Replicas returns the health of each replica, in -db-replicas order
// (nil without replicas).
func (s *Store) Replicas() []ReplicaStatus {
	if s.replicas == nil {
		return nil
	}
	out := make([]ReplicaStatus, len(s.replicas.list))
	for i, r := range s.replicas.list {
		out[i] = ReplicaStatus{
			Name: r.name, State: r.state.Load().(string), Lag: time.Duration(r.lag.Load()),
			ReplayLSN: LSN(r.replay.Load()), Reads: r.reads.Load(),
		}
	}
	return out
}

// PrimaryReads is how many reads ran on the primary through the replica
// router since Open (0 without replicas).
func (s *Store) PrimaryReads() uint64 {
	if s.replicas == nil {
		return 0
	}
	return s.replicas.primaryReads.Load()
}

// PrimaryUp reports whether the primary answered its last health check
// (true without replicas: nothing checks it).
func (s *Store) PrimaryUp() bool { return s.replicas == nil || s.replicas.primaryUp.Load() }

// HasReplicas reports whether the Store was opened with replicas.
func (s *Store) HasReplicas() bool { return s.replicas != nil }

// WriteLSN returns the primary's WAL flush position
// (pg_current_wal_flush_lsn): asked after a write committed, a replica
// that has replayed it sees the write, since with synchronous_commit on
// (PostgreSQL's default) a commit is flushed before it returns. The flush
// position, not pg_current_wal_lsn or the insert position, because it is
// what the standbys are sent: on an idle primary the other two may point
// past WAL that is not flushed yet, which no standby would reach. Without
// replicas it returns 0 and asks nothing.
func (s *Store) WriteLSN(ctx context.Context) (LSN, error) {
	if s.replicas == nil {
		return 0, nil
	}
	var t string
	if err := s.w.QueryRowContext(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&t); err != nil {
		return 0, fmt.Errorf("store: WAL position: %w", err)
	}
	return ParseLSN(t)
}

// outerStoreMethod names the outermost exported Store (or JobQueue,
// Outbox) method on the call stack: the call the caller made. A method
// that reads through another (CreatePlaylist → PlaylistByID) is judged
// as the outer one.
func outerStoreMethod() string {
	var pcs [48]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	found := ""
	for {
		f, more := frames.Next()
		pkg, name, ok := strings.Cut(f.Function, ".(")
		if ok && strings.HasSuffix(pkg, "/catalogd/store") {
			if _, method, ok := strings.Cut(name, ")."); ok && method != "" && unicode.IsUpper(rune(method[0])) && !strings.Contains(method, ".") {
				found = method
			}
		}
		if !more {
			return found
		}
	}
}

// markingDB notes every statement it runs in the context's WriteMark:
// statements outside a transaction run on the primary, and most write.
type markingDB struct{ sqlDB }

func (m markingDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	res, err := m.sqlDB.ExecContext(ctx, q, args...)
	if err == nil {
		markWrite(ctx)
	}
	return res, err
}

func (m markingDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	row := m.sqlDB.QueryRowContext(ctx, q, args...)
	if row.Err() == nil {
		markWrite(ctx)
	}
	return row
}

func (m markingDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	rows, err := m.sqlDB.QueryContext(ctx, q, args...)
	if err == nil {
		markWrite(ctx)
	}
	return rows, err
}
