package origin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/valyala/fasthttp"

	"riff/internal/blob"
	"riff/internal/config"
	"riff/internal/obs"
)

// Run starts the origin and blocks until ctx is cancelled or a server fails.
// On cancel it stops accepting connections, lets responses in flight finish
// (up to -shutdown-timeout) and returns nil. Flags can also come from the
// environment (RIFF_ORIGIN_LISTEN, RIFF_ORIGIN_SECRET, …) and a -config file;
// see internal/config. Logs are JSON lines on stderr; the first says where
// the origin listens.
//
// Run is parse → build → run: parseFlags checks every flag and starts
// nothing, build opens the blob store and makes the server, and
// (*daemon).run listens, serves and shuts down in reverse order.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
	blobURL             string
	logger              *slog.Logger
	server              ServerConfig
	shutdownTimeout     time.Duration
	telemetry           obs.Telemetry
}

// parseFlags reads and checks Run's flags (and their environment variables
// and -config file). It has no side effects: it opens, starts and listens on
// nothing, so tests can table-test it.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (runConfig, error) {
	fs := flag.NewFlagSet("origin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "`address` to serve objects on")
	adminListen := fs.String("admin-listen", "", "`address` for /metrics, /healthz and /readyz (default: on -listen)")
	blobURL := fs.String("blob", "data/blob", "blob store `URL`: a folder, file:///abs/path or s3://bucket?region=…")
	secret := fs.String("secret", "", "shared `secret` clients must send in "+HeaderSecret+" (default: none required)")
	logLevel := fs.String("log-level", "info", "log `level`: debug, info, warn or error")
	storeTimeout := fs.Duration("store-timeout", 30*time.Second, "longest a request may use the store, body included")
	writeTimeout := fs.Duration("write-timeout", 2*time.Minute, "longest time to write one response")
	shutdownTimeout := fs.Duration("shutdown-timeout", 15*time.Second, "how long to let responses finish on shutdown")
	telemetry := obs.TelemetryFlags(fs)
	fallbackURL := fs.String("fallback", "", "base `URL` of another region's origin to read published objects from when the store lacks them or fails (never originals; default: none)")
	fallbackSecret := fs.String("fallback-secret", "", "`secret` to send to the -fallback origin (default: -secret)")
	fallbackTimeout := fs.Duration("fallback-timeout", 5*time.Second, "longest wait for the -fallback origin's answer headers")
	if err := config.Load(fs, args, getenv, "origin"); err != nil {
		return runConfig{}, err
	}
	if err := telemetry.Resolve(getenv); err != nil {
		return runConfig{}, fmt.Errorf("origin: %w", err)
	}
	logger, err := obs.NewLogger(stderr, *logLevel)
	if err != nil {
		return runConfig{}, fmt.Errorf("origin: %w", err)
	}
	var fallback *Fallback
	if *fallbackURL != "" {
		fsecret := *fallbackSecret
		if fsecret == "" {
			fsecret = *secret
		}
		if fallback, err = NewFallback(*fallbackURL, fsecret, *fallbackTimeout); err != nil {
			return runConfig{}, err
		}
	}
	return runConfig{
		listen:      *listen,
		adminListen: *adminListen,
		blobURL:     *blobURL,
		logger:      logger,
		server: ServerConfig{
			Secret:       *secret,
			Admin:        *adminListen == "",
			StoreTimeout: *storeTimeout,
			WriteTimeout: *writeTimeout,
			Fallback:     fallback,
		},
		shutdownTimeout: *shutdownTimeout,
		telemetry:       *telemetry,
	}, nil
}

// daemon is a built origin, ready to listen.
type daemon struct {
	cfg   runConfig
	obs   *obs.Obs
	store blob.Store
	srv   *Server
	admin *fasthttp.Server // nil without -admin-listen
}

// build opens the blob store and makes the servers; it listens on nothing
// and starts no goroutine.
func build(ctx context.Context, cfg runConfig) (*daemon, error) {
	o := obs.New("origin", cfg.logger)
	if err := o.StartTelemetry(ctx, cfg.telemetry); err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	store, err := blob.Open(ctx, cfg.blobURL)
	if err != nil {
		return nil, fmt.Errorf("origin: %w", err)
	}
	d := &daemon{cfg: cfg, obs: o, store: store, srv: NewServer(o, store, cfg.server)}
	if cfg.adminListen != "" {
		d.admin = &fasthttp.Server{
			Handler:              d.srv.AdminHandler,
			Name:                 "riff-origin-admin",
			ReadTimeout:          10 * time.Second,
			WriteTimeout:         30 * time.Second,
			IdleTimeout:          time.Minute,
			NoDefaultContentType: true,
			Logger:               fastLogger{o.Logger},
		}
	}
	return d, nil
}

// run listens, serves until ctx is cancelled or a server fails, then shuts
// down in reverse order: the admin server, the object server, the store.
func (d *daemon) run(ctx context.Context) error {
	defer d.closeStore()
	cfg := d.cfg
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	var aln net.Listener
	adminAddr := ""
	if d.admin != nil {
		if aln, err = net.Listen("tcp", cfg.adminListen); err != nil {
			ln.Close()
			return fmt.Errorf("origin: admin: %w", err)
		}
		adminAddr = aln.Addr().String()
	}
	errc := make(chan error, 2)
	go func() { errc <- d.srv.Serve(ln) }()
	if d.admin != nil {
		go func() { errc <- d.admin.Serve(aln) }()
	}
	d.obs.Logger.Info("listening", "addr", ln.Addr().String(), "admin_addr", adminAddr,
		"blob", cfg.blobURL, "secret_required", cfg.server.Secret != "")

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		if serveErr == nil {
			serveErr = errors.New("server stopped")
		}
		serveErr = fmt.Errorf("origin: %w", serveErr)
	}
	d.obs.Logger.Info("shutting down")
	if d.admin != nil {
		shutdown(d.admin.ShutdownWithContext, cfg.shutdownTimeout)
	}
	if err := shutdown(d.srv.Shutdown, cfg.shutdownTimeout); err != nil && serveErr == nil {
		d.obs.Logger.Warn("shutdown incomplete", "err", err)
	}
	d.obs.StopTelemetry()
	return serveErr
}

// closeStore closes the blob store if it holds resources.
func (d *daemon) closeStore() {
	if c, ok := d.store.(io.Closer); ok {
		c.Close()
	}
}

// shutdown calls stop with a fresh deadline (the run context is already
// cancelled when it is used).
func shutdown(stop func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return stop(ctx)
}
