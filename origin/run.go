package origin

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
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
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
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
	if err := config.Load(fs, args, getenv, "origin"); err != nil {
		return err
	}
	logger, err := obs.NewLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	o := obs.New("origin", logger)

	store, err := blob.Open(ctx, *blobURL)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	if c, ok := store.(io.Closer); ok {
		defer c.Close()
	}
	srv := NewServer(o, store, ServerConfig{
		Secret:       *secret,
		Admin:        *adminListen == "",
		StoreTimeout: *storeTimeout,
		WriteTimeout: *writeTimeout,
	})

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("origin: %w", err)
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()

	var admin *fasthttp.Server
	adminAddr := ""
	if *adminListen != "" {
		aln, err := net.Listen("tcp", *adminListen)
		if err != nil {
			shutdown(srv.Shutdown, *shutdownTimeout)
			return fmt.Errorf("origin: admin: %w", err)
		}
		adminAddr = aln.Addr().String()
		admin = &fasthttp.Server{
			Handler:              srv.AdminHandler,
			Name:                 "riff-origin-admin",
			ReadTimeout:          10 * time.Second,
			WriteTimeout:         30 * time.Second,
			IdleTimeout:          time.Minute,
			NoDefaultContentType: true,
			Logger:               fastLogger{o.Logger},
		}
		go func() { errc <- admin.Serve(aln) }()
	}
	o.Logger.Info("listening", "addr", ln.Addr().String(), "admin_addr", adminAddr,
		"blob", *blobURL, "secret_required", *secret != "")

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		if serveErr == nil {
			serveErr = errors.New("server stopped")
		}
		serveErr = fmt.Errorf("origin: %w", serveErr)
	}
	o.Logger.Info("shutting down")
	if admin != nil {
		shutdown(admin.ShutdownWithContext, *shutdownTimeout)
	}
	if err := shutdown(srv.Shutdown, *shutdownTimeout); err != nil && serveErr == nil {
		o.Logger.Warn("shutdown incomplete", "err", err)
	}
	return serveErr
}

// shutdown calls stop with a fresh deadline (the run context is already
// cancelled when it is used).
func shutdown(stop func(context.Context) error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return stop(ctx)
}
