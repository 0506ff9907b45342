package store

import (
	"context"
	"errors"
	"strings"
	"testing"

	"riff/internal/blobkey"
)

func TestSetAlbumCover(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		a, al := ingestFixture(t, s)
		so, err := s.CreateSong(ctx, NewSong{AlbumID: al.ID, Title: "One", TrackNumber: 1})
		if err != nil {
			t.Fatal(err)
		}
		h1, h2, h3 := strings.Repeat("a", 32), strings.Repeat("b", 32), strings.Repeat("c", 32)

		// Embedded art fills a blank.
		ch, err := s.SetAlbumCover(ctx, al.ID, h1, true)
		if err != nil || !ch.Changed || ch.Previous != "" || ch.ArtistID != a.ID {
			t.Fatalf("SetAlbumCover(first, ifNone) = %+v, %v", ch, err)
		}
		// ... and nothing else.
		if ch, err := s.SetAlbumCover(ctx, al.ID, h2, true); err != nil || ch.Changed {
			t.Fatalf("SetAlbumCover(second, ifNone) = %+v, %v; want unchanged", ch, err)
		}
		// The same image again changes nothing and purges nothing.
		if ch, err := s.SetAlbumCover(ctx, al.ID, h1, false); err != nil || ch.Changed {
			t.Fatalf("SetAlbumCover(same) = %+v, %v; want unchanged", ch, err)
		}
		if es, _ := s.PendingPurges(ctx, 0, 10); len(es) != 0 {
			t.Fatalf("purges before any replacement: %v", es)
		}
		got, err := s.AlbumByID(ctx, al.ID)
		if err != nil || got.CoverHash != h1 {
			t.Fatalf("AlbumByID: cover %q, %v; want %q", got.CoverHash, err, h1)
		}
		if so, err := s.SongByID(ctx, so.ID); err != nil || so.AlbumCoverHash != h1 {
			t.Fatalf("SongByID: album cover %q, %v; want %q", so.AlbumCoverHash, err, h1)
		}

		// Replacements purge exactly the cover they replace.
		for _, step := range []struct{ hash, prev string }{{h2, h1}, {h3, h2}} {
			ch, err := s.SetAlbumCover(ctx, al.ID, step.hash, false)
			if err != nil || !ch.Changed || ch.Previous != step.prev {
				t.Fatalf("SetAlbumCover(%s) = %+v, %v", step.hash[:1], ch, err)
			}
		}
		es, err := s.PendingPurges(ctx, 0, 10)
		if err != nil || len(es) != 2 || es[0].Prefix != blobkey.CoverFolder(a.ID, al.ID, h1) || es[1].Prefix != blobkey.CoverFolder(a.ID, al.ID, h2) {
			t.Fatalf("PendingPurges = %+v, %v; want the folders of covers a and b", es, err)
		}

		if _, err := s.SetAlbumCover(ctx, al.ID+100, h1, false); !errors.Is(err, ErrNotFound) {
			t.Errorf("SetAlbumCover(missing album) = %v, want ErrNotFound", err)
		}
		if _, err := s.SetAlbumCover(ctx, al.ID, "../x", false); err == nil {
			t.Error("SetAlbumCover(bad hash) succeeded")
		}
	})
}
