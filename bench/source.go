package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"riff/internal/blobkey"
)

// source hands out the master playlists listeners play: pre-minted URLs,
// or songs of a catalogd whose playback URLs are minted through its API.
// Sources are safe for concurrent use.
type source interface {
	// Len is the number of songs, in order of popularity.
	Len() int
	// Master returns the HLS URL of song i; through catalogd it costs one
	// API request, recorded as KindAPI.
	Master(c *Conn, rec *Recorder, i int) (string, error)
}

// urlSource is a fixed list of URLs.
type urlSource []string

func (u urlSource) Len() int                                           { return len(u) }
func (u urlSource) Master(_ *Conn, _ *Recorder, i int) (string, error) { return u[i], nil }

// readURLFile reads a URL list: one URL a line, optionally followed by a
// byte range ("bytes=0-1023"); blank lines and # comments are skipped.
func readURLFile(path string) ([]target, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer f.Close()
	var out []target
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		t := target{url: fields[0], rng: Range{0, -1}, kind: kindOfURL(fields[0])}
		if !strings.HasPrefix(t.url, "http://") && !strings.HasPrefix(t.url, "https://") {
			return nil, fmt.Errorf("bench: %s:%d: not an http(s) URL: %q", path, n, t.url)
		}
		if len(fields) > 1 {
			spec, ok := strings.CutPrefix(fields[1], "bytes=")
			a, b, ok2 := strings.Cut(spec, "-")
			first, err1 := strconv.ParseInt(a, 10, 64)
			last, err2 := strconv.ParseInt(b, 10, 64)
			if !ok || !ok2 || err1 != nil || err2 != nil || first < 0 || last < first {
				return nil, fmt.Errorf("bench: %s:%d: bad range %q (want bytes=FIRST-LAST)", path, n, fields[1])
			}
			t.rng = Range{first, last}
			if t.kind == KindObject {
				t.kind = KindSegment
			}
		}
		out = append(out, t)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("bench: %s: no URLs", path)
	}
	return out, nil
}

func kindOfURL(u string) Kind {
	if q := strings.IndexAny(u, "?#"); q >= 0 {
		u = u[:q]
	}
	if blobkey.KindOf(u) != blobkey.KindMedia { // .m3u8 or .mpd
		return KindPlaylist
	}
	return KindObject
}

// catalog is a catalogd: bench logs in once (catalogd rate-limits logins
// per account), finds songs with search, and mints playback URLs with GET
// /songs/{id} as a player would, once per song a listener starts.
type catalog struct {
	api             string
	email, password string
	http            *http.Client
	ids             []int64

	mu       sync.Mutex
	bearer   string
	loggedIn time.Time
}

// openCatalog logs in and collects up to max ready songs, searching for
// each of queries in turn (catalogd's search needs a query; one or two
// letters match the start of names).
func openCatalog(ctx context.Context, api, email, password string, queries []string, max int, timeout time.Duration) (*catalog, error) {
	c := &catalog{api: strings.TrimRight(api, "/"), email: email, password: password, http: &http.Client{Timeout: timeout}}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	seen := map[int64]bool{}
	for _, q := range queries {
		for offset := 0; len(c.ids) < max && offset < 1000; offset += 50 {
			var res struct {
				Songs struct {
					Items []struct {
						ID     int64  `json:"id"`
						Status string `json:"status"`
					} `json:"items"`
					Total int `json:"total"`
				} `json:"songs"`
			}
			u := fmt.Sprintf("%s/search?type=song&limit=50&offset=%d&q=%s", c.api, offset, url.QueryEscape(q))
			if err := c.getJSON(ctx, u, &res); err != nil {
				return nil, err
			}
			for _, s := range res.Songs.Items {
				if !seen[s.ID] && (s.Status == "" || s.Status == "ready") && len(c.ids) < max {
					seen[s.ID] = true
					c.ids = append(c.ids, s.ID)
				}
			}
			if offset+50 >= res.Songs.Total {
				break
			}
		}
	}
	if len(c.ids) == 0 {
		return nil, fmt.Errorf("bench: catalogd %s: no songs found searching for %q", c.api, queries)
	}
	return c, nil
}

func (c *catalog) login(ctx context.Context) error {
	body, _ := json.Marshal(map[string]string{"email": c.email, "password": c.password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.api+"/auth/login", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("bench: login: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("bench: login: %w", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: login as %s: %s: %s", c.email, res.Status, bytes.TrimSpace(data))
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(data, &tok); err != nil || tok.AccessToken == "" {
		return fmt.Errorf("bench: login: no access_token in %q", data)
	}
	c.mu.Lock()
	c.bearer, c.loggedIn = "Bearer "+tok.AccessToken, time.Now()
	c.mu.Unlock()
	return nil
}

func (c *catalog) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	req.Header.Set("Authorization", c.auth())
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(res.Body, 16<<20))
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("bench: GET %s: %s: %s", u, res.Status, bytes.TrimSpace(data))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("bench: GET %s: %w", u, err)
	}
	return nil
}

func (c *catalog) auth() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bearer
}

// relogin logs in again after a 401 (the access token expired), at most
// once every 30 seconds whatever the number of listeners that saw it.
func (c *catalog) relogin() error {
	c.mu.Lock()
	recent := time.Since(c.loggedIn) < 30*time.Second
	c.mu.Unlock()
	if recent {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.http.Timeout)
	defer cancel()
	return c.login(ctx)
}

func (c *catalog) Len() int { return len(c.ids) }

// songURLs is the part of GET /songs/{id} a player needs.
type songURLs struct {
	HLSURL string `json:"hls_url"`
}

// Master asks catalogd for song i's playback URL.
func (c *catalog) Master(conn *Conn, rec *Recorder, i int) (string, error) {
	u := c.api + "/songs/" + strconv.FormatInt(c.ids[i], 10)
	for attempt := 0; ; attempt++ {
		res := conn.fetch(rec, KindAPI, u, Range{0, -1}, c.auth(), time.Now())
		if res.Status == http.StatusUnauthorized && attempt == 0 {
			if err := c.relogin(); err != nil {
				return "", err
			}
			continue
		}
		if res.Err != "" {
			return "", fmt.Errorf("bench: GET %s: %s", u, res.Err)
		}
		var s songURLs
		if err := json.Unmarshal(res.Body, &s); err != nil || s.HLSURL == "" {
			rec.Error(ErrAPI, 0, 0)
			return "", fmt.Errorf("bench: GET %s: no hls_url", u)
		}
		return s.HLSURL, nil
	}
}

// target is one request of the flat scenario.
type target struct {
	url  string
	rng  Range
	kind Kind
}

// expand turns playlists into the requests a player could make: a master
// playlist into its variants' media playlists, a media playlist into
// itself, its init section and its segments.
func expand(conn *Conn, playlists []string) ([]target, error) {
	var out []target
	for _, u := range playlists {
		res := conn.Get(u, Range{0, -1}, "")
		if res.Err != "" {
			return nil, fmt.Errorf("bench: GET %s: %s", u, res.Err)
		}
		media := []string{u}
		if IsMaster(res.Body) {
			vs, err := ParseMaster(res.Body, u)
			if err != nil {
				return nil, fmt.Errorf("bench: %s: %w", u, err)
			}
			out = append(out, target{url: u, rng: Range{0, -1}, kind: KindPlaylist})
			media = media[:0]
			for _, v := range vs {
				media = append(media, v.URL)
			}
		}
		for _, m := range media {
			res := conn.Get(m, Range{0, -1}, "")
			if res.Err != "" {
				return nil, fmt.Errorf("bench: GET %s: %s", m, res.Err)
			}
			pl, err := ParseMedia(res.Body, m)
			if err != nil {
				return nil, fmt.Errorf("bench: %s: %w", m, err)
			}
			out = append(out, target{url: m, rng: Range{0, -1}, kind: KindPlaylist})
			if pl.Init != nil {
				out = append(out, target{url: pl.Init.URL, rng: pl.Init.Range, kind: KindInit})
			}
			for _, s := range pl.Segments {
				out = append(out, target{url: s.URL, rng: s.Range, kind: KindSegment})
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("bench: the playlists name nothing to fetch")
	}
	return out, nil
}
