package catalogd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/purge"
	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/config"
	"riff/internal/obs"
	"riff/internal/playtoken"
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
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "seed" {
		return runSeed(ctx, args[1:], getenv, stdout, stderr)
	}
	fs := flag.NewFlagSet("catalogd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8080", "`address` to serve the API on")
	adminListen := fs.String("admin-listen", "", "`address` for /metrics, /healthz and /readyz (default: on -listen)")
	dbURL := fs.String("db", "file:data/riff.db", "database: file:PATH (SQLite) or postgres://… (PostgreSQL)")
	keysDir := fs.String("keys", "", "`folder` with signing.key and jwks.json from `riff keygen` (default: an ephemeral key, for development)")
	edgeURL := fs.String("edge-url", "http://127.0.0.1:8082", "base `URL` of the edge in playback URLs")
	purgeEdges := fs.String("purge-edges", "", "edge admin `URLs`, comma-separated, that get every purge (empty: no fan-out)")
	purgeLag := fs.Duration("purge-lag", time.Minute, "not ready while an edge's oldest unacknowledged purge is older than this (0: no readiness check)")
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
	shutdownTimeout := fs.Duration("shutdown-timeout", 15*time.Second, "how long to let requests finish on shutdown")
	// Ingest: uploads, the job queue and the packager.
	blobURL := fs.String("blob", "data/blob", "blob store `URL` for originals and packaged media: a folder, file:///abs/path or s3://bucket?region=…")
	uploadMax := config.ByteSize(200 << 20)
	fs.Var(&uploadMax, "upload-max", "largest audio upload")
	uploadDir := fs.String("upload-dir", "", "`folder` for uploads while they are checked and packaged (default: the system temporary folder)")
	workers := fs.Int("workers", 2, "packaging jobs run at once by this catalogd (0: none; other catalogds on the same database do them)")
	jobLease := fs.Duration("job-lease", 30*time.Second, "lease of a claimed job, renewed at a third of it; a dead worker's job is claimed again after it")
	jobAttempts := fs.Int("job-attempts", 3, "tries of a packaging job before its song fails")
	jobBackoff := fs.Duration("job-backoff", 5*time.Second, "wait before the first retry of a failed job (doubles each retry)")
	gcDelay := fs.Duration("gc-delay", time.Minute, "extra wait past -token-ttl before superseded or taken-down media is deleted (clock skew)")
	ffmpeg := fs.String("ffmpeg", "ffmpeg", "ffmpeg `binary`")
	ffprobe := fs.String("ffprobe", "ffprobe", "ffprobe `binary`")
	encodes := fs.Int("encodes", 2, "ffmpeg encodes run at once per packaging job")
	if err := config.Load(fs, args, getenv, "catalogd"); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "\nSubcommand:\n  riff catalogd seed -db DSN -songs N\n    \tfill a database with a synthetic catalog (riff catalogd seed --help)\n")
		}
		return err
	}
	logger, err := obs.NewLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("catalogd: %w", err)
	}
	o := obs.New("catalogd", logger)
	if *argonThreads < 1 || *argonThreads > 255 || *argonTime < 1 || argonMemory < 8<<10 {
		return errors.New("catalogd: argon2 parameters: need -argon2-time ≥ 1, 1 ≤ -argon2-threads ≤ 255, -argon2-memory ≥ 8KiB")
	}
	passwords, err := auth.NewPasswords(auth.Argon2Params{
		MemoryKiB: uint32(argonMemory >> 10), Time: uint32(*argonTime), Threads: uint8(*argonThreads),
	}, *argonConcurrency)
	if err != nil {
		return fmt.Errorf("catalogd: %w", err)
	}
	keys, err := LoadKeys(*keysDir, time.Now, o.Logger)
	if err != nil {
		return err
	}

	st, err := store.Open(ctx, *dbURL, store.Options{})
	if err != nil {
		return fmt.Errorf("catalogd: %w", err)
	}
	defer st.Close()
	o.AddCheck("db", st.Ping)

	// Purge fan-out: the outbox goes to every -purge-edges edge (package
	// purge); stopped after the servers, before the database closes.
	var purges *purge.Dispatcher
	if edges := splitList(*purgeEdges); len(edges) > 0 {
		if purges, err = purge.New(o, st, purge.Config{Edges: edges, Signer: keys.Playback, LagThreshold: *purgeLag}); err != nil {
			return fmt.Errorf("catalogd: %w", err)
		}
		o.AddDetail("purge", purges.Detail)
		if *purgeLag > 0 {
			o.AddCheck("purge", purges.Ready)
		}
		go purges.Run(ctx)
		defer purges.Close()
	}

	bs, err := blob.Open(ctx, *blobURL)
	if err != nil {
		return fmt.Errorf("catalogd: %w", err)
	}
	defer closeBlob(bs)
	o.AddCheck("blob", func(ctx context.Context) error { return blob.Check(ctx, bs) })
	if fsStore, ok := bs.(*blob.FS); ok && *workers > 0 {
		// The packaging writer sweeps what a crash left in the folder
		// (temp files, orphaned sidecars), in the background.
		sweepCtx, stopSweep := context.WithCancel(ctx)
		swept := make(chan struct{})
		defer func() { stopSweep(); <-swept }()
		go func() {
			defer close(swept)
			st, err := fsStore.Sweep(sweepCtx, time.Hour)
			switch {
			case err != nil && sweepCtx.Err() == nil:
				o.Logger.Warn("blob sweep", "err", err)
			case st.Temps+st.Sidecars > 0:
				o.Logger.Info("blob sweep: removed crash leftovers", "temp_files", st.Temps, "sidecars", st.Sidecars)
			}
		}()
	}
	if *workers < 0 || *jobAttempts < 1 || *jobLease < 3*time.Millisecond {
		return errors.New("catalogd: need -workers ≥ 0, -job-attempts ≥ 1 and a positive -job-lease")
	}
	pk := packager.New(packager.Config{FFmpeg: *ffmpeg, FFprobe: *ffprobe, Concurrency: *encodes, TempDir: *uploadDir})

	srv, err := NewServer(Config{
		EdgeURL: *edgeURL, PlaybackTTL: *tokenTTL, PlaybackReuse: reuse(*tokenReuse), RefreshTTL: *refreshTTL, RefreshGrace: *refreshGrace,
		MaxBodyBytes: int64(maxBody), ClientIPHeader: *clientIPHeader,
		LoginAccountBurst: *loginAccount, LoginIPBurst: *loginIP, LoginWindow: *loginWindow,
		UploadMaxBytes: int64(uploadMax), UploadDir: *uploadDir, Workers: *workers, JobLease: *jobLease,
		JobAttempts: *jobAttempts, JobBackoff: *jobBackoff, GCDelay: gcDelayConfig(*gcDelay),
	}, Deps{
		Obs: o, Store: st, Passwords: passwords,
		Access:   auth.NewAccessTokens(keys.AccessKID, keys.AccessKey, *accessTTL, time.Now),
		Playback: keys.Playback, PublicKeys: keys.Public, Now: time.Now,
		Blob: bs, Packager: pk, Purged: kickPurges(purges),
	})
	if err != nil {
		return err
	}

	handler := srv.Handler()
	if *adminListen != "" {
		handler = srv.APIHandler()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("catalogd: %w", err)
	}
	errLog := slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn)
	api := &http.Server{
		Handler: handler, ErrorLog: errLog,
		ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	errc := make(chan error, 2)
	go func() { errc <- api.Serve(ln) }()
	var admin *http.Server
	adminAddr := ""
	if *adminListen != "" {
		aln, err := net.Listen("tcp", *adminListen)
		if err != nil {
			shutdown(api.Shutdown, *shutdownTimeout)
			return fmt.Errorf("catalogd: admin: %w", err)
		}
		adminAddr = aln.Addr().String()
		admin = &http.Server{Handler: o.Handler(), ErrorLog: errLog, ReadHeaderTimeout: 10 * time.Second,
			WriteTimeout: 30 * time.Second}
		go func() { errc <- admin.Serve(aln) }()
	}
	o.Logger.Info("listening", "addr", ln.Addr().String(), "admin_addr", adminAddr, "db", st.Dialect().String(),
		"edge_url", *edgeURL, "playback_kid", keys.PlaybackKID, "access_kid", keys.AccessKID)

	// Expired refresh tokens are deleted hourly.
	go func() {
		t := time.NewTicker(time.Hour)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if n, err := st.PruneRefreshTokens(ctx, time.Now()); err != nil {
					o.Logger.Warn("pruning refresh tokens", "err", err)
				} else if n > 0 {
					o.Logger.Info("pruned refresh tokens", "count", n)
				}
			}
		}
	}()

	// Packaging and GC workers; on shutdown they hand their jobs back.
	jobsDone := make(chan struct{})
	jobsCtx, stopJobs := context.WithCancel(ctx)
	defer stopJobs()
	if *workers > 0 {
		go func() {
			defer close(jobsDone)
			if err := srv.RunJobs(jobsCtx); err != nil {
				o.Logger.Error("job workers", "err", err)
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
	o.Logger.Info("shutting down")
	if admin != nil {
		shutdown(admin.Shutdown, *shutdownTimeout)
	}
	if err := shutdown(api.Shutdown, *shutdownTimeout); err != nil {
		o.Logger.Warn("shutdown incomplete", "err", err)
	}
	stopJobs()
	<-jobsDone
	return serveErr
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

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
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

// Keys are catalogd's signing keys.
type Keys struct {
	Playback    *playtoken.Signer // mints playback tokens
	PlaybackKID string
	AccessKID   string
	AccessKey   ed25519.PrivateKey // signs access tokens (see auth.DeriveAccessKey)
	Public      *playtoken.KeySet  // playback public keys plus the access-token key
}

// LoadKeys reads DIR/signing.key (and DIR/jwks.json, when present, for the
// published playback keys) as written by `riff keygen -dir DIR`. With dir
// "" it makes an ephemeral key and logs a warning: fine for development,
// but playback URLs then verify only at edges given this process's key,
// and every token dies with the process.
func LoadKeys(dir string, now func() time.Time, log *slog.Logger) (Keys, error) {
	var k Keys
	var signing ed25519.PrivateKey
	var public *playtoken.KeySet
	if dir == "" {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return k, fmt.Errorf("catalogd: %w", err)
		}
		signing = key
		k.PlaybackKID = "ephemeral-" + playtoken.Thumbprint(key.Public().(ed25519.PublicKey))[:8]
		log.Warn("no -keys folder: using an ephemeral signing key; tokens will not survive a restart and edges must be given this key (run `riff keygen -dir DIR` and pass -keys DIR)",
			"kid", k.PlaybackKID)
	} else {
		kd, err := playtoken.LoadKeyDir(dir)
		if err != nil {
			return k, fmt.Errorf("catalogd: %w", err)
		}
		k.PlaybackKID, signing, public = kd.KID, kd.Key, kd.Public
	}
	k.Playback = playtoken.NewSigner(k.PlaybackKID, signing, now)
	if public == nil {
		public = k.Playback.KeySet()
	}
	if _, ok := public.Key(k.PlaybackKID); !ok {
		log.Warn("signing key is not in jwks.json: edges loading that file will refuse its tokens", "kid", k.PlaybackKID)
		if p, err := public.With(k.PlaybackKID, k.Playback.Public()); err == nil {
			public = p
		}
	}
	k.AccessKey = auth.DeriveAccessKey(signing)
	k.AccessKID = "access-" + playtoken.Thumbprint(k.AccessKey.Public().(ed25519.PublicKey))[:12]
	var err error
	if k.Public, err = public.With(k.AccessKID, k.AccessKey.Public().(ed25519.PublicKey)); err != nil {
		return k, fmt.Errorf("catalogd: %w", err)
	}
	return k, nil
}
