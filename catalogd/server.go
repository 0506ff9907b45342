package catalogd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/ingest"
	"riff/catalogd/regions"
	"riff/catalogd/store"
	"riff/catalogd/subsonic"
	"riff/internal/blob"
	"riff/internal/obs"
	"riff/internal/playtoken"
	"riff/packager"
)

// Config holds the settings of a Server. NewServer fills zero fields with
// the defaults noted.
type Config struct {
	// EdgeURL is the base of playback URLs (default http://127.0.0.1:8082).
	EdgeURL string
	// Regions, when set, chooses playback URLs per listener among several
	// regions' edges instead of EdgeURL, which then serves covers only
	// (regions.go).
	Regions *regions.Chooser
	// PlaybackTTL is how long playback URLs work (default 1h).
	PlaybackTTL time.Duration
	// PlaybackReuse is how long a minted playback token is handed out
	// again for the same user, song version and bitrate cap (default 5m,
	// at most PlaybackTTL/2; negative: never). Reuse saves a signature
	// here and lets the edge's verification cache hit; the URLs then live
	// between PlaybackTTL-PlaybackReuse and PlaybackTTL.
	PlaybackReuse time.Duration
	// RefreshTTL is how long an unused refresh token lives (default 30 days).
	RefreshTTL time.Duration
	// RefreshGrace is how long a rotated refresh token may come back (a
	// lost response) without revoking its session (default 10s).
	RefreshGrace time.Duration
	// MaxBodyBytes caps request bodies (default 64 KiB).
	MaxBodyBytes int64
	// ClientIPHeader, when set (e.g. X-Forwarded-For), names the header
	// whose right-most address is the client, as appended by a trusted load
	// balancer; otherwise the peer address is the client.
	ClientIPHeader string
	// LoginAccountBurst login attempts per account, and LoginIPBurst login
	// and register attempts per client address, are allowed per
	// LoginWindow (defaults 10, 30, 15 minutes).
	LoginAccountBurst int
	LoginIPBurst      int
	LoginWindow       time.Duration
	// TrendingCacheTTL is how long a trending answer is reused (default 30s).
	TrendingCacheTTL time.Duration
	// ReplicaMaxLag is the store's replica lag bound (-replica-max-lag,
	// default store.DefaultReplicaMaxLag); the position of a user's last
	// write is remembered for a few of it (readafter.go).
	ReplicaMaxLag time.Duration
	// SubsonicAllowPlain accepts Subsonic's plain p= passwords (app
	// passwords only) on requests that came over TLS (package subsonic).
	SubsonicAllowPlain bool

	// Ingest (the handlers in upload.go; the job worker is package ingest).
	//
	// UploadMaxBytes caps an uploaded audio file (default 200 MB);
	// UploadDir holds uploads while they are checked (default the system
	// temporary folder). Workers package jobs at once (default 2); a job
	// is leased for JobLease (default 30s, renewed at a third of it) and
	// tried JobAttempts times (default 3), JobBackoff apart, doubling
	// (default 5s). Superseded media is collected PlaybackTTL+GCDelay
	// after the switch (GCDelay default 1m, for clock skew); JobPoll is
	// how often idle workers look for due jobs (default 1s).
	//
	// UploadsPerUser uploads per account and UploadsTotal in all may be
	// received and checked at once (defaults 2 and 8; past them: 429 with
	// Retry-After), and SpoolMaxBytes caps what they may hold in UploadDir
	// at once, each counted at its Content-Length, or UploadMaxBytes when
	// the length is unknown (default 8 × UploadMaxBytes; past it: 503
	// spool_full with Retry-After).
	UploadMaxBytes int64
	UploadsPerUser int
	UploadsTotal   int
	SpoolMaxBytes  int64
	UploadDir      string
	Workers        int
	JobLease       time.Duration
	JobAttempts    int
	JobBackoff     time.Duration
	GCDelay        time.Duration
	JobPoll        time.Duration
}

func (c *Config) setDefaults() error {
	edge, err := normalizeEdgeURL(c.EdgeURL)
	if err != nil {
		return err
	}
	c.EdgeURL = edge
	def(&c.PlaybackTTL, time.Hour)
	if c.PlaybackReuse == 0 {
		c.PlaybackReuse = 5 * time.Minute
	}
	c.PlaybackReuse = min(c.PlaybackReuse, c.PlaybackTTL/2)
	def(&c.RefreshTTL, 30*24*time.Hour)
	def(&c.RefreshGrace, 10*time.Second)
	def(&c.LoginWindow, 15*time.Minute)
	def(&c.TrendingCacheTTL, 30*time.Second)
	def(&c.ReplicaMaxLag, store.DefaultReplicaMaxLag)
	def(&c.JobLease, 30*time.Second)
	def(&c.JobBackoff, 5*time.Second)
	def(&c.JobPoll, time.Second)
	if c.GCDelay < 0 {
		c.GCDelay = 0
	} else if c.GCDelay == 0 {
		c.GCDelay = time.Minute
	}
	def(&c.UploadMaxBytes, 200<<20)
	def(&c.UploadsPerUser, 2)
	def(&c.UploadsTotal, 8)
	def(&c.SpoolMaxBytes, 8*c.UploadMaxBytes)
	def(&c.Workers, 2)
	def(&c.JobAttempts, 3)
	def(&c.MaxBodyBytes, 64<<10)
	def(&c.LoginAccountBurst, 10)
	def(&c.LoginIPBurst, 30)
	return nil
}

// def sets *v to d when *v is not positive (a Config field left unset).
func def[T int | int64 | time.Duration](v *T, d T) {
	if *v <= 0 {
		*v = d
	}
}

// normalizeEdgeURL checks Config.EdgeURL ("" is the default) and returns
// it without a trailing slash.
func normalizeEdgeURL(edge string) (string, error) {
	if edge == "" {
		edge = "http://127.0.0.1:8082"
	}
	u, err := url.Parse(edge)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("catalogd: edge URL %q: want http(s)://host[:port][/path]", edge)
	}
	return strings.TrimSuffix(edge, "/"), nil
}

// PlaybackSigner mints playback tokens (*playtoken.Signer does).
type PlaybackSigner interface {
	Mint(c playtoken.Claims, ttl time.Duration) (string, error)
}

// Deps are the parts a Server is built from.
type Deps struct {
	Obs       *obs.Obs // logger, metrics, health checks
	Store     *store.Store
	Passwords *auth.Passwords
	Access    *auth.AccessTokens
	Playback  PlaybackSigner
	// PublicKeys is served at /.well-known/jwks.json: the access-token key
	// and the playback keys.
	PublicKeys *playtoken.KeySet
	// Now is the clock (default time.Now); it must be the clock of Access
	// and Playback too.
	Now func() time.Time
	// Blob holds originals and packaged media, and Packager packages
	// uploads; without both, uploads answer 503.
	Blob     blob.Store
	Packager *packager.Packager
	// Purged, if set, is called after a change that queued edge purges
	// commits (the purge dispatcher's Kick), so they go out at once.
	Purged func()
	// SubsonicKey (32 bytes, subsonic.DeriveKey) seals the app passwords
	// of the Subsonic API; nil: a random key (they then die with the
	// process).
	SubsonicKey []byte
}

// Server is the catalogd HTTP API. It is safe for concurrent use.
type Server struct {
	cfg       Config
	log       *slog.Logger
	obs       *obs.Obs
	store     *store.Store
	passwords *auth.Passwords
	access    *auth.AccessTokens
	playback  PlaybackSigner
	jwks      []byte
	now       func() time.Time

	loginIP      *auth.Limiter
	loginAccount *auth.Limiter
	trending     *trendingCache
	recent       *recentWrites                        // each user's last write position (read-your-writes)
	minted       *auth.TokenCache[mintKey, mintEntry] // playback tokens handed out, for reuse
	web          *webUI
	subsonic     *subsonic.Handler // /rest/*
	handler      http.Handler

	blob    blob.Store
	pk      *packager.Packager
	jobs    *ingest.Worker // nil without Blob and Packager
	checks  chan struct{}  // bounds concurrent upload checks (ffprobe, decode)
	uploads *uploadGate    // bounds uploads in progress and their spool bytes
	purged  func()
}

// NewServer builds a Server; it starts nothing and touches no network.
func NewServer(cfg Config, d Deps) (*Server, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if d.Obs == nil || d.Store == nil || d.Passwords == nil || d.Access == nil || d.Playback == nil || d.PublicKeys == nil {
		return nil, errors.New("catalogd: NewServer: missing dependencies")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	ui, err := newWebUI(cfg.allEdges()...)
	if err != nil {
		return nil, err
	}
	jwks, err := d.PublicKeys.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("catalogd: key set: %w", err)
	}
	s := &Server{
		cfg: cfg, log: d.Obs.Logger, obs: d.Obs, store: d.Store, passwords: d.Passwords,
		access: d.Access, playback: d.Playback, jwks: append(jwks, '\n'), now: d.Now,
		loginIP:      auth.NewLimiter(d.Store, "ip", cfg.LoginIPBurst, cfg.LoginWindow, d.Now),
		loginAccount: auth.NewLimiter(d.Store, "a", cfg.LoginAccountBurst, cfg.LoginWindow, d.Now),
		trending:     newTrendingCache(cfg.TrendingCacheTTL, d.Now),
		recent:       newRecentWrites(recentWritesTTL(cfg.ReplicaMaxLag), d.Now),
		minted:       &auth.TokenCache[mintKey, mintEntry]{},
		web:          ui,
		blob:         d.Blob,
		pk:           d.Packager,
		purged:       d.Purged,
		checks:       make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		uploads:      newUploadGate(cfg.UploadsPerUser, cfg.UploadsTotal, cfg.SpoolMaxBytes),
	}
	if s.purged == nil {
		s.purged = func() {}
	}
	if s.jobs, err = newJobs(cfg, d); err != nil {
		return nil, err
	}
	if s.subsonic, err = newSubsonic(s, cfg, d); err != nil {
		return nil, err
	}
	s.handler = d.Obs.Middleware(s.readYourWrites(s.router(true)))
	return s, nil
}

// newJobs builds the packaging job worker from a defaulted cfg and d; nil
// when d lacks the blob store or the packager (no uploads here).
func newJobs(cfg Config, d Deps) (*ingest.Worker, error) {
	if d.Blob == nil || d.Packager == nil {
		return nil, nil
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	w, err := ingest.New(ingest.Config{
		Workers: cfg.Workers, Lease: cfg.JobLease, Backoff: cfg.JobBackoff, Poll: cfg.JobPoll,
		GCAfter: cfg.PlaybackTTL + cfg.GCDelay, TempDir: cfg.UploadDir,
	}, ingest.Deps{
		Logger: d.Obs.Logger, Metrics: d.Obs.Metrics, Store: d.Store, Blob: d.Blob, Packager: d.Packager,
		Purged: d.Purged, Now: now, Report: d.Obs.ReportError, Tracer: d.Obs,
	})
	if err != nil {
		return nil, fmt.Errorf("catalogd: %w", err)
	}
	return w, nil
}

// RunJobs runs the packaging job workers (package ingest: Config.Workers
// of them) until ctx is cancelled, then waits for them; a worker stopped
// mid-job hands its job back to the queue. It returns an error only when
// ingest is not configured (no blob store or packager).
func (s *Server) RunJobs(ctx context.Context) error {
	if s.jobs == nil {
		return errors.New("catalogd: jobs: no blob store or packager")
	}
	return s.jobs.Run(ctx)
}

// Handler returns the API with the observability middleware, serving
// /metrics, /healthz and /readyz too.
func (s *Server) Handler() http.Handler { return s.handler }

// APIHandler returns the API without /metrics, for when those are served
// on a separate admin listener (Handler serves /healthz and /readyz
// either way).
func (s *Server) APIHandler() http.Handler {
	return s.obs.Middleware(s.readYourWrites(s.router(false)))
}

// authMode says whether a route needs an access token.
type authMode int

const (
	authNone     authMode = iota // public
	authOptional                 // public, more with a token (a bad token is still refused)
	authRequired
)

// principal is the authenticated caller (zero UserID: anonymous).
type principal struct {
	UserID    int64
	SessionID int64
	Tier      string
	Role      string
}

// handlerFunc is a route handler: it writes a success answer or returns
// an error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p principal) error

type route struct {
	method, pattern string
	auth            authMode
	handle          handlerFunc
}

// routes is every API route: the single table the router, the OpenAPI
// test and the docs agree on. Each area keeps its own part.
func (s *Server) routes() []route {
	return slices.Concat(s.coreRoutes(), s.libraryRoutes(), s.ingestRoutes(), s.studioRoutes(), s.coverRoutes(), s.subsonicRoutes())
}

// coreRoutes are accounts, profiles, the catalog, search and playback.
func (s *Server) coreRoutes() []route {
	return []route{
		{"POST", "/auth/register", authNone, s.register},
		{"POST", "/auth/login", authNone, s.login},
		{"POST", "/auth/refresh", authNone, s.refresh},
		{"POST", "/auth/logout", authNone, s.logout},
		{"GET", "/.well-known/jwks.json", authNone, s.keys},

		{"GET", "/users/me", authRequired, s.getMe},
		{"PATCH", "/users/me", authRequired, s.patchMe},
		{"GET", "/users/{id}", authNone, s.getUser},

		{"POST", "/artists", authRequired, s.createArtist},
		{"GET", "/artists/{id}", authNone, s.getArtist},
		{"PATCH", "/artists/{id}", authRequired, s.patchArtist},
		{"GET", "/artist/{id}/songs", authNone, s.artistSongs},
		{"GET", "/artists/{id}/songs", authNone, s.artistSongs},
		{"POST", "/albums", authRequired, s.createAlbum},
		{"GET", "/albums/{id}", authOptional, s.getAlbum},
		{"PATCH", "/albums/{id}", authRequired, s.patchAlbum},

		{"GET", "/songs/trending", authNone, s.trendingSongs},
		{"GET", "/songs/{id}", authOptional, s.getSong},
		{"GET", "/songs/{id}/stream", authRequired, s.streamSong},

		{"GET", "/search", authNone, s.search},
		{"GET", "/openapi.json", authNone, s.openAPI},
	}
}

// router registers the routes on a ServeMux. Unknown paths and methods get
// problem+json answers too.
func (s *Server) router(withMetrics bool) http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.method+" "+rt.pattern, s.wrap(rt))
	}
	// The web player (webui.go): API routes never start with /assets/.
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.HandleFunc("GET /assets/{name}", s.serveAsset)
	// The Subsonic API (package subsonic): any method, its own envelope.
	mux.Handle("/rest/", s.subsonic)
	health := s.obs.Handler()
	mux.Handle("GET /healthz", health)
	mux.Handle("GET /readyz", health)
	if withMetrics {
		mux.Handle("GET /metrics", health)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		// No route: let the mux decide between 404, 405 (with Allow) and
		// a redirect, and answer its errors as problems.
		rec := &statusRecorder{header: http.Header{}}
		mux.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			s.writeError(w, r, newError(kindMethodNotAllowed, "method_not_allowed", "%s is not allowed here.", r.Method))
		case http.StatusNotFound, 0:
			s.writeError(w, r, newError(kindNotFound, "route_not_found", "No such route."))
		default:
			for k, v := range rec.header {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.status)
		}
	})
}

// statusRecorder keeps the status and headers of a response, dropping the
// body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// wrap turns a route into an http.Handler: authenticate, run, answer
// errors.
func (s *Server) wrap(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r, rt.auth)
		if err == nil {
			r = s.readAsUser(r, p.UserID)
			err = rt.handle(w, r, p)
		}
		if err != nil {
			s.writeError(w, r, err)
		}
	})
}

// authenticate reads the bearer access token when the route wants one. A
// token that is present but bad is refused even on optional routes, so a
// client learns to refresh it.
func (s *Server) authenticate(r *http.Request, mode authMode) (principal, error) {
	if mode == authNone {
		return principal{}, nil
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		if mode == authRequired {
			return principal{}, newError(kindUnauthorized, "unauthenticated", "Log in: send Authorization: Bearer <access token>.")
		}
		return principal{}, nil
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return principal{}, newError(kindUnauthorized, "invalid_token", "The Authorization header must be Bearer <access token>.")
	}
	c, err := s.access.Verify(strings.TrimSpace(token))
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return principal{}, &apiError{kind: kindUnauthorized, code: "token_expired", detail: "The access token has expired; refresh it.", cause: err}
	case err != nil:
		return principal{}, &apiError{kind: kindUnauthorized, code: "invalid_token", detail: "The access token is not valid.", cause: err}
	}
	obs.SetUser(r.Context(), strconv.FormatInt(c.UserID, 10)) // error reports name the user by id
	return principal{UserID: c.UserID, SessionID: c.SessionID, Tier: c.Tier, Role: c.Role}, nil
}

// clientIP returns the client address a request came from (see
// Config.ClientIPHeader).
func (s *Server) clientIP(r *http.Request) string {
	if s.cfg.ClientIPHeader != "" {
		if v := r.Header.Values(s.cfg.ClientIPHeader); len(v) > 0 {
			last := v[len(v)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			if ip := strings.TrimSpace(last); ip != "" {
				return ip
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
