package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/packager"
)

// demoAccount is what the banner tells the newcomer.
type demoAccount struct {
	Email, Password, ArtistName string
	FirstSongID                 int64
}

const (
	demoEmail    = "demo@riff.dev"
	demoPassword = "riff-demo-password"
	demoArtist   = "The Test Tones"
)

type demoTrack struct{ title, genre, lavfi string }

// demoTracks are synthesised with ffmpeg's lavfi sources: no audio files
// ship with Riff. %[1]f is the length in seconds.
func demoTracks() []demoTrack {
	return []demoTrack{
		{"A Major Sunrise", "ambient",
			"aevalsrc='0.15*sin(2*PI*220*t)+0.12*sin(2*PI*277.18*t)+0.1*sin(2*PI*329.63*t)|0.15*sin(2*PI*220*t)+0.1*sin(2*PI*329.63*t)+0.08*sin(2*PI*440*t)':s=44100:d=%[1]f,tremolo=f=0.5:d=0.4"},
		{"Arpeggio Étude", "classical",
			"aevalsrc='0.25*sin(2*PI*220*pow(2\\,floor(mod(t*4\\,8))*2/12)*t)*exp(-3*mod(t\\,0.25))':s=48000:c=stereo:d=%[1]f"},
		{"Pink Tide (AC/DC cover)", "rock",
			"anoisesrc=color=pink:amplitude=0.3:d=%[1]f:r=44100,lowpass=f=900,tremolo=f=0.2:d=0.8,aformat=channel_layouts=stereo"},
	}
}

// seed fills an empty catalog with the demo account, album and songs. It
// does nothing when the demo account exists already.
func seed(ctx context.Context, s Settings, dsn, blobDir string, progress io.Writer) (*demoAccount, error) {
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	acct := &demoAccount{Email: demoEmail, Password: demoPassword, ArtistName: demoArtist}

	if u, err := st.UserByEmail(ctx, demoEmail); err == nil {
		artists, err := st.ArtistsOwnedBy(ctx, u.ID)
		if err != nil || len(artists) == 0 {
			return nil, fmt.Errorf("demo account exists without its artist (delete %s to start over)", s.Data)
		}
		songs, _, err := st.ArtistSongs(ctx, artists[0].ID, 1, 0)
		if err != nil || len(songs) == 0 {
			return nil, fmt.Errorf("demo artist has no songs (delete %s to start over)", s.Data)
		}
		acct.FirstSongID = songs[0].ID
		return acct, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}

	fmt.Fprintf(progress, "riff dev: first start — seeding %d demo songs (synthesised and packaged with ffmpeg; this takes a minute)\n", s.DemoSongs)
	passwords, err := auth.NewPasswords(auth.Argon2Params{MemoryKiB: 19 << 10, Time: 2, Threads: 1}, 1)
	if err != nil {
		return nil, err
	}
	hash, err := passwords.Hash(ctx, demoPassword)
	if err != nil {
		return nil, err
	}
	u, err := st.CreateUser(ctx, store.NewUser{Email: demoEmail, PasswordHash: hash, DisplayName: "Demo Listener", Country: "SE"})
	if err != nil {
		return nil, err
	}
	if err := st.SetTier(ctx, u.ID, store.TierPremium); err != nil {
		return nil, err
	}
	artist, err := st.CreateArtist(ctx, u.ID, store.NewArtist{Name: demoArtist, Bio: "Sine waves, arpeggios and pink noise, made fresh by ffmpeg on every first start."})
	if err != nil {
		return nil, err
	}
	album, err := st.CreateAlbum(ctx, store.NewAlbum{ArtistID: artist.ID, Title: "Synthetic Mornings", Type: "album", ReleaseDate: "2026-11-30"})
	if err != nil {
		return nil, err
	}

	bs, err := blob.NewFS(blobDir)
	if err != nil {
		return nil, err
	}
	defer bs.Close()
	tmp, err := os.MkdirTemp("", "riff-dev-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	pk := packager.New(packager.Config{FFmpeg: s.FFmpeg, FFprobe: s.FFprobe, Concurrency: s.PackagerParallel, TempDir: tmp})

	for i, tr := range demoTracks()[:s.DemoSongs] {
		src := filepath.Join(tmp, fmt.Sprintf("demo%d.flac", i+1))
		lavfi := fmt.Sprintf(tr.lavfi, s.DemoLength.Seconds())
		cmd := exec.CommandContext(ctx, s.FFmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", lavfi, "-c:a", "flac", src)
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("synthesising %q: %w: %s", tr.title, err, out)
		}
		song, err := st.CreateSong(ctx, store.NewSong{AlbumID: album.ID, Title: tr.title, TrackNumber: i + 1, Genre: tr.genre,
			DurationMS: s.DemoLength.Milliseconds()})
		if err != nil {
			return nil, err
		}
		prefix := fmt.Sprintf("artists/%d/albums/%d/songs/%d/v1/", artist.ID, album.ID, song.ID)
		start := time.Now()
		res, err := pk.Package(ctx, src, bs, prefix, nil)
		if err != nil {
			return nil, fmt.Errorf("packaging %q: %w", tr.title, err)
		}
		var rs []store.Rendition
		for _, r := range res.Renditions {
			rs = append(rs, store.Rendition{Format: r.Format, BitrateKbps: r.Kbps, BlobKey: r.Key, SizeBytes: r.Size})
		}
		if err := st.PublishVersion(ctx, song.ID, 1, rs); err != nil {
			return nil, err
		}
		fmt.Fprintf(progress, "riff dev: %d/%d %q ready (%s, packaged in %s)\n", i+1, s.DemoSongs, tr.title,
			res.Duration.Round(time.Millisecond), time.Since(start).Round(100*time.Millisecond))
		if acct.FirstSongID == 0 {
			acct.FirstSongID = song.ID
		}
	}
	return acct, nil
}
