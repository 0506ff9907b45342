package catalogd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/ingest"
	"riff/catalogd/purge"
	"riff/catalogd/replicate"
	"riff/catalogd/store"
	"riff/catalogd/subsonic"
	"riff/internal/blob"
	"riff/internal/config"
	"riff/internal/obs"
	"riff/packager"
)

// Run starts catalogd and its packaging job workers and blocks until ctx
// is cancelled or a server fails. On cancel it stops accepting
// connections, lets requests in flight finish (up to -shutdown-timeout),
// hands unfinished jobs back to the queue, closes the database and
// returns nil.
//
// With "seed" as the first argument it fills a database with a synthetic
// catalog instead (see runSeed). Flags can also come from the environment
// (RIFF_CATALOGD_LISTEN, …) and a -config file; see internal/config. Logs
// are JSON lines on stderr; the first says where catalogd listens.
//
// Run is parse → build → run: parseFlags checks every flag and starts
// nothing, build opens the database and the blob store and makes the
// parts, and (*daemon).run starts the background work, listens, serves and
// shuts down in reverse order.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "seed" {
		return runSeed(ctx, args[1:], getenv, stdout, stderr)
	}
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	d, err := build(ctx, cfg)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// runConfig is what Run's flags say, checked.
type runConfig struct {
	listen, adminListen string // adminListen "": admin endpoints on listen
	db                  string
	replicas            []string      // -db-replicas: PostgreSQL hot standbys
	replicaMaxLag       time.Duration // out of rotation past it
	keysDir             string
	blobURL             string
	uploadDir           string // base of the spool (ingest.OpenSpool)
	logger              *slog.Logger
	purgeEdges          []string
	purgeLag            time.Duration
	purgeLease          time.Duration // PostgreSQL: the dispatcher lease's term
	retention           time.Duration // of raw listening events
	accessTTL           time.Duration
	argon2              auth.Argon2Params
	argon2Concurrency   int
	packager            packager.Config
	server              Config
	shutdownTimeout     time.Duration
	telemetry           obs.Telemetry
}

// parseFlags reads and checks Run's flags (and their environment variables
// and -config file). It has no side effects: it opens, starts and listens on
// nothing, so tests can table-test it.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (runConfig, error) {
	fs := flag.NewFlagSet("catalogd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to serve the API on")
	adminListen := fs.String("admin-listen", "", "`address` for /metrics, /healthz and /readyz (default: on -listen)")
	dbURL := fs.String("db", "file:data/riff.db", "database: file:PATH (SQLite) or postgres://… (PostgreSQL)")
	dbReplicas := fs.String("db-replicas", "", "PostgreSQL hot standbys of -db, `URLs` comma-separated, that serve the reads that may be slightly stale (never the writer's own: read-your-writes); PostgreSQL only")
	replicaMaxLag := fs.Duration("replica-max-lag", store.DefaultReplicaMaxLag, "a replica lagging more than this leaves rotation until it catches up")
	keysDir := fs.String("keys", "", "`folder` with signing.key and jwks.json from `riff keygen` (default: an ephemeral key, for development)")
	edgeURL := fs.String("edge-url", "http://127.0.0.1:8082", "base `URL` of the edge in playback URLs")
	purgeEdges := fs.String("purge-edges", "", "edge admin `URLs`, comma-separated, that get every purge (empty: no fan-out)")
	purgeLag := fs.Duration("purge-lag", time.Minute, "not ready while an edge's oldest unacknowledged purge is older than this (0: no readiness check)")
	purgeLease := fs.Duration("purge-lease", 10*time.Second, "PostgreSQL: term of the lease that lets one catalogd of those on the database send the purge outbox, renewed every third of it; a dead holder is replaced within it")
	eventsRetention := fs.Duration("events-retention", 90*24*time.Hour, "keep raw listening events this long (whole UTC days; at least 8 days); the rollups are kept")
	tokenTTL := fs.Duration("token-ttl", time.Hour, "lifetime of playback URLs")
	tokenReuse := fs.Duration("token-reuse", 5*time.Minute, "hand out the same playback token to a user for a song for this long (0: never)")
	accessTTL := fs.Duration("access-ttl", 15*time.Minute, "lifetime of access tokens")
	refreshTTL := fs.Duration("refresh-ttl", 30*24*time.Hour, "lifetime of an unused refresh token")
	refreshGrace := fs.Duration("refresh-grace", 10*time.Second, "how long a rotated refresh token may be retried without ending the session")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	argonMemory := config.ByteSize(19 << 20)
	fs.Var(&argonMemory, "argon2-memory", "argon2id memory per password hash (OWASP: 19MiB)")
	argonTime := fs.Uint("argon2-time", 2, "argon2id passes (OWASP: 2)")
	argonThreads := fs.Uint("argon2-threads", 1, "argon2id lanes (OWASP: 1)")
	argonConcurrency := fs.Int("argon2-concurrency", runtime.GOMAXPROCS(0), "password hashes computed at once (the rest wait)")
	maxBody := config.ByteSize(64 << 10)
	fs.Var(&maxBody, "max-body", "largest request body")
	clientIPHeader := fs.String("client-ip-header", "", "`header` whose right-most address is the client (set behind a load balancer, e.g. X-Forwarded-For)")
	loginAccount := fs.Int("login-account-limit", 10, "login attempts per account per -login-window")
	loginIP := fs.Int("login-ip-limit", 30, "login and register attempts per client address per -login-window")
	loginWindow := fs.Duration("login-window", 15*time.Minute, "window of the login rate limits")
	subsonicPlain := fs.Bool("subsonic-allow-plain", false, "accept Subsonic's plain p= passwords (app passwords only) on requests that came over TLS")
	shutdownTimeout := fs.Duration("shutdown-timeout", 15*time.Second, "how long to let requests finish on shutdown")
	// Ingest: uploads, the job queue and the packager.
	blobURL := fs.String("blob", "data/blob", "blob store `URL` for originals and packaged media: a folder, file:///abs/path or s3://bucket?region=…")
	uploadMax := config.ByteSize(200 << 20)
	fs.Var(&uploadMax, "upload-max", "largest audio upload")
	uploadsPerUser := fs.Int("uploads-per-user", 2, "uploads one account may have in progress (received and checked) at once; past it: 429")
	uploadsMax := fs.Int("uploads-max", 8, "uploads in progress at once in this catalogd; past it: 429")
	spoolMax := config.ByteSize(0)
	fs.Var(&spoolMax, "spool-max", "bytes uploads in progress may hold in -upload-dir at once, each counted at its length; past it: 503 (default 8 × -upload-max)")
	uploadDir := fs.String("upload-dir", "", "`folder` for temporary work: uploads while they are checked, originals and encodes while they are packaged; what a crashed catalogd left there is removed at start (default: riff-catalogd in the system temporary folder)")
	workers := fs.Int("workers", 2, "packaging jobs run at once by this catalogd (0: none; other catalogds on the same database do them)")
	jobLease := fs.Duration("job-lease", 30*time.Second, "lease of a claimed job, renewed at a third of it; a dead worker's job is claimed again after it")
	jobAttempts := fs.Int("job-attempts", 3, "tries of a packaging job before its song fails")
	jobBackoff := fs.Duration("job-backoff", 5*time.Second, "wait before the first retry of a failed job (doubles each retry)")
	gcDelay := fs.Duration("gc-delay", time.Minute, "extra wait past -token-ttl before superseded or taken-down media is deleted (clock skew)")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg `binary`")
	ffprobe := fs.String("ffprobe", "ffprobe", "ffprobe `binary`")
	encodes := fs.Int("encodes", 2, "ffmpeg encodes run at once per packaging job")
	telemetry := obs.TelemetryFlags(fs)
	regionsFile, regionHeader, trustedProxies := addRegionFlags(fs) // regions_run.go
	maxDuration := fs.Duration("max-duration", packager.DefaultMaxDuration, "longest audio accepted, measured by decoding the upload (the decode stops past it)")
	encodeBudget := fs.Duration("encode-budget", packager.DefaultEncodeBudget, "wall time one ffmpeg encode may take per second of audio (plus 30s); an encode over it fails the job for good")
	if err := config.Load(fs, args, getenv, "catalogd"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "\nSubcommand:\n  riff catalogd seed -db DSN -songs N\n    \tfill a database with a synthetic catalog (riff catalogd seed --help)\n")
		}
		return runConfig{}, err
	}
	logger, err := obs.NewLogger(stderr, *logLevel)
	if err != nil {
		return runConfig{}, fmt.Errorf("catalogd: %w", err)
	}
	if err := telemetry.Resolve(getenv); err != nil {
		return runConfig{}, fmt.Errorf("catalogd: %w", err)
	}
	switch {
	case *argonThreads < 1 || *argonThreads > 255 || *argonTime < 1 || argonMemory < 8<<10:
		return runConfig{}, errors.New("catalogd: argon2 parameters: need -argon2-time ≥ 1, 1 ≤ -argon2-threads ≤ 255, -argon2-memory ≥ 8KiB")
	case *workers < 0 || *jobAttempts < 1 || *jobLease < 3*time.Millisecond:
		return runConfig{}, errors.New("catalogd: need -workers ≥ 0, -job-attempts ≥ 1 and a positive -job-lease")
	case *maxDuration < time.Second || *maxDuration > 24*time.Hour:
		return runConfig{}, fmt.Errorf("catalogd: -max-duration %v: want 1s to 24h", *maxDuration)
	case *uploadsPerUser < 1 || *uploadsMax < 1 || spoolMax < 0:
		return runConfig{}, errors.New("catalogd: need -uploads-per-user ≥ 1, -uploads-max ≥ 1 and -spool-max ≥ 0")
	case *purgeLease < 30*time.Millisecond:
		return runConfig{}, fmt.Errorf("catalogd: -purge-lease %v: want at least 30ms", *purgeLease)
	case *eventsRetention < store.MinEventsRetention:
		return runConfig{}, fmt.Errorf("catalogd: -events-retention %v: want at least %v (events may arrive a week late)", *eventsRetention, store.MinEventsRetention)
	case *encodeBudget <= 0:
		return runConfig{}, fmt.Errorf("catalogd: -encode-budget %v: want a positive duration", *encodeBudget)
	}
	if err := checkDSN(*dbURL); err != nil {
		return runConfig{}, err
	}
	replicas := config.SplitList(*dbReplicas)
	if err := checkReplicas(*dbURL, replicas, *replicaMaxLag); err != nil {
		return runConfig{}, err
	}
	if _, err := normalizeEdgeURL(*edgeURL); err != nil {
		return runConfig{}, err
	}
	chooser, blobURLRegion, err := loadRegions(fs, *regionsFile, *regionHeader, *trustedProxies, *blobURL)
	if err != nil {
		return runConfig{}, err
	}
	*blobURL = blobURLRegion
	return runConfig{
		listen:        *listen,
		adminListen:   *adminListen,
		db:            *dbURL,
		replicas:      replicas,
		replicaMaxLag: *replicaMaxLag,
		keysDir:       *keysDir,
		blobURL:       *blobURL,
		uploadDir:     spoolBase(*uploadDir),
		logger:        logger,
		purgeEdges:    purgeTargets(config.SplitList(*purgeEdges), chooser),
		purgeLag:      *purgeLag,
		purgeLease:    *purgeLease,
		retention:     *eventsRetention,
		accessTTL:     *accessTTL,
		argon2: auth.Argon2Params{
			MemoryKiB: uint32(argonMemory >> 10), Time: uint32(*argonTime), Threads: uint8(*argonThreads),
		},
		argon2Concurrency: *argonConcurrency,
		packager: packager.Config{FFmpeg: *ffmpeg, FFprobe: *ffprobe, Concurrency: *encodes,
			MaxDuration: *maxDuration, EncodeBudget: *encodeBudget},
		server: Config{
			ReplicaMaxLag: *replicaMaxLag,
			EdgeURL:       *edgeURL, Regions: chooser, PlaybackTTL: *tokenTTL, PlaybackReuse: reuse(*tokenReuse), RefreshTTL: *refreshTTL, RefreshGrace: *refreshGrace,
			MaxBodyBytes: int64(maxBody), ClientIPHeader: *clientIPHeader, SubsonicAllowPlain: *subsonicPlain,
			LoginAccountBurst: *loginAccount, LoginIPBurst: *loginIP, LoginWindow: *loginWindow,
			UploadMaxBytes: int64(uploadMax), UploadsPerUser: *uploadsPerUser, UploadsTotal: *uploadsMax,
			SpoolMaxBytes: int64(spoolMax), Workers: *workers, JobLease: *jobLease,
			JobAttempts: *jobAttempts, JobBackoff: *jobBackoff, GCDelay: gcDelayConfig(*gcDelay),
		},
		shutdownTimeout: *shutdownTimeout,
		telemetry:       *telemetry,
	}, nil
}

// checkDSN refuses a database URL store.Open would refuse for its scheme,
// before anything is opened.
func checkDSN(dsn string) error {
	for _, p := range []string{"file:", "postgres://", "postgresql://"} {
		if strings.HasPrefix(dsn, p) {
			return nil
		}
	}
	return errors.New("catalogd: -db: want file:PATH (SQLite) or postgres://… (PostgreSQL)")
}

// checkReplicas refuses -db-replicas that cannot work: replicas of an
// SQLite database, or URLs that are not PostgreSQL's.
func checkReplicas(db string, replicas []string, maxLag time.Duration) error {
	if len(replicas) == 0 {
		return nil
	}
	if !strings.HasPrefix(db, "postgres://") && !strings.HasPrefix(db, "postgresql://") {
		return errors.New("catalogd: -db-replicas needs a PostgreSQL -db (postgres://…): SQLite has no replicas")
	}
	for i, r := range replicas {
		if !strings.HasPrefix(r, "postgres://") && !strings.HasPrefix(r, "postgresql://") {
			return fmt.Errorf("catalogd: -db-replicas: replica %d: want postgres://…", i)
		}
	}
	if maxLag <= 0 {
		return fmt.Errorf("catalogd: -replica-max-lag %v: want a positive duration", maxLag)
	}
	return nil
}

// exportBacklog exports the job queue's backlog (riff_jobs_due,
// riff_jobs_oldest_due_seconds: the RiffUploadQueueOld alert) and shows it
// in /readyz's detail. The database is asked when they are read (a scrape,
// a readiness probe), with a short deadline, once for both gauges (see
// backlogCache); a failure reads as -1.
func exportBacklog(o *obs.Obs, backlog func(context.Context) (store.JobBacklog, error)) {
	c := &backlogCache{read: backlog, now: time.Now}
	o.Metrics.NewGauge(`riff_jobs_due`, func() float64 {
		if b, ok := c.get(); ok {
			return float64(b.Due)
		}
		return -1
	})
	o.Metrics.NewGauge(`riff_jobs_oldest_due_seconds`, func() float64 {
		if b, ok := c.get(); ok {
			return b.OldestDue.Seconds()
		}
		return -1
	})
	o.AddDetail("jobs", func() any {
		b, ok := c.get()
		if !ok {
			return nil
		}
		return map[string]any{"due": b.Due, "oldest_due_seconds": int64(b.OldestDue.Seconds())}
	})
}

// backlogCache runs the backlog query at most once per backlogFresh: a
// scrape reads both backlog gauges one after the other, and they share one
// answer (concurrent readers wait for it rather than query again). It is
// safe for concurrent use.
type backlogCache struct {
	read func(context.Context) (store.JobBacklog, error)
	now  func() time.Time

	mu sync.Mutex
	at time.Time // of the last answer; zero: none yet
	b  store.JobBacklog
	ok bool
}

// backlogFresh is how long one backlog answer serves: longer than a
// scrape takes, much shorter than any scrape interval.
const backlogFresh = time.Second

func (c *backlogCache) get() (store.JobBacklog, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := c.now(); c.at.IsZero() || now.Sub(c.at) >= backlogFresh || now.Before(c.at) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		b, err := c.read(ctx)
		c.at, c.b, c.ok = now, b, err == nil
	}
	return c.b, c.ok
}

// spoolBase is the -upload-dir flag's folder ("": riff-catalogd in the
// system temporary folder).
func spoolBase(dir string) string {
	if dir == "" {
		return filepath.Join(os.TempDir(), "riff-catalogd")
	}
	return dir
}

// daemon is a built catalogd, ready to run.
type daemon struct {
	cfg    runConfig
	obs    *obs.Obs
	keys   Keys
	spool  *ingest.Spool
	store  *store.Store
	purges *purge.Dispatcher // nil without -purge-edges
	blob   blob.Store
	// replication copies to the other regions' stores, regionBlobs (nil
	// and empty with one region; regions_run.go).
	replication *replicate.Dispatcher
	regionBlobs []blob.Store
	srv         *Server
}

// build makes catalogd's parts from cfg: it reads the keys, opens (and
// migrates) the database and the blob store, and makes the purge
// dispatcher and the server. It listens on nothing and starts no
// goroutine; on error it closes what it opened.
func build(ctx context.Context, cfg runConfig) (_ *daemon, err error) {
	d := &daemon{cfg: cfg, obs: obs.New("catalogd", cfg.logger)}
	defer func() {
		if err != nil {
			d.close()
		}
	}()
	if err := d.obs.StartTelemetry(ctx, cfg.telemetry); err != nil {
		return nil, fmt.Errorf("catalogd: %w", err)
	}
	passwords, err := auth.NewPasswords(cfg.argon2, cfg.argon2Concurrency)
	if err != nil {
		return nil, fmt.Errorf("catalogd: %w", err)
	}
	if d.keys, err = LoadKeys(cfg.keysDir, time.Now, d.obs.Logger); err != nil {
		return nil, err
	}
	var tracer store.Tracer // nil with tracing off: the store wraps nothing
	if d.obs.Tracing() {
		tracer = d.obs
	}
	if d.store, err = store.Open(ctx, cfg.db, store.Options{Tracer: tracer,
		Replicas: cfg.replicas, ReplicaMaxLag: cfg.replicaMaxLag}); err != nil {
		return nil, fmt.Errorf("catalogd: %w", err)
	}
	d.obs.AddCheck("db", d.store.Ping)
	exportReplicas(d.obs, d.store)
	exportBacklog(d.obs, d.store.Backlog)
	// Purge fan-out: the outbox goes to every -purge-edges edge (package
	// purge).
	if len(cfg.purgeEdges) > 0 {
		pc := purge.Config{Edges: cfg.purgeEdges, Signer: d.keys.Playback}
		pc.LagThreshold = cfg.purgeLag
		if d.store.Dialect() == store.Postgres {
			// Several catalogd may share the database: one sends.
			pc.Lease, pc.LeaseTTL = d.store, cfg.purgeLease
		}
		if d.purges, err = purge.New(d.obs, d.store, pc); err != nil {
			return nil, fmt.Errorf("catalogd: %w", err)
		}
		d.obs.AddDetail("purge", d.purges.Detail)
		if cfg.purgeLag > 0 {
			d.obs.AddCheck("purge", d.purges.Ready)
		}
	}
	if d.blob, err = blob.Open(ctx, cfg.blobURL); err != nil {
		return nil, fmt.Errorf("catalogd: %w", err)
	}
	bs := d.blob
	d.obs.AddCheck("blob", func(ctx context.Context) error { return blob.Check(ctx, bs) })
	if err := d.buildReplication(ctx); err != nil {
		return nil, err
	}
	// Temporary work lives in a folder of this process under -upload-dir;
	// what dead catalogds left there goes first.
	spool, swept, err := ingest.OpenSpool(cfg.uploadDir)
	if err != nil {
		return nil, fmt.Errorf("catalogd: -upload-dir: %w", err)
	}
	d.spool = spool
	if swept > 0 {
		d.obs.Logger.Info("upload spool: removed what stopped catalogds left", "folders", swept, "dir", cfg.uploadDir)
	}
	cfg.server.UploadDir, cfg.packager.TempDir = spool.Dir, spool.Dir
	d.srv, err = NewServer(cfg.server, Deps{
		Obs: d.obs, Store: d.store, Passwords: passwords,
		Access:   auth.NewAccessTokens(d.keys.AccessKID, d.keys.AccessKey, cfg.accessTTL, time.Now),
		Playback: d.keys.Playback, PublicKeys: d.keys.Public, Now: time.Now,
		Blob: d.blob, Packager: packager.New(cfg.packager), Purged: kickPurges(d.purges),
		// App passwords are sealed under a key derived from the access-token
		// key (itself derived from signing.key): no new secret to keep.
		SubsonicKey: subsonic.DeriveKey(d.keys.AccessKey),
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// close releases what build opened, in reverse order: the purge
// dispatcher, the blob store, the spool (its work folder is removed), the
// database. It works after a partial
// build.
func (d *daemon) close() {
	if d.purges != nil {
		d.purges.Close()
	}
	if d.replication != nil {
		d.replication.Close()
	}
	for _, bs := range d.regionBlobs {
		closeBlob(bs)
	}
	if d.blob != nil {
		closeBlob(d.blob)
	}
	if d.spool != nil {
		d.spool.Close()
	}
	if d.store != nil {
		d.store.Close()
	}
}

// run starts the background work (purge fan-out, the blob sweep, database
// upkeep, the job workers), listens, serves until ctx is
// cancelled or a server fails, then shuts down in reverse order: the
// servers, the job workers (they hand their jobs back), the background
// work, the stores. It owns d: when it returns, everything is closed.
func (d *daemon) run(ctx context.Context) error {
	defer d.close()
	cfg, log := d.cfg, d.obs.Logger
	bgCtx, stopBg := context.WithCancel(ctx)
	var bg []chan struct{} // closed when each background goroutine ends
	goBg := func(f func(context.Context)) {
		done := make(chan struct{})
		bg = append(bg, done)
		go func() {
			defer close(done)
			f(bgCtx)
		}()
	}
	defer func() {
		stopBg()
		for _, done := range bg {
			<-done
		}
	}()
	if d.purges != nil {
		goBg(func(ctx context.Context) { d.purges.Run(ctx) })
	}
	if d.replication != nil {
		goBg(func(ctx context.Context) { d.replication.Run(ctx) })
	}
	if fsStore, ok := d.blob.(*blob.FS); ok && cfg.server.Workers > 0 {
		// The packaging writer sweeps what a crash left in the folder
		// (temp files, orphaned sidecars), in the background.
		goBg(func(ctx context.Context) { sweepBlob(ctx, fsStore, log) })
	}
	goBg(func(ctx context.Context) { upkeep(ctx, d.store, cfg.retention, log) })

	handler := d.srv.Handler()
	if cfg.adminListen != "" {
		handler = d.srv.APIHandler()
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("catalogd: %w", err)
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	api := &http.Server{
		Handler: handler, ErrorLog: errLog,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(ln) }()
	var admin *http.Server
	adminAddr := ""
	if cfg.adminListen != "" {
		aln, err := net.Listen("tcp", cfg.adminListen)
		if err != nil {
			shutdown(api.Shutdown, cfg.shutdownTimeout)
			return fmt.Errorf("catalogd: admin: %w", err)
		}
		adminAddr = aln.Addr().String()
		admin = &http.Server{Handler: d.obs.Handler(), ErrorLog: errLog, ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second}
		go func() { errc <- admin.Serve(aln) }()
	}
	log.Info("listening", "addr", ln.Addr().String(), "admin_addr", adminAddr, "db", d.store.Dialect().String(),
		"edge_url", cfg.server.EdgeURL, "playback_kid", d.keys.PlaybackKID, "access_kid", d.keys.AccessKID)

	// Packaging and GC workers; on shutdown they hand their jobs back.
	jobsDone := make(chan struct{})
	jobsCtx, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	if cfg.server.Workers > 0 {
		go func() {
			defer close(jobsDone)
			if err := d.srv.RunJobs(jobsCtx); err != nil {
				log.Error("job workers", "err", err)
			}
		}()
	} else {
		close(jobsDone)
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		if serveErr == nil || errors.Is(serveErr, http.ErrServerClosed) {
			serveErr = errors.New("server stopped")
		}
		serveErr = fmt.Errorf("catalogd: %w", serveErr)
	}
	log.Info("shutting down")
	if admin != nil {
		shutdown(admin.Shutdown, cfg.shutdownTimeout)
	}
	if err := shutdown(api.Shutdown, cfg.shutdownTimeout); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	stopJobs()
	<-jobsDone
	d.obs.StopTelemetry()
	return serveErr
}

// sweepBlob removes what a crash left in a blob folder.
func sweepBlob(ctx context.Context, fsStore *blob.FS, log *slog.Logger) {
	st, err := fsStore.Sweep(ctx, time.Hour)
	switch {
	case err != nil && ctx.Err() == nil:
		log.Warn("blob sweep", "err", err)
	case st.Temps+st.Sidecars > 0:
		log.Info("blob sweep: removed crash leftovers", "temp_files", st.Temps, "sidecars", st.Sidecars)
	}
}

// upkeep does the database's housekeeping at start and then hourly until
// ctx ends: it deletes expired refresh tokens and recovered login-limit
// keys, and applies the listening-event retention (on PostgreSQL it drops
// old day partitions and makes the days ahead; see store.PruneEvents).
// Every catalogd on a database runs it; the statements are idempotent and
// partition changes are serialised in the database.
func upkeep(ctx context.Context, st *store.Store, retention time.Duration, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		if n, err := st.PruneRefreshTokens(ctx, now); err != nil {
			log.Warn("pruning refresh tokens", "err", err)
		} else if n > 0 {
			log.Info("pruned refresh tokens", "count", n)
		}
		if _, err := st.PruneAttempts(ctx, now); err != nil {
			log.Warn("pruning login limits", "err", err)
		}
		if n, err := st.PruneEvents(ctx, now, retention); err != nil {
			log.Warn("listening-event retention", "err", err)
		} else if n > 0 {
			log.Info("listening-event retention", "dropped", n, "unit", map[store.Dialect]string{store.Postgres: "partitions", store.SQLite: "rows"}[st.Dialect()])
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// gcDelayConfig maps the -gc-delay flag (0: none) to Config.GCDelay (0 is
// the default there, negative none).
func gcDelayConfig(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// kickPurges is the Deps.Purged hook for a dispatcher (nil: none).
func kickPurges(d *purge.Dispatcher) func() {
	if d == nil {
		return nil
	}
	return d.Kick
}

// closeBlob closes a blob store that holds resources.
func closeBlob(bs blob.Store) {
	if c, ok := bs.(io.Closer); ok {
		c.Close()
	}
}

// reuse maps the -token-reuse flag (0 disables) to Config.PlaybackReuse
// (0 is the default there, negative disables).
func reuse(d time.Duration) time.Duration {
	if d <= 0 {
		return -1
	}
	return d
}

// shutdown calls stop with a fresh deadline (the run context is already
// cancelled when it is used).
func shutdown(stop func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return stop(ctx)
}
