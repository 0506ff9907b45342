package subsonic

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"riff/catalogd/store"
)

// Config holds the settings of a Handler.
type Config struct {
	// ServerVersion is the envelope's serverVersion.
	ServerVersion string
	// AllowPlain accepts u + p (the app password in the clear, or enc:hex)
	// on requests that came over TLS; otherwise p is refused (error 42).
	AllowPlain bool
	// MaxBodyBytes caps a POST form (default 64 KiB).
	MaxBodyBytes int64
}

// User is the authenticated caller.
type User struct {
	ID   int64
	Name string // the username: the account's email
	Tier string
	Role string
}

// Media names what a playback URL opens.
type Media int

const (
	MediaOgg    Media = iota + 1 // the Ogg Vorbis rendition
	MediaAAC                     // the AAC rendition (single-file CMAF)
	MediaMaster                  // the HLS multivariant playlist
)

// Catalog is what the API needs of catalogd: the rules its JSON API
// applies, so that both APIs apply the same ones. Errors it returns are
// *Error (with the Subsonic code) or internal failures.
type Catalog interface {
	// VisibleSong loads a song as u may see it (GET /songs/{id}).
	VisibleSong(ctx context.Context, u User, id int64) (store.Song, error)
	// VisiblePlaylist loads a playlist as u may see it (GET /playlists/{id}).
	VisiblePlaylist(ctx context.Context, u User, id int64) (store.PlaylistDetail, error)
	// CheckPlaylist checks a playlist's name and description as
	// POST /playlist does; an empty name is not checked (unchanged).
	CheckPlaylist(name, description string) error
	// SearchQuery checks search text as GET /search does and parses it.
	SearchQuery(text string) (store.Query, error)
	// PlaybackURL returns a signed edge URL of a playable song's media for
	// u: a rendition at the best bitrate within u's tier and maxKbps (0:
	// the tier's), or the HLS master (filtered to the tier by the edge).
	PlaybackURL(u User, so store.Song, m Media, maxKbps int) (string, error)
	// LimitAttempt spends one failed login attempt of the client of r
	// and, when account is not "", of the account; it returns how long to
	// wait when a limit is spent.
	LimitAttempt(r *http.Request, account string) (retryAfter time.Duration)
	// ClientIP returns the address r came from (catalogd's rule).
	ClientIP(r *http.Request) string
	// TLS reports whether r came over TLS (directly, or by a trusted load
	// balancer's word).
	TLS(r *http.Request) bool
	// CoverURL returns the public URL of an album's cover image as the
	// JSON API shows it (cover_url): the edge's image of the smallest size
	// at least size pixels (0: the default size) when the album has a
	// cover of its own (hash), else the artist's link, else "".
	CoverURL(artistID, albumID int64, hash, link string, size int) string
}

// Deps are the parts a Handler is built from.
type Deps struct {
	Logger  *slog.Logger
	Store   *store.Store
	Catalog Catalog
	// Key seals app passwords (DeriveKey).
	Key []byte
	Now func() time.Time
}

// Handler serves /rest/*. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	log     *slog.Logger
	store   *store.Store
	catalog Catalog
	sealer  *sealer
	now     func() time.Time
	blocked *blockList
	methods map[string]method
}

// method is an endpoint: it answers with the payload set on resp, or
// returns an error (an *Error is answered as such; anything else is
// logged and answered as error 0).
type method struct {
	public bool // no authentication (getOpenSubsonicExtensions)
	serve  func(c *call, resp *response) error
	// byID, instead of serve, serves a method whose subject is the
	// required parameter id.
	byID func(c *call, resp *response, id int64) error
}

// run serves c with m.
func (m method) run(c *call, resp *response) error {
	if m.byID == nil {
		return m.serve(c, resp)
	}
	id, err := c.id("id")
	if err != nil {
		return err
	}
	return m.byID(c, resp, id)
}

// call is one request being served.
type call struct {
	ctx  context.Context
	w    http.ResponseWriter
	r    *http.Request
	user User
	// redirected is set when the method answered with a redirect rather
	// than an envelope (stream, hls.m3u8, getCoverArt).
	redirected bool
}

// New builds a Handler; it starts nothing.
func New(cfg Config, d Deps) (*Handler, error) {
	if d.Logger == nil || d.Store == nil || d.Catalog == nil {
		return nil, errors.New("subsonic: New: missing dependencies")
	}
	s, err := newSealer(d.Key)
	if err != nil {
		return nil, err
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	h := &Handler{cfg: cfg, log: d.Logger, store: d.Store, catalog: d.Catalog, sealer: s, now: d.Now,
		blocked: newBlockList(100_000, d.Now)}
	h.methods = h.endpoints()
	return h, nil
}

// Methods returns the names of the endpoints served (without .view).
func (h *Handler) Methods() []string {
	out := make([]string, 0, len(h.methods))
	for name := range h.methods {
		out = append(out, name)
	}
	return out
}

// ServeHTTP serves /rest/{method} and /rest/{method}.view, GET or POST
// (form parameters; the OpenSubsonic formPost extension).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/rest/"), ".view")
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes)
	}
	format := "xml"
	if err := r.ParseForm(); err != nil {
		h.write(w, format, http.StatusOK, &response{Error: Fail(CodeGeneric, "The request's parameters cannot be read.")})
		return
	}
	if r.Form.Get("f") == "json" {
		format = "json"
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, POST")
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	m, ok := h.methods[name]
	if !ok {
		h.write(w, format, http.StatusNotFound, &response{Error: Fail(CodeNotFound, "No such method: %s.", name)})
		return
	}
	c := &call{ctx: r.Context(), w: w, r: r}
	var resp response
	var err error
	if !m.public {
		c.user, err = h.authenticate(r)
	}
	if err == nil {
		err = m.run(c, &resp)
	}
	if c.redirected {
		return
	}
	status := http.StatusOK
	if err != nil {
		var se *Error
		var limited *rateLimited
		switch {
		case errors.As(err, &limited):
			w.Header().Set("Retry-After", strconv.Itoa(int(limited.retryAfter.Seconds()+0.999)))
			status = http.StatusTooManyRequests
			se = Fail(CodeGeneric, "Too many failed attempts; wait before trying again.")
		case errors.As(err, &se):
		case errors.Is(err, store.ErrNotFound):
			se = Fail(CodeNotFound, "Not found.")
		default:
			h.log.ErrorContext(r.Context(), "subsonic: request failed", "method", name, "err", err)
			se = Fail(CodeGeneric, "The request failed; try again later.")
		}
		resp = response{Error: se}
	}
	h.write(w, format, status, &resp)
}

// Parameters.

// param returns a parameter; required ones answer error 10 when missing.
func (c *call) param(name string, required bool) (string, error) {
	v := c.r.Form.Get(name)
	if v == "" && required {
		return "", Fail(CodeMissingParameter, "Required parameter is missing: %s.", name)
	}
	return v, nil
}

// id returns a required id parameter (a positive integer; others are
// answered as not found, since Riff made every id it hands out).
func (c *call) id(name string) (int64, error) {
	v, err := c.param(name, true)
	if err != nil {
		return 0, err
	}
	return parseID(v)
}

func parseID(v string) (int64, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, Fail(CodeNotFound, "No such id: %q.", v)
	}
	return n, nil
}

// ids returns the ids of a repeated parameter.
func (c *call) ids(name string) ([]int64, error) {
	var out []int64
	for _, v := range c.r.Form[name] {
		n, err := parseID(v)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// intParam returns an integer parameter within [lo, hi], def when absent.
func (c *call) intParam(name string, def, lo, hi int) (int, error) {
	v := c.r.Form.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, Fail(CodeGeneric, "Parameter %s must be an integer from %d to %d.", name, lo, hi)
	}
	return n, nil
}

// boolParam returns a true/false parameter, def when absent.
func (c *call) boolParam(name string, def bool) (bool, error) {
	switch c.r.Form.Get(name) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, Fail(CodeGeneric, "Parameter %s must be true or false.", name)
}
