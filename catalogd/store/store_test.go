package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"riff/internal/blobkey"
)

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestMigrations(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		ms, err := migrations(s.Dialect())
		if err != nil {
			t.Fatal(err)
		}
		latest := ms[len(ms)-1].version
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != latest {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, latest)
		}
		// Migrating again is a no-op.
		if err := s.migrate(ctx); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		// A schema from the future is refused.
		mustExec(t, s, "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, 'future', 0)", latest+1)
		if err := s.migrate(ctx); !errors.Is(err, ErrNewerSchema) {
			t.Fatalf("migrate on newer schema = %v, want ErrNewerSchema", err)
		}
	})
}

func TestMigrationVersionsMatchAcrossDialects(t *testing.T) {
	lite, err := migrations(SQLite)
	if err != nil {
		t.Fatal(err)
	}
	pg, err := migrations(Postgres)
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].version != pg[i].version || lite[i].name != pg[i].name {
			t.Errorf("migration %d: sqlite %04d_%s, postgres %04d_%s", i+1, lite[i].version, lite[i].name, pg[i].version, pg[i].name)
		}
	}
}

func TestOpenRejectsBadDSN(t *testing.T) {
	for _, dsn := range []string{"", "mysql://x", "file::memory:", "riff.db"} {
		if s, err := Open(context.Background(), dsn, Options{}); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want error", dsn)
		}
	}
}

func TestUsers(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, NewUser{Email: "Ann@Example.com", PasswordHash: "h", DisplayName: "Ann", Country: "SE"})
		if err != nil {
			t.Fatal(err)
		}
		if u.ID == 0 || u.Tier != TierFree || u.Role != RoleListener || string(u.Preferences) != "{}" {
			t.Errorf("created user = %+v", u)
		}
		if _, err := s.CreateUser(ctx, NewUser{Email: "ann@EXAMPLE.com", PasswordHash: "h", DisplayName: "Other"}); !errors.Is(err, ErrConflict) {
			t.Errorf("duplicate email (other case) = %v, want ErrConflict", err)
		}
		got, err := s.UserByEmail(ctx, "ANN@example.COM")
		if err != nil || got.ID != u.ID || got.Email != "Ann@Example.com" {
			t.Errorf("UserByEmail = %+v, %v", got, err)
		}
		if _, err := s.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, ErrNotFound) {
			t.Errorf("UserByEmail(unknown) = %v, want ErrNotFound", err)
		}
		if _, err := s.UserByID(ctx, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("UserByID(unknown) = %v, want ErrNotFound", err)
		}
		clock.Advance(time.Minute)
		name, prefs := "Ann B", []byte(`{"autoplay":true,"lang":"sv"}`)
		up, err := s.UpdateProfile(ctx, u.ID, ProfileUpdate{DisplayName: &name, Preferences: prefs})
		if err != nil {
			t.Fatal(err)
		}
		if up.DisplayName != "Ann B" || up.Country != "SE" || !up.UpdatedAt.After(up.CreatedAt) {
			t.Errorf("updated user = %+v", up)
		}
		if !strings.Contains(string(up.Preferences), `"autoplay"`) || !strings.Contains(string(up.Preferences), `"sv"`) {
			t.Errorf("preferences = %s", up.Preferences)
		}
		if _, err := s.UpdateProfile(ctx, 999999, ProfileUpdate{DisplayName: &name}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateProfile(unknown) = %v, want ErrNotFound", err)
		}
		if err := s.SetTier(ctx, u.ID, TierPremium); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.UserByID(ctx, u.ID); got.Tier != TierPremium {
			t.Errorf("tier = %q after SetTier", got.Tier)
		}
	})
}

func TestRefreshRotation(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		u, err := s.CreateUser(ctx, NewUser{Email: "r@example.com", PasswordHash: "h", DisplayName: "R"})
		if err != nil {
			t.Fatal(err)
		}
		const grace = 10 * time.Second
		exp := func() time.Time { return clock.Now().Add(30 * 24 * time.Hour) }
		sess, err := s.CreateSession(ctx, u.ID, hashOf("t1"), exp())
		if err != nil {
			t.Fatal(err)
		}
		rot := func(old, next string) (Session, error) {
			return s.RotateRefresh(ctx, hashOf(old), hashOf(next), exp(), grace)
		}

		got, err := rot("t1", "t2")
		if err != nil || got.FamilyID != sess.FamilyID || got.UserID != u.ID {
			t.Fatalf("rotate t1 = %+v, %v", got, err)
		}
		// The response was lost: t1 again within grace retires t2, issues t3.
		clock.Advance(3 * time.Second)
		if _, err := rot("t1", "t3"); err != nil {
			t.Fatalf("retry of t1 within grace = %v", err)
		}
		if _, err := rot("t2", "tx"); !errors.Is(err, ErrTokenReused) {
			t.Fatalf("retired t2 = %v, want ErrTokenReused", err)
		}
		// That revoked the family: t3 is dead too.
		if _, err := rot("t3", "t4"); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("t3 after family revoked = %v, want ErrTokenInvalid", err)
		}
		if revoked, _ := s.SessionRevoked(ctx, sess.FamilyID); !revoked {
			t.Error("family not revoked after reuse")
		}

		// New login: reuse after the successor was used revokes even in grace.
		sess2, _ := s.CreateSession(ctx, u.ID, hashOf("a1"), exp())
		if _, err := rot("a1", "a2"); err != nil {
			t.Fatal(err)
		}
		if _, err := rot("a2", "a3"); err != nil {
			t.Fatal(err)
		}
		if _, err := rot("a1", "evil"); !errors.Is(err, ErrTokenReused) {
			t.Fatalf("a1 after a2 was used = %v, want ErrTokenReused", err)
		}
		if _, err := rot("a3", "a4"); !errors.Is(err, ErrTokenInvalid) {
			t.Fatalf("a3 after reuse = %v, want ErrTokenInvalid", err)
		}
		_ = sess2

		// Reuse after the grace window revokes.
		s.CreateSession(ctx, u.ID, hashOf("b1"), exp())
		if _, err := rot("b1", "b2"); err != nil {
			t.Fatal(err)
		}
		clock.Advance(grace + time.Second)
		if _, err := rot("b1", "b3"); !errors.Is(err, ErrTokenReused) {
			t.Fatalf("b1 after grace = %v, want ErrTokenReused", err)
		}

		// Unknown and expired tokens.
		if _, err := rot("nope", "x"); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("unknown token = %v, want ErrTokenInvalid", err)
		}
		s.CreateSession(ctx, u.ID, hashOf("c1"), clock.Now().Add(time.Hour))
		clock.Advance(time.Hour)
		if _, err := rot("c1", "c2"); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("expired token = %v, want ErrTokenInvalid", err)
		}

		// Logout revokes the family; unknown tokens are fine.
		s.CreateSession(ctx, u.ID, hashOf("d1"), exp())
		if err := s.RevokeSession(ctx, hashOf("d1")); err != nil {
			t.Fatal(err)
		}
		if _, err := rot("d1", "d2"); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("token after logout = %v, want ErrTokenInvalid", err)
		}
		if err := s.RevokeSession(ctx, hashOf("never")); err != nil {
			t.Errorf("RevokeSession(unknown) = %v", err)
		}
		clock.Advance(60 * 24 * time.Hour)
		if n, err := s.PruneRefreshTokens(ctx, clock.Now()); err != nil || n == 0 {
			t.Errorf("PruneRefreshTokens = %d, %v", n, err)
		}
	})
}

// catalog is a small fixture: an owner, artists, an album and songs.
type catalog struct {
	owner            User
	queen, bowie     Artist
	acdc, beyonce    Artist
	album, single    Album
	bohemian, stress Song
	hidden           Song
}

func newCatalog(t *testing.T, s *Store) catalog {
	t.Helper()
	ctx := context.Background()
	var c catalog
	var err error
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	c.owner, err = s.CreateUser(ctx, NewUser{Email: "label@example.com", PasswordHash: "h", DisplayName: "Label"})
	must(err)
	c.queen, err = s.CreateArtist(ctx, c.owner.ID, NewArtist{Name: "Queen", Bio: "British rock band"})
	must(err)
	c.bowie, err = s.CreateArtist(ctx, c.owner.ID, NewArtist{Name: "David Bowie"})
	must(err)
	c.acdc, err = s.CreateArtist(ctx, c.owner.ID, NewArtist{Name: "AC/DC"})
	must(err)
	c.beyonce, err = s.CreateArtist(ctx, c.owner.ID, NewArtist{Name: "Beyoncé"})
	must(err)
	c.album, err = s.CreateAlbum(ctx, NewAlbum{ArtistID: c.queen.ID, Title: "A Night at the Opera", Type: AlbumTypeAlbum, ReleaseDate: "1975-11-21"})
	must(err)
	c.single, err = s.CreateAlbum(ctx, NewAlbum{ArtistID: c.acdc.ID, Title: "Highway to Hell", Type: AlbumTypeSingle})
	must(err)
	c.bohemian, err = s.CreateSong(ctx, NewSong{AlbumID: c.album.ID, Title: "Bohemian Rhapsody", TrackNumber: 11, DurationMS: 354000,
		Genre: "rock", Status: StatusReady, CurrentVersion: 1})
	must(err)
	c.stress, err = s.CreateSong(ctx, NewSong{AlbumID: c.album.ID, Title: "Under Pressure", TrackNumber: 12, DurationMS: 248000,
		Genre: "rock", Status: StatusReady, CurrentVersion: 2,
		Credits: []NewCredit{{c.queen.ID, RolePrimary}, {c.bowie.ID, RoleFeatured}}})
	must(err)
	c.hidden, err = s.CreateSong(ctx, NewSong{AlbumID: c.album.ID, Title: "Bohemian Demo", TrackNumber: 13, Genre: "rock"})
	must(err)
	_, err = s.CreateSong(ctx, NewSong{AlbumID: c.single.ID, Title: "Highway to Hell", TrackNumber: 1, Genre: "rock", Status: StatusReady, CurrentVersion: 1})
	must(err)
	return c
}

func TestCatalog(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		c := newCatalog(t, s)
		owner, _ := s.UserByID(ctx, c.owner.ID)
		if owner.Role != RoleArtist {
			t.Errorf("owner role = %q, want artist", owner.Role)
		}
		got, err := s.SongByID(ctx, c.stress.ID)
		if err != nil {
			t.Fatal(err)
		}
		wantCredits := []Credit{{c.queen.ID, "Queen", RolePrimary}, {c.bowie.ID, "David Bowie", RoleFeatured}}
		if !slices.Equal(got.Credits, wantCredits) {
			t.Errorf("credits = %+v, want %+v", got.Credits, wantCredits)
		}
		if got.AlbumTitle != "A Night at the Opera" || got.AlbumArtistID != c.queen.ID || got.PrimaryArtistID != c.queen.ID {
			t.Errorf("song = %+v", got)
		}
		if p, want := blobkey.VersionFolder(got.AlbumArtistID, got.AlbumID, got.ID, got.CurrentVersion), fmt.Sprintf("artists/%d/albums/%d/songs/%d/v2/", c.queen.ID, c.album.ID, c.stress.ID); p != want {
			t.Errorf("current version folder = %q, want %q", p, want)
		}
		if _, err := s.SongByID(ctx, 424242); !errors.Is(err, ErrNotFound) {
			t.Errorf("SongByID(unknown) = %v", err)
		}
		if _, err := s.CreateAlbum(ctx, NewAlbum{ArtistID: 424242, Title: "x", Type: AlbumTypeEP}); !errors.Is(err, ErrNotFound) {
			t.Errorf("CreateAlbum(unknown artist) = %v, want ErrNotFound", err)
		}
		if _, err := s.CreateSong(ctx, NewSong{AlbumID: 424242, Title: "x"}); !errors.Is(err, ErrNotFound) {
			t.Errorf("CreateSong(unknown album) = %v, want ErrNotFound", err)
		}

		songs, err := s.AlbumSongs(ctx, c.album.ID, true)
		if err != nil || len(songs) != 2 || songs[0].ID != c.bohemian.ID || songs[1].ID != c.stress.ID {
			t.Errorf("AlbumSongs(ready) = %v, %v", songs, err)
		}
		if all, _ := s.AlbumSongs(ctx, c.album.ID, false); len(all) != 3 {
			t.Errorf("AlbumSongs(all) = %d songs, want 3", len(all))
		}

		// Artist songs: credited in any role, ready only, most popular first.
		s.RecordPlays(ctx, []PlayCount{{SongID: c.stress.ID, Hour: clock.Now(), Plays: 50}})
		page, total, err := s.ArtistSongs(ctx, c.queen.ID, 1, 0)
		if err != nil || total != 2 || len(page) != 1 || page[0].ID != c.stress.ID {
			t.Errorf("ArtistSongs(queen, 1, 0) = %v, %d, %v", page, total, err)
		}
		page, _, _ = s.ArtistSongs(ctx, c.queen.ID, 1, 1)
		if len(page) != 1 || page[0].ID != c.bohemian.ID {
			t.Errorf("ArtistSongs(queen, 1, 1) = %v", page)
		}
		if page, total, _ := s.ArtistSongs(ctx, c.bowie.ID, 10, 0); total != 1 || len(page) != 1 {
			t.Errorf("ArtistSongs(bowie) = %v, %d", page, total)
		}
		if page, total, _ := s.ArtistSongs(ctx, c.queen.ID, 10, 50); total != 2 || len(page) != 0 {
			t.Errorf("ArtistSongs past the end = %v, %d", page, total)
		}

		// Renaming an artist renames it in search.
		name := "Queen + Adam Lambert"
		if _, err := s.UpdateArtist(ctx, c.queen.ID, ArtistUpdate{Name: &name}); err != nil {
			t.Fatal(err)
		}
		if p, _ := s.SearchSongs(ctx, ParseQuery("lambert bohemian"), 10, 0); p.Total != 1 || p.Items[0].ID != c.bohemian.ID {
			t.Errorf("search by new artist name = %+v", p)
		}
		title := "Night Opera"
		if al, err := s.UpdateAlbum(ctx, c.album.ID, AlbumUpdate{Title: &title}); err != nil || al.Title != title || al.ArtistName != name {
			t.Errorf("UpdateAlbum = %+v, %v", al, err)
		}
		if p, _ := s.SearchSongs(ctx, ParseQuery("night opera pressure"), 10, 0); p.Total != 1 {
			t.Errorf("search by new album title: total %d, want 1", p.Total)
		}
		if _, err := s.UpdateAlbum(ctx, 424242, AlbumUpdate{Title: &title}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateAlbum(unknown) = %v", err)
		}
		if _, err := s.UpdateArtist(ctx, 424242, ArtistUpdate{Name: &name}); !errors.Is(err, ErrNotFound) {
			t.Errorf("UpdateArtist(unknown) = %v", err)
		}

		// Publishing a version flips the current version.
		if err := s.PublishVersion(ctx, c.hidden.ID, 1, []Rendition{{"ogg", 128, "k/ogg_128.ogg", 10}, {"aac", 64, "k/aac_64.mp4", 5}}); err != nil {
			t.Fatal(err)
		}
		h, _ := s.SongByID(ctx, c.hidden.ID)
		if h.Status != StatusReady || h.CurrentVersion != 1 {
			t.Errorf("after publish: %s v%d", h.Status, h.CurrentVersion)
		}
		if rs, err := s.Renditions(ctx, c.hidden.ID, 1); err != nil || len(rs) != 2 || rs[0].Format != "aac" {
			t.Errorf("Renditions = %v, %v", rs, err)
		}
		if err := s.PublishVersion(ctx, c.hidden.ID, 1, []Rendition{{"ogg", 128, "k", 1}}); !errors.Is(err, ErrConflict) {
			t.Errorf("publishing a rendition twice = %v, want ErrConflict", err)
		}
	})
}

func TestSearch(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		c := newCatalog(t, s)
		// "Bohemian Rhapsody" is the more popular of two songs containing
		// "rhapsody"; the other one's title does not start with it.
		al2, _ := s.CreateAlbum(ctx, NewAlbum{ArtistID: c.bowie.ID, Title: "Rhapsodies", Type: AlbumTypeAlbum})
		other, _ := s.CreateSong(ctx, NewSong{AlbumID: al2.ID, Title: "Rhapsody in Blue", Genre: "jazz", Status: StatusReady, CurrentVersion: 1})
		s.RecordPlays(ctx, []PlayCount{{SongID: c.bohemian.ID, Hour: clock.Now(), Plays: 1000}, {SongID: other.ID, Hour: clock.Now(), Plays: 5}})

		songIDs := func(q string) []int64 {
			t.Helper()
			return searchIDs(t, s.SearchSongs, q, func(so Song) int64 { return so.ID })
		}
		for _, tc := range []struct {
			q    string
			want []int64
			pg   []int64 // non-nil: PostgreSQL's typo fallback may answer anything (no error is all we check)
		}{
			{"bohemian rhapsody", []int64{c.bohemian.ID}, nil},
			{"BOHEMIAN", []int64{c.bohemian.ID}, nil}, // the demo is not ready
			{"bohem", []int64{c.bohemian.ID}, nil},
			{"rhapsody", []int64{c.bohemian.ID, other.ID}, nil}, // both have it in the name: popularity
			{"rhaps", []int64{c.bohemian.ID, other.ID}, nil},
			{"rhapsody in blue", []int64{other.ID}, nil},
			{"in", []int64{other.ID}, nil},                      // short: words of names only
			{"pressure bowie", []int64{c.stress.ID}, nil},       // featured artist
			{"queen", []int64{c.bohemian.ID, c.stress.ID}, nil}, // same tier: popularity
			{"zzzz", []int64{}, nil},
			{`"`, []int64{}, nil},
			{`*`, []int64{}, nil},
			{`NEAR(`, []int64{}, nil},
			{`near(bohemian, pressure)`, []int64{}, []int64{}},
			{`'; DROP TABLE songs; --`, []int64{}, nil},
			{`-bohemian`, []int64{c.bohemian.ID}, nil},
			{`bohemian:`, []int64{c.bohemian.ID}, nil},
			{`title:bohemian`, []int64{}, []int64{}}, // one word, "titlebohemian"
			{`bohemian OR pressure`, []int64{}, []int64{}},
		} {
			want := tc.want
			got := songIDs(tc.q)
			if s.Dialect() == Postgres && tc.pg != nil {
				continue
			}
			if !slices.Equal(got, want) {
				t.Errorf("SearchSongs(%q) = %v, want %v", tc.q, got, want)
			}
		}

		artistIDs := func(q string) []int64 {
			t.Helper()
			return searchIDs(t, s.SearchArtists, q, func(a Artist) int64 { return a.ID })
		}
		for _, tc := range []struct {
			q    string
			want []int64
		}{
			{"acdc", []int64{c.acdc.ID}},
			{"AC/DC", []int64{c.acdc.ID}},
			{"ac dc", []int64{c.acdc.ID}},
			{"ac", []int64{c.acdc.ID}}, // short: name prefix
			{"beyonce", []int64{c.beyonce.ID}},
			{"Beyoncé", []int64{c.beyonce.ID}},
			{"BEYONCÉ", []int64{c.beyonce.ID}},
			{"d", []int64{c.acdc.ID, c.bowie.ID}}, // a name word starting with d ("dc"); newest first
			{"david", []int64{c.bowie.ID}},
			{"bowie", []int64{c.bowie.ID}},
		} {
			if got := artistIDs(tc.q); !slices.Equal(got, tc.want) {
				t.Errorf("SearchArtists(%q) = %v, want %v", tc.q, got, tc.want)
			}
		}
		als, err := s.SearchAlbums(ctx, ParseQuery("highway"), 20, 0)
		if err != nil || als.Total != 1 || als.Items[0].ID != c.single.ID || als.Items[0].ArtistName != "AC/DC" {
			t.Errorf("SearchAlbums(highway) = %+v, %v", als, err)
		}
		if als, _ := s.SearchAlbums(ctx, ParseQuery("acdc"), 20, 0); len(als.Items) != 1 {
			t.Errorf("SearchAlbums(acdc) = %+v: albums are found by artist name", als)
		}

		// Paging.
		pg, err := s.SearchSongs(ctx, ParseQuery("rhapsody"), 1, 1)
		if err != nil || pg.Total != 2 || len(pg.Items) != 1 || pg.Items[0].ID != other.ID {
			t.Errorf("page 2 of rhapsody = %+v, %v", pg, err)
		}
		if pg, _ := s.SearchSongs(ctx, ParseQuery("rhapsody"), 1, 5); pg.Total != 2 || len(pg.Items) != 0 {
			t.Errorf("page past the end = %+v", pg)
		}
		// Playlists: only public ones.
		mustExec(t, s, `INSERT INTO playlists (owner_user_id, name, is_public, name_key, search_text, created_at, updated_at)
			VALUES ($1, 'Road Trip Classics', $2, 'road trip classics', 'road trip classics', 0, 0),
			       ($1, 'Road Secrets', $3, 'road secrets', 'road secrets', 0, 0)`, c.owner.ID, true, false)
		ps, err := s.SearchPlaylists(ctx, ParseQuery("road"), 20, 0)
		if err != nil || ps.Total != 1 || ps.Items[0].Name != "Road Trip Classics" || ps.Items[0].OwnerName != "Label" {
			t.Errorf("SearchPlaylists(road) = %+v, %v", ps, err)
		}
		if ps, _ := s.SearchPlaylists(ctx, ParseQuery("ro"), 20, 0); len(ps.Items) != 1 {
			t.Errorf("SearchPlaylists(ro) = %+v", ps)
		}
		// Making a playlist private removes it from search.
		mustExec(t, s, `UPDATE playlists SET is_public = $1`, false)
		if ps, _ := s.SearchPlaylists(ctx, ParseQuery("road"), 20, 0); ps.Total != 0 {
			t.Errorf("private playlists found: %+v", ps)
		}
	})
}

func TestSearchTypoFallbackPostgres(t *testing.T) {
	s := openPostgres(t, newTestClock())
	c := newCatalog(t, s)
	as, err := s.SearchArtists(context.Background(), ParseQuery("beyonse"), 10, 0)
	if err != nil || len(as.Items) != 1 || as.Items[0].ID != c.beyonce.ID || as.Total != 1 {
		t.Errorf("SearchArtists(beyonse) = %+v, %v: want the trigram fallback to find Beyoncé, total 1", as, err)
	}
	// A page past the end still has the total (no row carries it).
	if as, err := s.SearchArtists(context.Background(), ParseQuery("beyonse"), 10, 5); err != nil || len(as.Items) != 0 || as.Total != 1 {
		t.Errorf("SearchArtists(beyonse) offset 5 = %+v, %v: want no items, total 1", as, err)
	}
}

func TestTrending(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		c := newCatalog(t, s)
		al, _ := s.CreateAlbum(ctx, NewAlbum{ArtistID: c.bowie.ID, Title: "Hunky Dory", Type: AlbumTypeAlbum})
		jazz, _ := s.CreateSong(ctx, NewSong{AlbumID: al.ID, Title: "Jazzy", Genre: "jazz", Status: StatusReady, CurrentVersion: 1})
		now := clock.Now()
		// Old plays count less: 100 plays 3 days ago (×1/8) < 20 plays now.
		err := s.RecordPlays(ctx, []PlayCount{
			{c.bohemian.ID, now.Add(-72 * time.Hour), 100},
			{c.stress.ID, now, 20},
			{jazz.ID, now.Add(-time.Hour), 5},
			{c.hidden.ID, now, 1000},                            // not ready: never trending
			{c.bohemian.ID, now.Add(-20 * 24 * time.Hour), 1e6}, // 2^-20: under one play now
		})
		if err != nil {
			t.Fatal(err)
		}
		ids := func(genre string, limit int) []int64 {
			t.Helper()
			ts, err := s.Trending(ctx, now, genre, limit)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for i, so := range ts {
				out = append(out, so.ID)
				if i > 0 && so.Score > ts[i-1].Score {
					t.Errorf("scores not descending: %v", ts)
				}
			}
			return out
		}
		if got, want := ids("", 10), []int64{c.stress.ID, c.bohemian.ID, jazz.ID}; !slices.Equal(got, want) {
			t.Errorf("Trending = %v, want %v", got, want)
		}
		if got, want := ids("jazz", 10), []int64{jazz.ID}; !slices.Equal(got, want) {
			t.Errorf("Trending(jazz) = %v, want %v", got, want)
		}
		if got := ids("", 1); len(got) != 1 {
			t.Errorf("Trending limit 1 = %v", got)
		}
		if got := ids("polka", 10); len(got) != 0 {
			t.Errorf("Trending(polka) = %v", got)
		}
		ts, _ := s.Trending(ctx, now, "", 3)
		if len(ts[0].Credits) != 2 {
			t.Errorf("trending songs carry credits: %+v", ts[0].Credits)
		}
		// Scores are decayed plays: 20 now; 100·2^-3 + 1e6·2^-20 ≈ 13.45.
		if math.Abs(ts[0].Score-20) > 1e-6 || math.Abs(ts[1].Score-(12.5+1e6/(1<<20))) > 1e-6 {
			t.Errorf("scores = %v, %v", ts[0].Score, ts[1].Score)
		}
		// Upserts (more plays in the same hour) add up.
		s.RecordPlays(ctx, []PlayCount{{jazz.ID, now, 30}, {jazz.ID, now, 30}})
		if got := ids("", 1); got[0] != jazz.ID {
			t.Errorf("after 60 more plays jazz is not first: %v", got)
		}
	})
}

func TestSeed(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		var progress []int
		st, err := s.Seed(ctx, SeedOptions{Songs: 1500, Seed: 7, Progress: func(n int) { progress = append(progress, n) }})
		if err != nil {
			t.Fatal(err)
		}
		if st.Songs != 1500 || st.Albums == 0 || st.Artists == 0 || st.PlayRows == 0 || len(progress) == 0 {
			t.Errorf("Seed stats = %+v, progress %v", st, progress)
		}
		var songs, fts int
		s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM songs").Scan(&songs)
		if songs != 1500 {
			t.Errorf("%d songs in the table", songs)
		}
		// The word index covers the seeded rows, and the triggers are back.
		so, _ := s.SongByID(ctx, 1)
		w := ParseQuery(so.Title)
		w.PrefixLast = false
		if p, err := s.SearchSongs(ctx, w, 5, 0); err != nil || (so.Status == StatusReady && p.Total == 0) {
			t.Errorf("search for seeded %q: %d, %v", so.Title, p.Total, err)
		}
		if s.Dialect() == SQLite {
			s.r.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '%fts%'").Scan(&fts)
			if fts != 12 {
				t.Errorf("%d FTS triggers after seed, want 12", fts)
			}
		}
		// Seeding again continues the ids, and regular inserts still work.
		if _, err := s.Seed(ctx, SeedOptions{Songs: 10, Seed: 8, TrendingSongs: -1}); err != nil {
			t.Fatal(err)
		}
		u, err := s.CreateUser(ctx, NewUser{Email: "after@seed.example", PasswordHash: "h", DisplayName: "x"})
		if err != nil {
			t.Fatal(err)
		}
		a, err := s.CreateArtist(ctx, u.ID, NewArtist{Name: "Zzyzx Quartet"})
		if err != nil {
			t.Fatal(err)
		}
		if as, _ := s.SearchArtists(ctx, ParseQuery("zzyzx"), 5, 0); len(as.Items) != 1 || as.Items[0].ID != a.ID {
			t.Errorf("artist added after seed not searchable: %+v", as)
		}
	})
}

func TestSQLiteFileIsCreatedInMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	s, err := Open(context.Background(), "file:"+filepath.Join(dir, "riff.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ping(context.Background()); err != nil {
		t.Error(err)
	}
	s.Close()
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}
