package edge

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"riff/edge/disk"
	"riff/edge/peer"
	"riff/internal/config"
	"riff/internal/obs"
	"riff/internal/playtoken"
)

// Run starts the edge and blocks until ctx is cancelled or a listener
// fails; then it shuts down gracefully (in-flight responses finish, up to
// -shutdown-timeout). args are the flags after "edge"; every flag can also
// come from RIFF_EDGE_* / RIFF_* or a -config YAML file (see
// internal/config).
//
// Run is parse → build → run: parseFlags checks every flag and starts
// nothing, build makes the parts, and (*daemon).run listens, serves and
// shuts down.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseFlags(args, getenv, stderr)
	if err != nil {
		return err
	}
	cfg.stdout = stdout
	d, err := build(cfg)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// runConfig is what Run's flags say, checked.
type runConfig struct {
	listen, adminListen string
	keys                string // JWKS file
	logger              *slog.Logger
	origins             OriginConfig
	server              Config
	disk                *disk.Config // nil: no disk tier
	peers               *peer.Config // nil: no peer fill
	accessLog           string       // path, "-" (stdout) or "" (off)
	trustedProxies      []netip.Prefix
	stdout              io.Writer
	shutdownTimeout     time.Duration
	telemetry           obs.Telemetry
}

// parseFlags reads and checks Run's flags (and their environment variables
// and -config file). It has no side effects: it opens, starts and listens on
// nothing, so tests can table-test it.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (runConfig, error) {
	fs := flag.NewFlagSet("edge", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cacheBytes, sliceBytes, diskBytes := config.ByteSize(512<<20), config.ByteSize(1<<20), config.ByteSize(0)
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
		eventLoop       = fs.Bool("event-loop", true, "serve plain-HTTP connections from an epoll loop, answering RAM hits without a goroutine per connection (false: fasthttp's goroutine per connection, as over TLS)")
		diskDir         = fs.String("disk-cache", "", "`folder` of the disk tier: slices kept across restarts (empty: RAM only)")
		accessLog       = fs.String("access-log", "", "access log: a `file` (reopened on SIGHUP) or - for stdout; JSON lines (default: off)")
		trustedProxies  = fs.String("trusted-proxies", "", "`CIDRs or addresses`, comma-separated, whose X-Forwarded-For the access log records")
		slabSendfile    = fs.Bool("slab-sendfile", true, "send RAM hits of 32 KiB or more with sendfile from the slab's memory file where the host's huge page settings make it safe (false: copy them with writev)")
		diskSendfile    = fs.Bool("disk-sendfile", true, "send disk-tier answers with sendfile from the slice files (false: read them into RAM first)")
		peers           = fs.String("peers", "", "admin `URLs` of every edge of the region, this one included, comma-separated, the same list on each: slices missing here come from their owner (empty: no peer fill)")
		peerSelf        = fs.String("peer-self", "", "this edge's `URL` in -peers (default: http:// and -admin-listen)")
		peerSecret      = fs.String("peer-secret", "", "shared `secret` of the region's edges, sent and demanded on peer requests (required with -peers)")
		peerTimeout     = fs.Duration("peer-timeout", 3*time.Second, "timeout of one request to a peer edge; then the next owner, then the origin")
		prefetch        = fs.Int("prefetch", 16, "next-segment prefetches running at once (0: no prefetch)")
	)
	fs.Var(&diskBytes, "disk-cache-bytes", "disk tier budget, e.g. 20GiB (required with -disk-cache)")
	fs.Var(&cacheBytes, "cache-bytes", "cache budget, e.g. 512MiB")
	fs.Var(&sliceBytes, "slice-bytes", "media slice size, e.g. 1MiB")
	telemetry := obs.TelemetryFlags(fs)
	if err := config.Load(fs, args, getenv, "edge"); err != nil {
		return runConfig{}, err
	}
	if err := telemetry.Resolve(getenv); err != nil {
		return runConfig{}, fmt.Errorf("edge: %w", err)
	}
	switch {
	case *keys == "":
		return runConfig{}, errors.New("edge: -keys is required (a JWKS file, e.g. from riff keygen)")
	case (*tlsCert == "") != (*tlsKey == ""):
		return runConfig{}, errors.New("edge: -tls-cert and -tls-key go together")
	case sliceBytes < 4<<10 || sliceBytes > 64<<20:
		return runConfig{}, fmt.Errorf("edge: -slice-bytes %v: want 4KiB to 64MiB", sliceBytes)
	case *negativeTTL < 0:
		return runConfig{}, fmt.Errorf("edge: -negative-ttl %v: want 0 (off) or more", *negativeTTL)
	case cacheBytes < sliceBytes:
		return runConfig{}, fmt.Errorf("edge: -cache-bytes %v is smaller than a slice", cacheBytes)
	case *diskDir != "" && diskBytes < 4*sliceBytes:
		return runConfig{}, fmt.Errorf("edge: -disk-cache-bytes %v: want at least four slices with -disk-cache", diskBytes)
	case *diskDir == "" && diskBytes != 0:
		return runConfig{}, errors.New("edge: -disk-cache-bytes needs -disk-cache")
	case *prefetch < 0:
		return runConfig{}, fmt.Errorf("edge: -prefetch %d: want 0 (off) or more", *prefetch)
	case *peers == "" && (*peerSecret != "" || *peerSelf != ""):
		return runConfig{}, errors.New("edge: -peer-secret and -peer-self need -peers")
	case *peers != "" && *peerSecret == "":
		return runConfig{}, errors.New("edge: -peers needs -peer-secret")
	case *peerTimeout <= 0:
		return runConfig{}, fmt.Errorf("edge: -peer-timeout %v: want more than 0", *peerTimeout)
	}
	logger, err := obs.NewLogger(stderr, *logLevel)
	if err != nil {
		return runConfig{}, fmt.Errorf("edge: %w", err)
	}
	urls := splitList(*origins)
	if err := checkOriginURLs(urls); err != nil {
		return runConfig{}, err
	}
	trusted, err := parseTrusted(*trustedProxies)
	if err != nil {
		return runConfig{}, err
	}
	var pcfg *peer.Config
	waitTimeout := time.Duration(len(urls))**originTimeout + time.Second
	if *peers != "" {
		self := *peerSelf
		if self == "" {
			self = "http://" + *adminListen
		}
		pcfg = &peer.Config{URLs: splitList(*peers), Self: self, Secret: *peerSecret, Timeout: *peerTimeout}
		if err := peer.CheckURLs(pcfg.URLs, self); err != nil {
			return runConfig{}, fmt.Errorf("edge: -peers: %w", err)
		}
		// An owner that does not answer, then the next one, then the origins.
		waitTimeout += 2 * *peerTimeout
	}
	var dcfg *disk.Config
	if *diskDir != "" {
		dcfg = &disk.Config{Dir: *diskDir, MaxBytes: int64(diskBytes), SliceBytes: int64(sliceBytes), Logger: logger}
	}
	return runConfig{
		disk:           dcfg,
		peers:          pcfg,
		accessLog:      *accessLog,
		trustedProxies: trusted,
		listen:         *listen,
		adminListen:    *adminListen,
		keys:           *keys,
		logger:         logger,
		origins: OriginConfig{
			URLs:            urls,
			Secret:          *originSecret,
			Timeout:         *originTimeout,
			MaxConns:        *originConns,
			BreakerFailures: *breakerFailures,
			BreakerCooldown: *breakerCooldown,
		},
		server: Config{
			CacheBytes:       int64(cacheBytes),
			SliceBytes:       int64(sliceBytes),
			WaitTimeout:      waitTimeout,
			Prefetch:         *prefetch,
			PlaylistMaxAge:   *playlistMaxAge,
			NegativeTTL:      negativeOrOff(*negativeTTL),
			ReadTimeout:      *readTimeout,
			WriteTimeout:     *writeTimeout,
			IdleTimeout:      *idleTimeout,
			MaxConns:         *maxConns,
			MaxConnsPerIP:    *maxConnsPerIP,
			TLSCertFile:      *tlsCert,
			TLSKeyFile:       *tlsKey,
			Pprof:            *pprofOn,
			HeapSlices:       *heapSlices,
			GoroutinePerConn: !*eventLoop,
			DiskCopy:         !*diskSendfile,
			SlabCopy:         !*slabSendfile,
		},
		shutdownTimeout: *shutdownTimeout,
		telemetry:       *telemetry,
	}, nil
}

// splitList splits a comma-separated flag, dropping blanks.
func splitList(v string) []string {
	var out []string
	for _, u := range strings.Split(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// parseTrusted reads -trusted-proxies: comma-separated CIDRs or addresses.
func parseTrusted(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range strings.Split(list, ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("edge: -trusted-proxies: %q is neither a CIDR nor an address", v)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// negativeOrOff maps the flag's 0 (off) to Config's "off" (negative).
func negativeOrOff(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// daemon is a built edge, ready to listen.
type daemon struct {
	cfg runConfig
	obs *obs.Obs
	srv *Server
}

// build makes the edge's parts from cfg: it reads the key set and builds
// the origins and the server (whose cache starts its goroutines), but
// listens on nothing.
func build(cfg runConfig) (*daemon, error) {
	o := obs.New("edge", cfg.logger)
	if err := o.StartTelemetry(context.Background(), cfg.telemetry); err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	ks, err := playtoken.LoadKeySet(cfg.keys)
	if err != nil {
		return nil, fmt.Errorf("edge: %w", err)
	}
	verifier := playtoken.NewVerifier(ks, playtoken.VerifierOptions{})
	up, err := NewOrigins(o, cfg.origins, time.Now)
	if err != nil {
		return nil, err
	}
	scfg := cfg.server
	if cfg.peers != nil {
		pc := *cfg.peers
		pc.Metrics = o.Metrics
		pc.NewBreaker = func() peer.Breaker {
			return NewBreaker(cfg.origins.BreakerFailures, cfg.origins.BreakerCooldown, time.Now)
		}
		if scfg.Peers, err = peer.New(pc); err != nil {
			return nil, fmt.Errorf("edge: %w", err)
		}
	}
	if cfg.disk != nil {
		// A folder that cannot be opened fails the start (a typo should
		// not quietly run RAM-only); errors after that degrade, see
		// package disk.
		if scfg.Disk, err = disk.Open(*cfg.disk); err != nil {
			return nil, fmt.Errorf("edge: -disk-cache: %w", err)
		}
	}
	if cfg.accessLog != "" {
		stdout := cfg.stdout
		if stdout == nil {
			stdout = io.Discard
		}
		if scfg.AccessLog, err = NewAccessLog(AccessLogFile(cfg.accessLog, stdout), cfg.trustedProxies, 0, time.Now); err != nil {
			if scfg.Disk != nil {
				scfg.Disk.Close()
			}
			return nil, err
		}
	}
	srv, err := NewServer(o, verifier, up, scfg, time.Now)
	if err != nil {
		if scfg.Disk != nil {
			scfg.Disk.Close()
		}
		if scfg.AccessLog != nil {
			scfg.AccessLog.Close()
		}
		return nil, err
	}
	return &daemon{cfg: cfg, obs: o, srv: srv}, nil
}

// run listens on the public and admin addresses, serves until ctx is
// cancelled or a listener fails, then shuts the server down. It owns the
// server: when it returns, the server is stopped.
func (d *daemon) run(ctx context.Context) error {
	cfg, srv, logger := d.cfg, d.srv, d.cfg.logger
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		srv.Shutdown(context.Background())
		return fmt.Errorf("edge: %w", err)
	}
	aln, err := net.Listen("tcp", cfg.adminListen)
	if err != nil {
		ln.Close()
		srv.Shutdown(context.Background())
		return fmt.Errorf("edge: %w", err)
	}
	logger.Info("edge listening", "public", ln.Addr().String(), "admin", aln.Addr().String(),
		"origins", cfg.origins.URLs, "cache_bytes", cfg.server.CacheBytes, "slice_bytes", cfg.server.SliceBytes, "disk_cache", cfg.disk != nil, "peers", cfg.peers != nil, "prefetch", cfg.server.Prefetch,
		"tls", cfg.server.TLSCertFile != "")
	if srv.alog != nil && cfg.accessLog != "-" {
		// logrotate moves the file and sends SIGHUP: reopen it.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go func() {
			for {
				select {
				case <-hup:
					srv.alog.Reopen()
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- srv.ServeAdmin(aln) }()
	select {
	case <-ctx.Done():
	case err = <-errc:
		err = fmt.Errorf("edge: serve: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil {
		logger.Warn("shutdown", "err", serr)
	}
	d.obs.StopTelemetry()
	logger.Info("edge stopped")
	return err
}
