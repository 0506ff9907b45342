package catalogd

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"riff/catalogd/store"
)

// searchTypes are the kinds /search can return, in answer order.
var searchTypes = []string{"song", "artist", "album", "playlist"}

// maxQueryBytes caps the q parameter.
const maxQueryBytes = 200

type searchResponse struct {
	Query     string              `json:"query"`
	Songs     *page[songView]     `json:"songs,omitempty"`
	Artists   *page[artistView]   `json:"artists,omitempty"`
	Albums    *page[albumView]    `json:"albums,omitempty"`
	Playlists *page[playlistView] `json:"playlists,omitempty"`
}

// search answers GET /search?q=&type=&limit=&offset=: one page per
// requested type, each with its total. See package store for matching and
// ranking.
func (s *Server) search(w http.ResponseWriter, r *http.Request, _ principal) error {
	q, err := query(r, "q", "type", "limit", "offset")
	if err != nil {
		return err
	}
	text := q.Get("q")
	if e := checkSearchText(text); e != nil {
		return e
	}
	types := searchTypes
	if v, ok := q["type"]; ok {
		types = nil
		for t := range strings.SplitSeq(v[0], ",") {
			t = strings.TrimSpace(t)
			if !slices.Contains(searchTypes, t) {
				return invalidField("type", "invalid_enum", "type must be a comma-separated list of song, artist, album, playlist.")
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
	}
	limit, err := intParam(q, "limit", 20, 1, maxLimit)
	if err != nil {
		return err
	}
	offset, err := intParam(q, "offset", 0, 0, store.MaxSearchTotal-limit)
	if err != nil {
		return err
	}
	sq := store.ParseQuery(text)
	ctx := r.Context()
	resp := searchResponse{Query: text}
	// The groups are independent: search them at once.
	var wg sync.WaitGroup
	errs := make([]error, len(types))
	for i, t := range types {
		wg.Go(func() { errs[i] = s.searchGroup(ctx, r, &resp, t, sq, limit, offset) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

// checkSearchText checks the text of a search (q): not blank, at most
// maxQueryBytes, printable.
func checkSearchText(text string) *apiError {
	switch {
	case strings.TrimSpace(text) == "":
		return invalidField("q", "required", "q must not be empty.")
	case len(text) > maxQueryBytes:
		return invalidField("q", "too_long", "q must be at most %d bytes.", maxQueryBytes)
	}
	return checkText("q", text, true, maxQueryBytes, false)
}

// Trending page sizes: the spec's 50 by default, up to 100.
const (
	defaultTrendingLimit = 50
	maxTrendingLimit     = 100
)

// searchGroup fills the group of type t of resp.
func (s *Server) searchGroup(ctx context.Context, r *http.Request, resp *searchResponse, t string, sq store.Query, limit, offset int) error {
	var err error
	switch t {
	case "song":
		resp.Songs, err = searchKind(ctx, r, s.store.SearchSongs, s.viewSong, t, sq, limit, offset)
	case "artist":
		resp.Artists, err = searchKind(ctx, r, s.store.SearchArtists, newArtistView, t, sq, limit, offset)
	case "album":
		resp.Albums, err = searchKind(ctx, r, s.store.SearchAlbums, s.viewAlbum, t, sq, limit, offset)
	case "playlist":
		resp.Playlists, err = searchKind(ctx, r, s.store.SearchPlaylists, newPlaylistView, t, sq, limit, offset)
	}
	return err
}

// searchKind runs search, one kind's search, and pages its results as view
// shows them.
func searchKind[T, V any](ctx context.Context, r *http.Request, search func(context.Context, store.Query, int, int) (store.SearchPage[T], error),
	view func(T) V, typ string, sq store.Query, limit, offset int) (*page[V], error) {
	res, err := search(ctx, sq, limit, offset)
	if err != nil {
		return nil, err
	}
	views := make([]V, len(res.Items))
	for i, it := range res.Items {
		views[i] = view(it)
	}
	p := searchPage(r, views, limit, offset, res.Total, res.Capped, typ)
	return &p, nil
}

// searchPage is the page of one group; its next link asks for that
// group alone. Totals stop at store.MaxSearchTotal (total_capped).
func searchPage[T any](r *http.Request, items []T, limit, offset, total int, capped bool, typ string) page[T] {
	p := newPage(r, items, limit, offset, total, url.Values{"type": {typ}})
	p.TotalCapped = capped
	return p
}

// trendingResponse is a page[songView] with offset 0 and no next page.
type trendingResponse = page[songView]

// trendingSongs answers GET /songs/trending?genre=&limit=: ready songs
// ranked by plays, each play halving in weight every 24 hours. Answers are
// cached briefly (Config.TrendingCacheTTL).
func (s *Server) trendingSongs(w http.ResponseWriter, r *http.Request, _ principal) error {
	q, err := query(r, "genre", "limit")
	if err != nil {
		return err
	}
	genre := q.Get("genre")
	if e := checkText("genre", genre, false, 50, false); e != nil {
		return e
	}
	limit, err := intParam(q, "limit", defaultTrendingLimit, 1, maxTrendingLimit)
	if err != nil {
		return err
	}
	key := genre + "\x00" + itoa(int64(limit))
	resp, ok := s.trending.get(key)
	if !ok {
		songs, err := s.store.Trending(r.Context(), s.now(), genre, limit)
		if err != nil {
			return err
		}
		items := make([]songView, len(songs))
		for i, ts := range songs {
			items[i] = s.viewSong(ts.Song)
		}
		resp = trendingResponse{Items: items, Limit: limit, Offset: 0, Total: len(items)}
		s.trending.put(key, resp)
	}
	w.Header().Set("Cache-Control", "public, max-age=30")
	return writeJSON(w, http.StatusOK, resp)
}

// trendingCache keeps trending answers for a short time. It holds at most
// maxEntries answers (genre is user input). It is safe for concurrent use.
type trendingCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[string]trendingEntry
}

type trendingEntry struct {
	resp    trendingResponse
	expires time.Time
}

const trendingCacheEntries = 512

func newTrendingCache(ttl time.Duration, now func() time.Time) *trendingCache {
	return &trendingCache{ttl: ttl, now: now, entries: map[string]trendingEntry{}}
}

func (c *trendingCache) get(key string) (trendingResponse, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.now().Before(e.expires) {
		return trendingResponse{}, false
	}
	return e.resp, true
}

func (c *trendingCache) put(key string, resp trendingResponse) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= trendingCacheEntries {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= trendingCacheEntries {
			return
		}
	}
	c.entries[key] = trendingEntry{resp: resp, expires: now.Add(c.ttl)}
}
