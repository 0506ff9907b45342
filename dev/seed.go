package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"riff/catalogd/store"
)

// demoAccount is what the banner tells the newcomer.
type demoAccount struct {
	Email, Password             string // the demo listener (premium)
	ArtistEmail, ArtistPassword string // owner of the first demo artist
	ArtistName                  string
	FirstSongID                 int64
	FirstAlbumID                int64
}

const (
	demoEmail          = "demo@riff.dev"
	demoPassword       = "riff-demo-password"
	demoArtistEmail    = "artist@riff.dev"
	demoArtistPassword = "riff-artist-password"
	demoArtist         = "The Test Tones"
)

// demoArtistDef is a demo artist with its owner account and album.
type demoArtistDef struct {
	email, password, name, bio, album, release string
}

func demoArtists() []demoArtistDef {
	return []demoArtistDef{
		{demoArtistEmail, demoArtistPassword, demoArtist, "Sine waves and arpeggios, made fresh by ffmpeg on every first start.",
			"Synthetic Mornings", "2026-11-30"},
		{"sines@riff.dev", "riff-sines-password", "Sine Language", "Open fifths and slow lullabies from a lavfi oscillator.",
			"Overtones", "2026-10-01"},
	}
}

type demoTrack struct {
	title, genre string
	artist       int    // index into demoArtists
	lavfi        string // %[1]f is the length in seconds
}

// demoTracks are synthesised with ffmpeg's lavfi sources: no audio files
// ship with Riff. Each is a different chord, so they sound apart.
func demoTracks() []demoTrack {
	return []demoTrack{
		{"A Major Sunrise", "ambient", 0,
			"aevalsrc='0.15*sin(2*PI*220*t)+0.12*sin(2*PI*277.18*t)+0.1*sin(2*PI*329.63*t)|0.15*sin(2*PI*220*t)+0.1*sin(2*PI*329.63*t)+0.08*sin(2*PI*440*t)':s=44100:d=%[1]f,tremolo=f=0.5:d=0.4"},
		{"Fifths in D", "drone", 1,
			"aevalsrc='(0.75+0.25*sin(2*PI*0.1*t))*(0.2*sin(2*PI*146.83*t)+0.15*sin(2*PI*220*t)+0.1*sin(2*PI*293.66*t))':s=48000:c=stereo:d=%[1]f"},
		{"Arpeggio Étude", "classical", 0,
			"aevalsrc='0.25*sin(2*PI*220*pow(2\\,floor(mod(t*4\\,8))*2/12)*t)*exp(-3*mod(t\\,0.25))':s=48000:c=stereo:d=%[1]f"},
		{"C Major Lullaby", "ambient", 1,
			"aevalsrc='0.2*sin(2*PI*261.63*t)*(0.5+0.5*sin(2*PI*0.25*t))+0.15*sin(2*PI*329.63*t)*(0.5+0.5*sin(2*PI*0.25*t+2.1))+0.12*sin(2*PI*392*t)*(0.5+0.5*sin(2*PI*0.25*t+4.2))':s=44100:c=stereo:d=%[1]f"},
	}
}

// existingDemo returns the demo account of an already seeded catalog, or
// nil when the catalog has none (seed it).
func existingDemo(ctx context.Context, s Settings, dsn string) (*demoAccount, error) {
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	if _, err := st.UserByEmail(ctx, demoEmail); errors.Is(err, store.ErrNotFound) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	acct := newDemoAccount()
	owner, err := st.UserByEmail(ctx, demoArtistEmail)
	if err != nil {
		return nil, fmt.Errorf("demo listener exists without the demo artist (delete %s to start over): %w", s.Data, err)
	}
	artists, err := st.ArtistsOwnedBy(ctx, owner.ID)
	if err != nil || len(artists) == 0 {
		return nil, fmt.Errorf("demo account exists without its artist (delete %s to start over)", s.Data)
	}
	songs, _, err := st.ArtistSongs(ctx, artists[0].ID, 1, 0)
	if err != nil || len(songs) == 0 {
		return nil, fmt.Errorf("demo artist has no ready songs (delete %s to start over)", s.Data)
	}
	acct.FirstSongID, acct.FirstAlbumID = songs[0].ID, songs[0].AlbumID
	return acct, nil
}

func newDemoAccount() *demoAccount {
	return &demoAccount{Email: demoEmail, Password: demoPassword, ArtistEmail: demoArtistEmail,
		ArtistPassword: demoArtistPassword, ArtistName: demoArtist}
}

// seed fills an empty catalog through catalogd's API, exactly as artists
// would: it registers the demo artists' owners, creates their artists and
// albums, synthesises the demo songs with ffmpeg and uploads them (POST
// /songs), then waits until catalogd's jobs have packaged them. The demo
// listener is registered last and made premium.
func seed(ctx context.Context, s Settings, api, dsn string, progress io.Writer) (*demoAccount, error) {
	tracks := demoTracks()[:s.DemoSongs]
	fmt.Fprintf(progress, "riff dev: first start — seeding %d demo songs through the upload API (synthesised with ffmpeg, packaged by catalogd; this takes a minute)\n", len(tracks))
	tmp, err := os.MkdirTemp("", "riff-dev-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	acct := newDemoAccount()
	c := &client{base: api}

	tokens := map[int]string{}
	albums := map[int]int64{}
	for i, a := range demoArtists() {
		used := false
		for _, tr := range tracks {
			used = used || tr.artist == i
		}
		if !used {
			continue
		}
		tok, err := c.register(ctx, a.email, a.password, a.name+" (owner)")
		if err != nil {
			return nil, err
		}
		var artist struct{ ID int64 }
		if err := c.json(ctx, "POST", "/artists", tok, map[string]string{"name": a.name, "bio": a.bio}, http.StatusCreated, &artist); err != nil {
			return nil, err
		}
		var album struct{ ID int64 }
		if err := c.json(ctx, "POST", "/albums", tok, map[string]any{"artist_id": artist.ID, "title": a.album, "type": "album",
			"release_date": a.release}, http.StatusCreated, &album); err != nil {
			return nil, err
		}
		tokens[i], albums[i] = tok, album.ID
		cover, err := demoCover(i)
		if err != nil {
			return nil, err
		}
		if err := c.do(ctx, "PUT", fmt.Sprintf("/albums/%d/cover", album.ID), tok, bytes.NewReader(cover), "image/png", http.StatusOK, nil); err != nil {
			return nil, fmt.Errorf("cover of %q: %w", a.album, err)
		}
	}

	type pending struct {
		id    int64
		title string
		start time.Time
	}
	var uploaded []pending
	track := map[int]int{}
	for i, tr := range tracks {
		src := filepath.Join(tmp, fmt.Sprintf("demo%d.flac", i+1))
		lavfi := fmt.Sprintf(tr.lavfi, s.DemoLength.Seconds())
		cmd := exec.CommandContext(ctx, s.FFmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", lavfi,
			"-metadata", "title="+tr.title, "-metadata", "genre="+tr.genre, "-c:a", "flac", src)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("synthesising %q: %w: %s", tr.title, err, out)
		}
		track[tr.artist]++
		start := time.Now()
		id, err := c.upload(ctx, tokens[tr.artist], src, map[string]string{"album_id": fmt.Sprint(albums[tr.artist]),
			"track_no": fmt.Sprint(track[tr.artist])})
		if err != nil {
			return nil, fmt.Errorf("uploading %q: %w", tr.title, err)
		}
		uploaded = append(uploaded, pending{id, tr.title, start})
		if acct.FirstSongID == 0 {
			acct.FirstSongID, acct.FirstAlbumID = id, albums[tr.artist]
		}
	}
	for i, u := range uploaded {
		tok := tokens[tracks[i].artist]
		for {
			var song struct {
				Status     string
				DurationMS int64 `json:"duration_ms"`
				Processing *struct{ Error string }
			}
			if err := c.json(ctx, "GET", fmt.Sprintf("/songs/%d", u.id), tok, nil, http.StatusOK, &song); err != nil {
				return nil, err
			}
			if song.Status == store.StatusReady {
				fmt.Fprintf(progress, "riff dev: %d/%d %q ready (%s, uploaded and packaged in %s)\n", i+1, len(uploaded), u.title,
					(time.Duration(song.DurationMS) * time.Millisecond).Round(time.Millisecond), time.Since(u.start).Round(100*time.Millisecond))
				break
			}
			if song.Status != store.StatusProcessing {
				reason := ""
				if song.Processing != nil {
					reason = song.Processing.Error
				}
				return nil, fmt.Errorf("demo song %q ended %s: %s", u.title, song.Status, reason)
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}

	// The listener last: its existence marks a finished seeding.
	if _, err := c.register(ctx, demoEmail, demoPassword, "Demo Listener"); err != nil {
		return nil, err
	}
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	u, err := st.UserByEmail(ctx, demoEmail)
	if err != nil {
		return nil, err
	}
	if err := st.SetTier(ctx, u.ID, store.TierPremium); err != nil {
		return nil, err
	}
	return acct, nil
}

// client calls catalogd's API.
type client struct{ base string }

func (c *client) do(ctx context.Context, method, path, token string, body io.Reader, contentType string, want int, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s = %d: %s", method, path, res.StatusCode, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

func (c *client) json(ctx context.Context, method, path, token string, in any, want int, out any) error {
	var body io.Reader
	ct := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ct = bytes.NewReader(b), "application/json"
	}
	return c.do(ctx, method, path, token, body, ct, want, out)
}

// register makes an account and returns its access token.
func (c *client) register(ctx context.Context, email, password, name string) (string, error) {
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	err := c.json(ctx, "POST", "/auth/register", "", map[string]string{"email": email, "password": password, "display_name": name},
		http.StatusCreated, &tr)
	return tr.AccessToken, err
}

// upload sends file with fields to POST /songs and returns the song id.
func (c *client) upload(ctx context.Context, token, file string, fields map[string]string) (int64, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range fields {
		if err := mw.WriteField(k, v); err != nil {
			return 0, err
		}
	}
	w, err := mw.CreateFormFile("file", filepath.Base(file))
	if err != nil {
		return 0, err
	}
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return 0, err
	}
	if err := mw.Close(); err != nil {
		return 0, err
	}
	var song struct{ ID int64 }
	err = c.do(ctx, "POST", "/songs", token, &buf, mw.FormDataContentType(), http.StatusAccepted, &song)
	return song.ID, err
}

// demoCover draws demo album i's cover: a 640×640 diagonal gradient in a
// colour of its own, set through PUT /albums/{id}/cover like an artist's.
func demoCover(i int) ([]byte, error) {
	const n = 640
	hues := [][2]color.RGBA{
		{{0xff, 0x8a, 0x3d, 0xff}, {0x6a, 0x2c, 0x91, 0xff}},
		{{0x2e, 0xc4, 0xb6, 0xff}, {0x1b, 0x26, 0x5c, 0xff}},
	}
	from, to := hues[i%len(hues)][0], hues[i%len(hues)][1]
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	mix := func(a, b uint8, t int) uint8 { return uint8((int(a)*(2*n-t) + int(b)*t) / (2 * n)) }
	for y := range n {
		for x := range n {
			t := x + y
			img.SetRGBA(x, y, color.RGBA{mix(from.R, to.R, t), mix(from.G, to.G, t), mix(from.B, to.B, t), 0xff})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
