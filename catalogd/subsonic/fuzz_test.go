package subsonic

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"riff/catalogd/store"
)

// fakeCatalog answers as catalogd would for a catalog where every ready
// song is visible and playlists are their owner's.
type fakeCatalog struct{ s *store.Store }

func (c fakeCatalog) VisibleSong(ctx context.Context, _ User, id int64) (store.Song, error) {
	return c.s.SongByID(ctx, id)
}

func (c fakeCatalog) VisiblePlaylist(ctx context.Context, _ User, id int64) (store.PlaylistDetail, error) {
	return c.s.PlaylistByID(ctx, id)
}

func (fakeCatalog) CheckPlaylist(name, _ string) error {
	if len(name) > 100 {
		return Fail(CodeGeneric, "too long")
	}
	return nil
}

func (fakeCatalog) SearchQuery(text string) (store.Query, error) {
	if strings.TrimSpace(text) == "" || len(text) > 200 {
		return store.Query{}, Fail(CodeGeneric, "bad query")
	}
	return store.ParseQuery(text), nil
}

func (fakeCatalog) PlaybackURL(User, store.Song, Media, int) (string, error) {
	return "https://edge.example/t/x/master.m3u8", nil
}
func (fakeCatalog) LimitAttempt(*http.Request, string) time.Duration  { return 0 }
func (fakeCatalog) ClientIP(*http.Request) string                     { return "192.0.2.1" }
func (fakeCatalog) TLS(*http.Request) bool                            { return false }
func (fakeCatalog) CoverURL(_, _ int64, _, link string, _ int) string { return link }

// FuzzServeHTTP sends arbitrary methods and parameters: every answer is a
// redirect or a well-formed envelope in the format asked for, never a
// panic or an internal error.
func FuzzServeHTTP(f *testing.F) {
	ctx := context.Background()
	st, err := store.Open(ctx, "file:"+filepath.Join(f.TempDir(), "riff.db"), store.Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	logs := &strings.Builder{}
	h, err := New(Config{ServerVersion: "test"}, Deps{Logger: slog.New(slog.NewTextHandler(logs, nil)), Store: st,
		Catalog: fakeCatalog{st}, Key: make([]byte, 32)})
	if err != nil {
		f.Fatal(err)
	}
	u, err := st.CreateUser(ctx, store.NewUser{Email: "ann@example.com", PasswordHash: "x", DisplayName: "Ann"})
	if err != nil {
		f.Fatal(err)
	}
	key, err := h.CreateCredential(ctx, u.ID, true, "fuzz")
	if err != nil {
		f.Fatal(err)
	}
	auth := "apiKey=" + url.QueryEscape(key.Secret)
	for _, seed := range [][2]string{
		{"ping", auth},
		{"ping.view", auth + "&f=json"},
		{"getAlbumList2", auth + "&type=byYear&fromYear=2000&toYear=1990"},
		{"search3", auth + "&query=%22%22&songCount=500&songOffset=99999"},
		{"createPlaylist", auth + "&name=x&songId=1&songId=-1"},
		{"updatePlaylist", auth + "&playlistId=1&songIndexToRemove=9&public=maybe"},
		{"scrobble", auth + "&id=1&time=-5"},
		{"stream", auth + "&id=1&maxBitRate=7&format=aac"},
		{"getCoverArt", auth + "&id=al-"},
		{"ping", "u=ann@example.com&t=00&s=1"},
		{"getNothing", "%zz"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, method, query string) {
		r := httptest.NewRequest("GET", "/rest/x", nil)
		r.URL.Path, r.URL.RawQuery = "/rest/"+method, query
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		switch w.Code {
		case http.StatusFound:
			return
		case http.StatusOK, http.StatusNotFound, http.StatusTooManyRequests:
		default:
			t.Fatalf("%s?%s: status %d", method, query, w.Code)
		}
		body, _ := io.ReadAll(w.Body)
		var status string
		if strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
			var env struct {
				R struct{ Status string } `json:"subsonic-response"`
			}
			if err := json.Unmarshal(body, &env); err != nil {
				t.Fatalf("%s?%s: %v in %s", method, query, err, body)
			}
			status = env.R.Status
		} else {
			var env struct {
				Status string `xml:"status,attr"`
			}
			if err := xml.Unmarshal(body, &env); err != nil {
				t.Fatalf("%s?%s: %v in %s", method, query, err, body)
			}
			status = env.Status
		}
		if status != "ok" && status != "failed" {
			t.Fatalf("%s?%s: status %q in %s", method, query, status, body)
		}
		if strings.Contains(logs.String(), "request failed") {
			t.Fatalf("%s?%s: an internal error: %s", method, query, logs)
		}
	})
}
