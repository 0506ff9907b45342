package edge

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"riff/internal/config"
	"riff/internal/obs"
	"riff/internal/playtoken"
)

// Run starts the edge and blocks until ctx is cancelled or a listener
// fails; then it shuts down gracefully (in-flight responses finish, up to
// -shutdown-timeout). args are the flags after "edge"; every flag can also
// come from RIFF_EDGE_* / RIFF_* or a -config YAML file (see
// internal/config).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cacheBytes, sliceBytes := config.ByteSize(512<<20), config.ByteSize(1<<20)
	var (
		listen          = fs.String("listen", "127.0.0.1:8082", "public `address` (players)")
		adminListen     = fs.String("admin-listen", "127.0.0.1:9082", "admin `address`: /metrics, /healthz, /readyz, POST /purge")
		origins         = fs.String("origin", "http://127.0.0.1:8081", "origin `URLs`, comma-separated: the primary first, then fallbacks")
		originSecret    = fs.String("origin-secret", "", "shared `secret` sent to the origin as "+OriginSecretHeader)
		keys            = fs.String("keys", "", "JWKS `file` of the public keys that sign playback and purge tokens (required)")
		originTimeout   = fs.Duration("origin-timeout", 5*time.Second, "timeout of one attempt at one origin")
		originConns     = fs.Int("origin-max-conns", 512, "connections per origin")
		breakerFailures = fs.Int("breaker-failures", 5, "consecutive failures that open an origin's circuit breaker")
		breakerCooldown = fs.Duration("breaker-cooldown", 5*time.Second, "how long an open breaker waits before a probe")
		maxConns        = fs.Int("max-conns", 10000, "concurrent public connections")
		maxConnsPerIP   = fs.Int("max-conns-per-ip", 0, "concurrent public connections per client IP (0: no cap)")
		readTimeout     = fs.Duration("read-timeout", 10*time.Second, "time to read a request, headers included")
		writeTimeout    = fs.Duration("write-timeout", 30*time.Second, "time to write a response")
		idleTimeout     = fs.Duration("idle-timeout", 60*time.Second, "keep-alive idle time")
		playlistMaxAge  = fs.Duration("playlist-max-age", 60*time.Second, "max-age of tier-filtered playlists")
		negativeTTL     = fs.Duration("negative-ttl", 10*time.Second, "how long an origin's 404 is remembered (negative caching; 0: off)")
		shutdownTimeout = fs.Duration("shutdown-timeout", 30*time.Second, "how long shutdown waits for in-flight responses")
		tlsCert         = fs.String("tls-cert", "", "TLS certificate `file` (PEM); with -tls-key, serve HTTPS")
		tlsKey          = fs.String("tls-key", "", "TLS private key `file` (PEM)")
		logLevel        = fs.String("log-level", "info", "debug, info, warn or error")
		pprofOn         = fs.Bool("pprof", false, "serve /debug/pprof/profile and /debug/pprof/heap on the admin listener")
		heapSlices      = fs.Bool("heap-slices", false, "keep media slices on the Go heap, not in a memfd slab outside it")
	)
	fs.Var(&cacheBytes, "cache-bytes", "cache budget, e.g. 512MiB")
	fs.Var(&sliceBytes, "slice-bytes", "media slice size, e.g. 1MiB")
	if err := config.Load(fs, args, getenv, "edge"); err != nil {
		return err
	}
	switch {
	case *keys == "":
		return errors.New("edge: -keys is required (a JWKS file, e.g. from riff keygen)")
	case (*tlsCert == "") != (*tlsKey == ""):
		return errors.New("edge: -tls-cert and -tls-key go together")
	case sliceBytes < 4<<10 || sliceBytes > 64<<20:
		return fmt.Errorf("edge: -slice-bytes %v: want 4KiB to 64MiB", sliceBytes)
	case *negativeTTL < 0:
		return fmt.Errorf("edge: -negative-ttl %v: want 0 (off) or more", *negativeTTL)
	case cacheBytes < sliceBytes:
		return fmt.Errorf("edge: -cache-bytes %v is smaller than a slice", cacheBytes)
	}
	logger, err := obs.NewLogger(stderr, *logLevel)
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	o := obs.New("edge", logger)
	ks, err := playtoken.LoadKeySet(*keys)
	if err != nil {
		return fmt.Errorf("edge: %w", err)
	}
	verifier := playtoken.NewVerifier(ks, playtoken.VerifierOptions{})
	var urls []string
	for _, u := range strings.Split(*origins, ",") {
		if u = strings.TrimSpace(u); u != "" {
			urls = append(urls, u)
		}
	}
	up, err := NewOrigins(o, OriginConfig{
		URLs:            urls,
		Secret:          *originSecret,
		Timeout:         *originTimeout,
		MaxConns:        *originConns,
		BreakerFailures: *breakerFailures,
		BreakerCooldown: *breakerCooldown,
	}, time.Now)
	if err != nil {
		return err
	}
	srv, err := NewServer(o, verifier, up, Config{
		CacheBytes:     int64(cacheBytes),
		SliceBytes:     int64(sliceBytes),
		WaitTimeout:    time.Duration(len(urls))**originTimeout + time.Second,
		PlaylistMaxAge: *playlistMaxAge,
		NegativeTTL:    negativeOrOff(*negativeTTL),
		ReadTimeout:    *readTimeout,
		WriteTimeout:   *writeTimeout,
		IdleTimeout:    *idleTimeout,
		MaxConns:       *maxConns,
		MaxConnsPerIP:  *maxConnsPerIP,
		TLSCertFile:    *tlsCert,
		TLSKeyFile:     *tlsKey,
		Pprof:          *pprofOn,
		HeapSlices:     *heapSlices,
	}, time.Now)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		srv.Shutdown(context.Background())
		return fmt.Errorf("edge: %w", err)
	}
	aln, err := net.Listen("tcp", *adminListen)
	if err != nil {
		ln.Close()
		srv.Shutdown(context.Background())
		return fmt.Errorf("edge: %w", err)
	}
	logger.Info("edge listening", "public", ln.Addr().String(), "admin", aln.Addr().String(),
		"origins", urls, "cache_bytes", int64(cacheBytes), "slice_bytes", int64(sliceBytes), "tls", *tlsCert != "")
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- srv.ServeAdmin(aln) }()
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("edge: serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), *shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		logger.Warn("shutdown", "err", serr)
	}
	logger.Info("edge stopped")
	return err
}

// negativeOrOff maps the flag's 0 (off) to Config's "off" (negative).
func negativeOrOff(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
