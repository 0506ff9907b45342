package dev

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"image/jpeg"
	"io"
	"math"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"riff/internal/blobkey"
	"riff/internal/cover/covertest"
	"riff/internal/playtoken"
	"riff/internal/testrun"
)

// startDevArgs runs riff dev with args and returns the catalogd and edge
// URLs from its banner, and a stop function.
func startDevArgs(t *testing.T, args ...string) (api, edge string, stop func() error) {
	t.Helper()
	out, stop := runDev(t, args...)
	if m := regexp.MustCompile(`catalogd\s+(http://\S+)`).FindStringSubmatch(out.String()); m != nil {
		api = m[1]
	}
	if m := regexp.MustCompile(`edge\s+(http://\S+)`).FindStringSubmatch(out.String()); m != nil {
		edge = m[1]
	}
	if api == "" || edge == "" || strings.HasSuffix(api, ":0") || strings.HasSuffix(edge, ":0") {
		t.Fatalf("addresses missing from the banner:\n%s", out)
	}
	return api, edge, stop
}

// api is a JSON client of catalogd for one user.
type api struct {
	t     *testing.T
	base  string
	token string
}

func (a api) call(method, path string, body io.Reader, contentType string, want int, out any) {
	a.t.Helper()
	req, _ := http.NewRequest(method, a.base+path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		a.t.Fatalf("%s %s = %d %s, want %d", method, path, res.StatusCode, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

func (a api) json(method, path string, in any, want int, out any) {
	a.t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	a.call(method, path, body, "application/json", want, out)
}

// signup registers an account and returns a client logged in as it.
func signup(t *testing.T, base, email string) api {
	t.Helper()
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	api{t: t, base: base}.json("POST", "/auth/register", map[string]string{"email": email, "password": "password-" + email,
		"display_name": email}, http.StatusCreated, &tr)
	return api{t: t, base: base, token: tr.AccessToken}
}

func (a api) upload(method, path, file string, fields map[string]string, want int, out any) {
	a.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		mw.WriteField(k, v)
	}
	w, _ := mw.CreateFormFile("file", filepath.Base(file))
	data, err := os.ReadFile(file)
	if err != nil {
		a.t.Fatal(err)
	}
	w.Write(data)
	mw.Close()
	a.call(method, path, &buf, mw.FormDataContentType(), want, out)
}

type songJSON struct {
	ID        int64  `json:"id"`
	Title     string `json:"title"`
	Status    string `json:"status"`
	HLSURL    string `json:"hls_url"`
	DASHURL   string `json:"dash_url"`
	StreamURL string `json:"stream_url"`
}

func (a api) waitSong(id int64, ok func(songJSON) bool) songJSON {
	a.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var s songJSON
		a.json("GET", fmt.Sprintf("/songs/%d", id), nil, http.StatusOK, &s)
		if ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			a.t.Fatalf("song %d: timed out; last %+v", id, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// decode plays url with ffmpeg to 48 kHz mono PCM and returns its
// duration and its pitch, estimated from zero crossings.
func decode(t *testing.T, url string) (time.Duration, float64) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", url, "-ac", "1", "-ar", "48000", "-f", "s16le", "-")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil || errOut.Len() > 0 {
		t.Fatalf("ffmpeg %s: %v %s", url, err, errOut.String())
	}
	samples := make([]int16, out.Len()/2)
	binary.Read(bytes.NewReader(out.Bytes()), binary.LittleEndian, samples)
	// Count crossings in the middle, away from fades and priming.
	mid := samples[len(samples)/4 : 3*len(samples)/4]
	crossings := 0
	for i := 1; i < len(mid); i++ {
		if (mid[i-1] < 0) != (mid[i] < 0) {
			crossings++
		}
	}
	secs := float64(len(mid)) / 48000
	return time.Duration(len(samples)) * time.Second / 48000, float64(crossings) / secs / 2
}

func synthFLAC(t *testing.T, dir, name string, freq, secs float64) string {
	t.Helper()
	out := filepath.Join(dir, name)
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
		fmt.Sprintf("sine=f=%g:d=%g:sample_rate=44100", freq, secs), "-c:a", "flac", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v %s", err, b)
	}
	return out
}

// checkCovers is issue 19's cover path through the dev stack: the artist
// sets the album's cover, every size comes from the edge without a token
// (immutable, a square JPEG of its size), the song shows it, nothing else
// is served without a token, and a replaced cover disappears from the edge
// (purged and deleted).
func checkCovers(t *testing.T, artist api, edge string, albumID int64, song songJSON) {
	t.Helper()
	type albumCover struct {
		CoverURL   string            `json:"cover_url"`
		CoverSizes map[string]string `json:"cover_sizes"`
	}
	put := func(img []byte) albumCover {
		t.Helper()
		var v albumCover
		artist.call("PUT", fmt.Sprintf("/albums/%d/cover", albumID), bytes.NewReader(img), "image/png", http.StatusOK, &v)
		return v
	}
	first := put(covertest.PNG(t, 500, 400))
	for _, n := range blobkey.CoverSizes {
		u := first.CoverSizes[fmt.Sprint(n)]
		if !strings.HasPrefix(u, edge+blobkey.CoverPathPrefix) {
			t.Fatalf("cover_sizes[%d] = %q, want an edge /covers/ URL", n, u)
		}
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || err != nil || img.Bounds().Dx() != n || img.Bounds().Dy() != n {
			t.Fatalf("GET %s = %d, %v; want a %d px square JPEG", u, res.StatusCode, err, n)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=31536000, immutable" {
			t.Errorf("GET %s: Cache-Control %q", u, cc)
		}
	}
	var withCover struct {
		Album albumCover `json:"album"`
	}
	artist.json("GET", fmt.Sprintf("/songs/%d", song.ID), nil, http.StatusOK, &withCover)
	if withCover.Album.CoverURL != first.CoverURL || withCover.Album.CoverURL != first.CoverSizes["300"] {
		t.Errorf("song's album cover_url %q, want %q", withCover.Album.CoverURL, first.CoverURL)
	}
	// Nothing but covers without a token: the song's folder, by any path.
	hls := song.HLSURL
	if hls == "" {
		var own songJSON
		artist.json("GET", fmt.Sprintf("/songs/%d", song.ID), nil, http.StatusOK, &own)
		hls = own.HLSURL
	}
	key := hls[strings.Index(hls, "/artists/")+1:]
	for _, u := range []string{edge + "/" + key, edge + "/t//" + key, edge + "/covers/" + key,
		edge + strings.Replace(first.CoverURL[len(edge):], "300.jpg", "../../../songs/"+fmt.Sprint(song.ID), 1)} {
		if code, _ := fetch(t, u); code != http.StatusForbidden && code != http.StatusNotFound {
			t.Errorf("GET %s without a token = %d, want 403 or 404", u, code)
		}
	}
	// A replacement: the old cover is purged and deleted, so the edge,
	// which had it cached, answers 404 for it soon.
	fetch(t, first.CoverURL)
	if code, cache := fetch(t, first.CoverURL); code != 200 || cache != "HIT" {
		t.Fatalf("cover before the replacement: %d %s, want 200 HIT", code, cache)
	}
	second := put(covertest.JPEG(t, 300, 300))
	if second.CoverURL == first.CoverURL {
		t.Fatal("a new image kept the cover URL")
	}
	if code, _ := fetch(t, second.CoverURL); code != 200 {
		t.Errorf("new cover: %d", code)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, _ := fetch(t, first.CoverURL)
		if code == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replaced cover still answers %d", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetch GETs url and returns the status and X-Cache header.
func fetch(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, res.Header.Get("X-Cache")
}

// TestEndToEnd is issue 7's acceptance test through the dev stack: an
// artist uploads, a listener finds and plays the song through the edge
// (HLS, DASH and Ogg, durations within 50 ms), the artist replaces the
// audio (the new tone plays; the old version's URL misses after the purge
// and is 404 once collected), then takes the song down.
func TestEndToEnd(t *testing.T) {
	testrun.RequireFFmpeg(t)
	data := t.TempDir()
	const ttl = 20 * time.Second
	base, edge, stop := startDevArgs(t, "-data", data, "-demo=false", "-catalogd-listen", "127.0.0.1:0", "-origin-listen", "127.0.0.1:0",
		"-edge-listen", "127.0.0.1:0", "-edge-admin-listen", "127.0.0.1:0", "-token-ttl", ttl.String(), "-gc-delay", "1ms",
		"-ready-timeout", "60s")
	dir := t.TempDir()

	// An artist uploads a FLAC and waits for it to be ready.
	artist := signup(t, base, "artist@example.com")
	var a, al struct{ ID int64 }
	artist.json("POST", "/artists", map[string]string{"name": "Pure Tones"}, http.StatusCreated, &a)
	artist.json("POST", "/albums", map[string]any{"artist_id": a.ID, "title": "Reference Pitches", "type": "single"}, http.StatusCreated, &al)
	var song songJSON
	artist.upload("POST", "/songs", synthFLAC(t, dir, "a440.flac", 440, 6), map[string]string{"album_id": fmt.Sprint(al.ID), "title": "Concert Pitch"},
		http.StatusAccepted, &song)
	artist.waitSong(song.ID, func(s songJSON) bool { return s.Status == "ready" })
	checkCovers(t, artist, edge, al.ID, song)

	// A listener searches, gets the song and plays every URL through the edge.
	listener := signup(t, base, "listener@example.com")
	var found struct {
		Songs struct{ Items []songJSON } `json:"songs"`
	}
	listener.json("GET", "/search?q=concert", nil, http.StatusOK, &found)
	if len(found.Songs.Items) != 1 || found.Songs.Items[0].ID != song.ID {
		t.Fatalf("search found %+v", found.Songs.Items)
	}
	v1 := listener.waitSong(song.ID, func(s songJSON) bool { return s.HLSURL != "" })
	for _, u := range []string{v1.HLSURL, v1.DASHURL, v1.StreamURL} {
		if !strings.HasPrefix(u, edge+"/t/") || !strings.Contains(u, "/v1/") {
			t.Fatalf("URL %q is not a v1 edge URL", u)
		}
		d, f := decode(t, u)
		if diff := d - 6*time.Second; diff < -50*time.Millisecond || diff > 50*time.Millisecond {
			t.Errorf("%s: duration %s, want 6s ± 50ms", u, d)
		}
		if math.Abs(f-440) > 10 {
			t.Errorf("%s: pitch %.1f Hz, want 440", u, f)
		}
	}
	// The old version's master playlist is cached at the edge.
	oldURL := v1.HLSURL
	fetch(t, oldURL)
	if code, cache := fetch(t, oldURL); code != 200 || cache != "HIT" {
		t.Fatalf("v1 master: %d %s, want 200 HIT", code, cache)
	}

	// The artist replaces the audio: a new version with a new tone.
	artist.upload("PUT", fmt.Sprintf("/songs/%d/audio", song.ID), synthFLAC(t, dir, "a660.flac", 660, 5), nil, http.StatusAccepted, nil)
	v2 := listener.waitSong(song.ID, func(s songJSON) bool { return strings.Contains(s.HLSURL, "/v2/") })
	d, f := decode(t, v2.StreamURL)
	if diff := d - 5*time.Second; diff < -50*time.Millisecond || diff > 50*time.Millisecond || math.Abs(f-660) > 10 {
		t.Errorf("v2: %s at %.1f Hz, want 5s at 660 Hz", d, f)
	}
	// The switch purged the edge: the old URL misses (v1 still exists).
	// Its path with a token minted now (with dev's key): under load, v2's
	// packaging can outlast the listener's 20 s token, and the cache key
	// never holds the token.
	keyData, err := os.ReadFile(filepath.Join(data, "keys", playtoken.SigningKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	kid, key, err := playtoken.ParseSigningKey(keyData)
	if err != nil {
		t.Fatal(err)
	}
	signer := playtoken.NewSigner(kid, key, time.Now)
	prefix := oldURL[strings.Index(oldURL, "/artists/")+1 : strings.LastIndex(oldURL, "/")+1]
	fresh := func(name string) string {
		tok, err := signer.Mint(playtoken.Claims{Type: playtoken.TypePlay, Subject: "test", Prefix: prefix, MaxKbps: 320}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return edge + "/t/" + tok + "/" + prefix + name
	}
	oldMaster := oldURL[strings.LastIndex(oldURL, "/")+1:]
	deadline := time.Now().Add(ttl / 2)
	for {
		code, cache := fetch(t, fresh(oldMaster))
		if code == 200 && cache == "MISS" {
			break
		}
		if code != 200 || time.Now().After(deadline) {
			t.Fatalf("old URL after the switch: %d %s, want a purge-driven MISS", code, cache)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Once no token can name v1 it is collected: a fresh token for v1
	// finds nothing.
	deadline = time.Now().Add(ttl + time.Minute)
	for {
		code, _ := fetch(t, fresh("ogg_128.ogg"))
		if code == http.StatusNotFound {
			break
		}
		if code != 200 && code != 206 || time.Now().After(deadline) {
			t.Fatalf("v1 after collection: %d, want 404", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, _ := fetch(t, v2.HLSURL); code != 200 {
		t.Errorf("v2 after v1 was collected: %d", code)
	}

	// Takedown: no more playback URLs.
	artist.json("DELETE", fmt.Sprintf("/songs/%d", song.ID), nil, http.StatusNoContent, nil)
	listener.json("GET", fmt.Sprintf("/songs/%d", song.ID), nil, http.StatusNotFound, nil)
	listener.json("GET", fmt.Sprintf("/songs/%d/stream", song.ID), nil, http.StatusNotFound, nil)
	var own songJSON
	artist.json("GET", fmt.Sprintf("/songs/%d", song.ID), nil, http.StatusOK, &own)
	if own.Status != "taken_down" || own.HLSURL != "" || own.StreamURL != "" {
		t.Errorf("owner's view after takedown: %+v", own)
	}
	if err := stop(); err != nil {
		t.Errorf("riff dev: %v", err)
	}
}
