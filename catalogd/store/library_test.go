package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"riff/catalogd/store/storetest"
)

// librarySongs makes n ready songs (durations 10 s to 5 min) by one
// artist, and a listener.
func librarySongs(t testing.TB, s *Store, n int) (listener User, artist Artist, songs []Song) {
	t.Helper()
	ctx := context.Background()
	owner, err := s.CreateUser(ctx, NewUser{Email: "label@example.com", PasswordHash: "h", DisplayName: "Label"})
	if err != nil {
		t.Fatal(err)
	}
	listener, err = s.CreateUser(ctx, NewUser{Email: "ann@example.com", PasswordHash: "h", DisplayName: "Ann"})
	if err != nil {
		t.Fatal(err)
	}
	artist, err = s.CreateArtist(ctx, owner.ID, NewArtist{Name: "Band"})
	if err != nil {
		t.Fatal(err)
	}
	al, err := s.CreateAlbum(ctx, NewAlbum{ArtistID: artist.ID, Title: "Album", Type: AlbumTypeAlbum})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		genre := "rock"
		if i%2 == 1 {
			genre = "jazz"
		}
		so, err := s.CreateSong(ctx, NewSong{AlbumID: al.ID, Title: fmt.Sprintf("Song %d", i), TrackNumber: i + 1,
			DurationMS: int64(10_000 + i*10_000), Genre: genre, Status: StatusReady, CurrentVersion: 1})
		if err != nil {
			t.Fatal(err)
		}
		songs = append(songs, so)
	}
	return listener, artist, songs
}

// itemSongs returns the song ids of a playlist in order, checking that
// positions count from 0 and the item count matches.
func itemSongs(t *testing.T, s *Store, id int64) []int64 {
	t.Helper()
	ctx := context.Background()
	items, err := s.PlaylistItems(ctx, id, MaxPlaylistItems, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.PlaylistByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.ItemCount != len(items) {
		t.Fatalf("item_count %d, %d items", p.ItemCount, len(items))
	}
	out := make([]int64, len(items))
	for i, it := range items {
		if it.Position != i {
			t.Fatalf("item %d has position %d", i, it.Position)
		}
		out[i] = it.Song.ID
	}
	return out
}

func TestPlaylistEdits(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		ann, _, songs := librarySongs(t, s, 6)
		bob, err := s.CreateUser(ctx, NewUser{Email: "bob@example.com", PasswordHash: "h", DisplayName: "Bob"})
		if err != nil {
			t.Fatal(err)
		}
		a, b, c, d, e := songs[0].ID, songs[1].ID, songs[2].ID, songs[3].ID, songs[4].ID
		p, err := s.CreatePlaylist(ctx, ann.ID, NewPlaylist{Name: "Mix", IsPublic: false})
		if err != nil {
			t.Fatal(err)
		}
		if p.Version != 1 || p.ItemCount != 0 || p.OwnerName != "Ann" {
			t.Fatalf("new playlist = %+v", p)
		}
		me := Editor{UserID: ann.ID}
		add := func(pos int, ids ...int64) EditResult {
			t.Helper()
			r, err := s.AddPlaylistSongs(ctx, p.ID, me, ids, pos)
			if err != nil {
				t.Fatalf("add %v at %d: %v", ids, pos, err)
			}
			return r
		}
		want := func(ids ...int64) {
			t.Helper()
			if got := itemSongs(t, s, p.ID); !slices.Equal(got, ids) {
				t.Fatalf("order = %v, want %v", got, ids)
			}
		}
		r := add(-1, a, b) // append to empty
		if r.Version != 2 || r.ItemCount != 2 || len(r.Added) != 2 || r.Added[0].Position != 0 || r.Added[1].SongID != b {
			t.Errorf("first add = %+v", r)
		}
		add(0, c)    // start
		add(3, d)    // end, by position
		add(2, e, a) // middle, with a duplicate
		want(c, a, e, a, b, d)
		snap := r.SnapshotID()

		// Reorders, Spotify's way: move [range_start, +range_length) before insert_before.
		if _, err := s.ReorderPlaylist(ctx, p.ID, me, 0, 1, 6); err != nil { // first to the end
			t.Fatal(err)
		}
		want(a, e, a, b, d, c)
		if _, err := s.ReorderPlaylist(ctx, p.ID, me, 3, 2, 0); err != nil { // b, d to the start
			t.Fatal(err)
		}
		want(b, d, a, e, a, c)
		if _, err := s.ReorderPlaylist(ctx, p.ID, me, 1, 2, 5); err != nil { // d, a before c
			t.Fatal(err)
		}
		want(b, e, a, d, a, c)
		if _, err := s.ReorderPlaylist(ctx, p.ID, me, 1, 2, 2); err != nil { // no move
			t.Fatal(err)
		}
		want(b, e, a, d, a, c)
		for _, rg := range [][3]int{{-1, 1, 0}, {0, 0, 1}, {5, 2, 0}, {0, 1, 7}} {
			if _, err := s.ReorderPlaylist(ctx, p.ID, me, rg[0], rg[1], rg[2]); !errors.Is(err, ErrOutOfRange) {
				t.Errorf("reorder %v = %v, want ErrOutOfRange", rg, err)
			}
		}

		// Removal: every occurrence of a song, or one item.
		r, err = s.RemovePlaylistSong(ctx, p.ID, me, a)
		if err != nil || r.Removed != 2 || r.ItemCount != 4 {
			t.Fatalf("remove song = %+v, %v", r, err)
		}
		want(b, e, d, c)
		items, _ := s.PlaylistItems(ctx, p.ID, 10, 0)
		if r, err = s.RemovePlaylistItem(ctx, p.ID, me, items[1].ID); err != nil || r.Removed != 1 {
			t.Fatalf("remove item = %+v, %v", r, err)
		}
		want(b, d, c)
		if _, err := s.RemovePlaylistSong(ctx, p.ID, me, a); !errors.Is(err, ErrNotFound) {
			t.Errorf("removing an absent song = %v", err)
		}
		if _, err := s.RemovePlaylistItem(ctx, p.ID, me, items[1].ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("removing a removed item = %v", err)
		}

		// Snapshots: If-Match on an old version fails and changes nothing;
		// on the current one it works.
		cur, _ := s.PlaylistByID(ctx, p.ID)
		if _, err := s.AddPlaylistSongs(ctx, p.ID, Editor{UserID: ann.ID, IfVersion: ParseSnapshotID(snap)}, []int64{a}, -1); !errors.Is(err, ErrStale) {
			t.Errorf("stale add = %v, want ErrStale", err)
		}
		if again, _ := s.PlaylistByID(ctx, p.ID); again.Version != cur.Version {
			t.Errorf("a refused edit bumped the version %d → %d", cur.Version, again.Version)
		}
		if r, err = s.AddPlaylistSongs(ctx, p.ID, Editor{UserID: ann.ID, IfVersion: cur.Version}, []int64{a}, -1); err != nil || r.Version != cur.Version+1 {
			t.Errorf("add on the current snapshot = %+v, %v", r, err)
		}
		want(b, d, c, a)

		// Bad adds change nothing.
		var unknown *UnknownSongsError
		if _, err := s.AddPlaylistSongs(ctx, p.ID, me, []int64{a, 999999, 888888, 999999}, -1); !errors.As(err, &unknown) || !slices.Equal(unknown.IDs, []int64{888888, 999999}) {
			t.Errorf("unknown songs = %v", err)
		}
		if _, err := s.AddPlaylistSongs(ctx, p.ID, me, []int64{a}, 5); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("position past the end = %v", err)
		}
		if _, err := s.AddPlaylistSongs(ctx, p.ID, me, make([]int64, MaxPlaylistAdd+1), -1); !errors.Is(err, ErrOutOfRange) {
			t.Errorf("101 songs = %v", err)
		}
		want(b, d, c, a)

		// Someone else: a private playlist does not exist for them; a public one is not theirs.
		if _, err := s.AddPlaylistSongs(ctx, p.ID, Editor{UserID: bob.ID}, []int64{a}, -1); !errors.Is(err, ErrNotFound) {
			t.Errorf("bob adding to a private playlist = %v", err)
		}
		pub := true
		up, err := s.UpdatePlaylist(ctx, p.ID, me, PlaylistUpdate{IsPublic: &pub, Name: ptr("Road trip")})
		if err != nil || !up.IsPublic || up.Name != "Road trip" {
			t.Fatalf("update = %+v, %v", up, err)
		}
		if _, err := s.RemovePlaylistSong(ctx, p.ID, Editor{UserID: bob.ID}, a); !errors.Is(err, ErrNotOwner) {
			t.Errorf("bob removing from a public playlist = %v", err)
		}
		want(b, d, c, a)
		if res, err := s.SearchPlaylists(ctx, ParseQuery("road trip"), 5, 0); err != nil || len(res.Items) != 1 {
			t.Errorf("public playlist not in search: %+v, %v", res, err)
		}

		// Follows: idempotent, listed with the user's own playlists.
		for range 2 {
			if err := s.FollowPlaylist(ctx, bob.ID, p.ID); err != nil {
				t.Fatal(err)
			}
		}
		bobs, err := s.CreatePlaylist(ctx, bob.ID, NewPlaylist{Name: "Bob's"})
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		list, total, err := s.UserPlaylists(ctx, bob.ID, 10, 0)
		if err != nil || total != 2 || len(list) != 2 || list[0].ID != bobs.ID || list[1].ID != p.ID || list[1].Followers != 1 {
			t.Errorf("bob's playlists = %+v, %d, %v", list, total, err)
		}
		if err := s.FollowPlaylist(ctx, ann.ID, bobs.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("following a private playlist = %v", err)
		}
		for range 2 {
			if err := s.UnfollowPlaylist(ctx, bob.ID, p.ID); err != nil {
				t.Fatal(err)
			}
		}
		if _, total, _ := s.UserPlaylists(ctx, bob.ID, 10, 0); total != 1 {
			t.Errorf("after unfollowing bob has %d playlists", total)
		}

		// Delete.
		if err := s.DeletePlaylist(ctx, p.ID, Editor{UserID: bob.ID}); !errors.Is(err, ErrNotOwner) {
			t.Errorf("bob deleting = %v", err)
		}
		if err := s.DeletePlaylist(ctx, p.ID, me); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PlaylistByID(ctx, p.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("deleted playlist = %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestPlaylistModel runs random edits against a slice model, with enough
// inserts at one spot to exhaust the gaps and renumber.
func TestPlaylistModel(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		ann, _, songs := librarySongs(t, s, 8)
		p, err := s.CreatePlaylist(ctx, ann.ID, NewPlaylist{Name: "Model"})
		if err != nil {
			t.Fatal(err)
		}
		me := Editor{UserID: ann.ID}
		var model []int64
		// 40 single inserts at index 1: each halves the gap there.
		for i := range 40 {
			at := min(1, len(model))
			id := songs[i%len(songs)].ID
			if _, err := s.AddPlaylistSongs(ctx, p.ID, me, []int64{id}, at); err != nil {
				t.Fatal(err)
			}
			model = slices.Insert(model, at, id)
		}
		if got := itemSongs(t, s, p.ID); !slices.Equal(got, model) {
			t.Fatalf("after crowded inserts: %v, want %v", got, model)
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for step := range 150 {
			switch op := rng.IntN(3); {
			case op == 0 || len(model) < 5:
				k := 1 + rng.IntN(5)
				at := rng.IntN(len(model) + 1)
				ids := make([]int64, k)
				for j := range ids {
					ids[j] = songs[rng.IntN(len(songs))].ID
				}
				if _, err := s.AddPlaylistSongs(ctx, p.ID, me, ids, at); err != nil {
					t.Fatal(err)
				}
				model = slices.Insert(model, at, ids...)
			case op == 1:
				start := rng.IntN(len(model))
				n := 1 + rng.IntN(min(4, len(model)-start))
				before := rng.IntN(len(model) + 1)
				if _, err := s.ReorderPlaylist(ctx, p.ID, me, start, n, before); err != nil {
					t.Fatal(err)
				}
				if before < start || before > start+n {
					moved := slices.Clone(model[start : start+n])
					rest := slices.Delete(slices.Clone(model), start, start+n)
					at := before
					if before > start {
						at -= n
					}
					model = slices.Insert(rest, at, moved...)
				}
			default:
				at := rng.IntN(len(model))
				items, err := s.PlaylistItems(ctx, p.ID, 1, at)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := s.RemovePlaylistItem(ctx, p.ID, me, items[0].ID); err != nil {
					t.Fatal(err)
				}
				model = slices.Delete(model, at, at+1)
			}
			if step%10 == 0 {
				if got := itemSongs(t, s, p.ID); !slices.Equal(got, model) {
					t.Fatalf("step %d: %v, want %v", step, got, model)
				}
			}
		}
		if got := itemSongs(t, s, p.ID); !slices.Equal(got, model) {
			t.Fatalf("end: %v, want %v", got, model)
		}
	})
}

func TestPlaylistLimit(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		ann, _, songs := librarySongs(t, s, 1)
		p, err := s.CreatePlaylist(ctx, ann.ID, NewPlaylist{Name: "Big"})
		if err != nil {
			t.Fatal(err)
		}
		ids := slices.Repeat([]int64{songs[0].ID}, MaxPlaylistAdd)
		for range MaxPlaylistItems / MaxPlaylistAdd {
			if _, err := s.AddPlaylistSongs(ctx, p.ID, Editor{UserID: ann.ID}, ids, -1); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.AddPlaylistSongs(ctx, p.ID, Editor{UserID: ann.ID}, ids[:1], 0); !errors.Is(err, ErrPlaylistFull) {
			t.Errorf("10,001st item = %v, want ErrPlaylistFull", err)
		}
		if got, _ := s.PlaylistByID(ctx, p.ID); got.ItemCount != MaxPlaylistItems {
			t.Errorf("item count %d", got.ItemCount)
		}
	})
}

// TestPlaylistConcurrentWriters adds from goroutines on two separate
// stores on one database: nothing is lost, every add's items stay
// together in order, and the versions count every edit.
func TestPlaylistConcurrentWriters(t *testing.T) {
	run := func(t *testing.T, dsn string) {
		ctx := context.Background()
		clock := newTestClock()
		var stores [2]*Store
		for i := range stores {
			s, err := Open(ctx, dsn, Options{Now: clock.Now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			stores[i] = s
		}
		const writers, adds = 4, 15
		ann, _, songs := librarySongs(t, stores[0], writers*adds)
		p, err := stores[0].CreatePlaylist(ctx, ann.ID, NewPlaylist{Name: "Shared"})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, writers*adds)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := stores[w%2]
				for i := range adds {
					// Three copies of a song of this add's own, at the
					// start or the end (which split no earlier add).
					so := songs[w*adds+i].ID
					if _, err := s.AddPlaylistSongs(ctx, p.ID, Editor{UserID: ann.ID}, []int64{so, so, so}, []int{0, -1}[i%2]); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		items, err := stores[1].PlaylistItems(ctx, p.ID, MaxPlaylistItems, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) != writers*adds*3 {
			t.Fatalf("%d items, want %d", len(items), writers*adds*3)
		}
		// Each add's three items are together.
		for i := 0; i < len(items); i += 3 {
			if a, b, c := items[i].Song.ID, items[i+1].Song.ID, items[i+2].Song.ID; a != b || b != c {
				t.Fatalf("items %d-%d are songs %d, %d, %d: adds interleaved", i, i+2, a, b, c)
			}
		}
		seen := map[int64]bool{}
		for _, it := range items {
			seen[it.Song.ID] = true
		}
		if len(seen) != writers*adds {
			t.Errorf("%d distinct songs, want %d", len(seen), writers*adds)
		}
		got, _ := stores[0].PlaylistByID(ctx, p.ID)
		if got.ItemCount != len(items) || got.Version != 1+writers*adds {
			t.Errorf("playlist = %d items, version %d; want %d, %d", got.ItemCount, got.Version, len(items), 1+writers*adds)
		}
	}
	t.Run("sqlite", func(t *testing.T) { run(t, "file:"+filepath.Join(t.TempDir(), "riff.db")) })
	t.Run("postgres", func(t *testing.T) { run(t, storetest.PostgresDSN(t)) })
}

func TestLikesAndFollows(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		ann, band, songs := librarySongs(t, s, 3)
		for _, so := range songs {
			for range 2 {
				if err := s.LikeSong(ctx, ann.ID, so.ID); err != nil {
					t.Fatal(err)
				}
			}
			clock.Advance(time.Second)
		}
		liked, total, err := s.LikedSongs(ctx, ann.ID, 2, 0)
		if err != nil || total != 3 || len(liked) != 2 || liked[0].Song.ID != songs[2].ID || liked[1].Song.ID != songs[1].ID || len(liked[0].Song.Credits) == 0 {
			t.Fatalf("liked = %+v, %d, %v", liked, total, err)
		}
		for range 2 {
			if err := s.UnlikeSong(ctx, ann.ID, songs[1].ID); err != nil {
				t.Fatal(err)
			}
		}
		m, err := s.LikedAmong(ctx, ann.ID, []int64{songs[0].ID, songs[1].ID, songs[2].ID})
		if err != nil || !m[songs[0].ID] || m[songs[1].ID] || !m[songs[2].ID] {
			t.Errorf("LikedAmong = %v, %v", m, err)
		}

		for range 2 {
			if err := s.FollowArtist(ctx, ann.ID, band.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.FollowArtist(ctx, ann.ID, 999999); !errors.Is(err, ErrNotFound) {
			t.Errorf("following a missing artist = %v", err)
		}
		st, err := s.ArtistStats(ctx, band.ID)
		if err != nil || st.Followers != 1 {
			t.Errorf("stats after following twice = %+v, %v", st, err)
		}
		fs, total, err := s.FollowedArtists(ctx, ann.ID, 10, 0)
		if err != nil || total != 1 || fs[0].Artist.Name != "Band" {
			t.Errorf("following = %+v, %d, %v", fs, total, err)
		}
		for range 2 {
			if err := s.UnfollowArtist(ctx, ann.ID, band.ID); err != nil {
				t.Fatal(err)
			}
		}
		if st, _ := s.ArtistStats(ctx, band.ID); st.Followers != 0 {
			t.Errorf("followers after unfollowing twice = %d", st.Followers)
		}
	})
}

func TestPlayEvents(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		ann, band, songs := librarySongs(t, s, 4) // durations 10, 20, 30, 40 s
		bob, err := s.CreateUser(ctx, NewUser{Email: "bob@example.com", PasswordHash: "h", DisplayName: "Bob"})
		if err != nil {
			t.Fatal(err)
		}
		now := clock.Now()
		ev := func(id string, song int, ms int64, ago time.Duration) PlayEvent {
			return PlayEvent{EventID: id, SongID: songs[song].ID, StartedAt: now.Add(-ago), MSPlayed: ms, Source: SourceAlbum}
		}
		batch := []PlayEvent{
			ev("e1", 0, 10_000, time.Minute),   // whole 10 s song: counts
			ev("e2", 0, 9_000, 2*time.Minute),  // short of it: no
			ev("e3", 3, 30_000, 3*time.Minute), // 30 s of 40: counts
			ev("e4", 3, 29_999, 4*time.Minute), // no
			ev("e5", 3, 40_000, 5*time.Minute), // counts; ann is one listener of song 3
			ev("e1", 0, 10_000, time.Minute),   // repeated in the batch
			ev("e6", 1, 20_000, 25*time.Hour),  // yesterday
		}
		res, err := s.RecordEvents(ctx, ann.ID, batch)
		if err != nil {
			t.Fatal(err)
		}
		if !sameResult(res, IngestResult{Recorded: 6, Duplicates: 1, Counted: 4}) {
			t.Errorf("first batch = %+v", res)
		}
		// Replayed: counted once.
		res, err = s.RecordEvents(ctx, ann.ID, batch)
		if err != nil || !sameResult(res, IngestResult{Recorded: 0, Duplicates: 7}) {
			t.Errorf("replayed batch = %+v, %v", res, err)
		}
		// Another user's event ids are their own.
		if res, err = s.RecordEvents(ctx, bob.ID, []PlayEvent{ev("e1", 3, 40_000, time.Minute)}); err != nil || res.Counted != 1 {
			t.Errorf("bob's e1 = %+v, %v", res, err)
		}
		day, err := s.SongDailyPlays(ctx, songs[3].ID, now, now)
		if err != nil || len(day) != 1 || day[0] != (DailyPlays{Day: now.Truncate(24 * time.Hour), Plays: 3, Listeners: 2, MSPlayed: 30_000 + 29_999 + 40_000 + 40_000}) {
			t.Errorf("daily rollup of song 3 = %+v, %v", day, err)
		}
		if day, _ := s.SongDailyPlays(ctx, songs[1].ID, now.Add(-48*time.Hour), now); len(day) != 1 || day[0].Plays != 1 || !day[0].Day.Equal(now.Add(-25*time.Hour).Truncate(24*time.Hour)) {
			t.Errorf("daily rollup of song 1 = %+v", day)
		}
		// Play counts count listeners per song and day: ann's two counted
		// plays of song 3 today are one.
		if st, _ := s.ArtistStats(ctx, band.ID); st.Plays != 4 {
			t.Errorf("artist plays = %d, want 4", st.Plays)
		}
		if so, _ := s.SongByID(ctx, songs[3].ID); so.Popularity != 2 {
			t.Errorf("song popularity = %d, want 2", so.Popularity)
		}
		recent, total, err := s.RecentlyPlayed(ctx, ann.ID, 10, 0)
		if err != nil || total != 4 || len(recent) != 4 {
			t.Fatalf("recently played = %+v, %d, %v", recent, total, err)
		}
		var order []int64
		for _, r := range recent {
			order = append(order, r.Song.ID)
		}
		if want := []int64{songs[0].ID, songs[3].ID, songs[3].ID, songs[1].ID}; !slices.Equal(order, want) || !recent[0].PlayedAt.Equal(now.Add(-time.Minute)) {
			t.Errorf("recently played order %v, want %v (%v)", order, want, recent[0].PlayedAt)
		}
		var unknown *UnknownSongsError
		if _, err := s.RecordEvents(ctx, ann.ID, []PlayEvent{ev("x1", 0, 40_000, 0), {EventID: "x2", SongID: 424242, StartedAt: now, MSPlayed: 40_000, Source: SourceAlbum}}); !errors.As(err, &unknown) || !slices.Equal(unknown.IDs, []int64{424242}) {
			t.Errorf("unknown song = %v", err)
		}
		if _, total, _ := s.RecentlyPlayed(ctx, ann.ID, 10, 0); total != 4 {
			t.Errorf("a refused batch recorded plays: %d", total)
		}
	})
}

// TestTrendingFromEvents seeds an event history and reads trending: fresh
// plays beat more but older ones, per genre too.
func TestTrendingFromEvents(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		_, _, songs := librarySongs(t, s, 4) // rock: 0, 2; jazz: 1, 3
		now := clock.Now()
		// Listeners: enough users to spread the plays.
		var users []User
		for i := range 12 {
			u, err := s.CreateUser(ctx, NewUser{Email: fmt.Sprintf("u%d@example.com", i), PasswordHash: "h", DisplayName: "U"})
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u)
		}
		play := func(song, n int, ago time.Duration) {
			for i := range n {
				u := users[i%len(users)]
				if _, err := s.RecordEvents(ctx, u.ID, []PlayEvent{{EventID: fmt.Sprintf("%d-%d-%d", song, ago, i), SongID: songs[song].ID,
					StartedAt: now.Add(-ago), MSPlayed: songs[song].DurationMS, Source: SourceSearch, Completed: true}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		play(0, 12, 96*time.Hour) // 12 plays four days ago: weight 12/16
		play(2, 3, time.Hour)     // 3 plays an hour ago: ~3
		play(1, 5, 24*time.Hour)  // 5 a day ago: 2.5
		play(3, 2, 0)             // 2 now
		ids := func(genre string) []int64 {
			ts, err := s.Trending(ctx, now, genre, 10)
			if err != nil {
				t.Fatal(err)
			}
			var out []int64
			for _, x := range ts {
				out = append(out, x.ID)
			}
			return out
		}
		if got, want := ids(""), []int64{songs[2].ID, songs[1].ID, songs[3].ID, songs[0].ID}; !slices.Equal(got, want) {
			t.Errorf("trending = %v, want %v", got, want)
		}
		if got, want := ids("jazz"), []int64{songs[1].ID, songs[3].ID}; !slices.Equal(got, want) {
			t.Errorf("jazz trending = %v, want %v", got, want)
		}
	})
}

// TestMigrationUpgradesVersion1 applies migration 1 alone, adds a
// playlist, then opens the store: the playlist survives with version 1.
func TestMigrationUpgradesVersion1(t *testing.T) {
	run := func(t *testing.T, dsn string, driver, rawDSN string) {
		ctx := context.Background()
		ms, err := migrations(map[string]Dialect{"sqlite": SQLite, "pgx": Postgres}[driver])
		if err != nil {
			t.Fatal(err)
		}
		db, err := sql.Open(driver, rawDSN)
		if err != nil {
			t.Fatal(err)
		}
		s := openUpgraded(t, db, dsn,
			ms[0].sql,
			`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
			`INSERT INTO schema_migrations VALUES (1, 'init', 0)`,
			`INSERT INTO users (email, email_key, password_hash, display_name, created_at, updated_at) VALUES ('a@x', 'a@x', 'h', 'A', 0, 0)`,
			`INSERT INTO playlists (owner_user_id, name, name_key, search_text, created_at, updated_at) VALUES (1, 'Old', 'old', 'old', 0, 0)`,
		)
		if v, _ := s.SchemaVersion(ctx); v != ms[len(ms)-1].version {
			t.Errorf("schema version %d", v)
		}
		p, err := s.PlaylistByID(ctx, 1)
		if err != nil || p.Name != "Old" || p.Version != 1 || p.ItemCount != 0 {
			t.Errorf("upgraded playlist = %+v, %v", p, err)
		}
	}
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "old.db")
		run(t, "file:"+path, "sqlite", "file:"+path)
	})
	t.Run("postgres", func(t *testing.T) {
		dsn := storetest.PostgresDSN(t)
		run(t, dsn, "pgx", dsn)
	})
}

// TestConcurrentEvents ingests batches from several users at once over
// the same songs: the rollups add up to the counted plays.
func TestConcurrentEvents(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		_, band, songs := librarySongs(t, s, 8)
		const writers, batches, size = 4, 6, 100
		var users []int64
		for i := range writers {
			u, err := s.CreateUser(ctx, NewUser{Email: fmt.Sprintf("w%d@example.com", i), PasswordHash: "h", DisplayName: "W"})
			if err != nil {
				t.Fatal(err)
			}
			users = append(users, u.ID)
		}
		now := clock.Now()
		var wg sync.WaitGroup
		errs := make(chan error, writers*batches)
		counted := make([]int, writers)
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 9))
				for b := range batches {
					evs := make([]PlayEvent, size)
					for i := range evs {
						evs[i] = PlayEvent{EventID: fmt.Sprintf("%d-%d", b, i), SongID: songs[rng.IntN(len(songs))].ID,
							StartedAt: now.Add(-time.Duration(rng.IntN(72)) * time.Hour), MSPlayed: int64(rng.IntN(90_000)), Source: SourceOther}
					}
					res, err := s.RecordEvents(ctx, users[w], evs)
					if err != nil {
						errs <- err
						return
					}
					counted[w] += res.Counted
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		want := 0
		for _, c := range counted {
			want += c
		}
		var hourly, daily, popularity int
		mustScan := func(q string, v *int) {
			t.Helper()
			if err := s.r.QueryRowContext(ctx, q).Scan(v); err != nil {
				t.Fatal(err)
			}
		}
		mustScan(`SELECT COALESCE(SUM(plays), 0) FROM song_plays_hourly`, &hourly)
		mustScan(`SELECT COALESCE(SUM(plays), 0) FROM song_plays_daily`, &daily)
		mustScan(`SELECT COALESCE(SUM(popularity), 0) FROM songs`, &popularity)
		// Trending and play counts count listeners per song and day.
		var listeners, listenerRows int
		mustScan(`SELECT COALESCE(SUM(listeners), 0) FROM song_plays_daily`, &listeners)
		mustScan(`SELECT COUNT(*) FROM song_listeners_daily`, &listenerRows)
		st, _ := s.ArtistStats(ctx, band.ID)
		if want == 0 || daily != want || listeners == 0 || listeners != listenerRows || hourly != listeners ||
			popularity != listeners || st.Plays != int64(listeners) {
			t.Errorf("counted %d, listeners %d (%d rows); hourly %d, daily %d, popularity %d, artist %d",
				want, listeners, listenerRows, hourly, daily, popularity, st.Plays)
		}
	})
}

// TestEventsTrendMatchesRecordPlays: plays recorded as events and the
// same plays recorded through RecordPlays (the trigger path) give the
// same trending score.
func TestEventsTrendMatchesRecordPlays(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		ctx := context.Background()
		_, _, songs := librarySongs(t, s, 8)
		now := clock.Now()
		rng := rand.New(rand.NewPCG(3, 4))
		seq := 0
		// Each round one new listener plays songs 0–3 over four days at
		// distinct hours (no overlaps); RecordPlays gets the plays that
		// add a listener: the first of each (song, UTC day).
		for round := range 3 {
			u, err := s.CreateUser(ctx, NewUser{Email: fmt.Sprintf("t%d@example.com", round), PasswordHash: "h", DisplayName: "T"})
			if err != nil {
				t.Fatal(err)
			}
			var evs []PlayEvent
			var counts []PlayCount
			listened := map[[2]int64]bool{}
			for i := range 4 {
				for d := range 4 {
					ago := time.Duration(d*24+i*5+rng.IntN(5)) * time.Hour
					seq++
					at := now.Add(-ago)
					evs = append(evs, PlayEvent{EventID: fmt.Sprint(seq), SongID: songs[i].ID, StartedAt: at,
						MSPlayed: songs[i].DurationMS, Source: SourceOther})
					if k := [2]int64{int64(i), at.Unix() / 86400}; !listened[k] {
						listened[k] = true
						counts = append(counts, PlayCount{SongID: songs[4+i].ID, Hour: at, Plays: 1})
					}
				}
			}
			res, err := s.RecordEvents(ctx, u.ID, evs)
			if err != nil || res.Counted != len(evs) || len(res.Rejected) > 0 {
				t.Fatalf("round %d: %+v, %v", round, res, err)
			}
			for _, c := range counts { // one at a time: the trigger folds each
				if err := s.RecordPlays(ctx, []PlayCount{c}); err != nil {
					t.Fatal(err)
				}
			}
		}
		trend := func(id int64) (v float64, pop int64) {
			t.Helper()
			if err := s.r.QueryRowContext(ctx, `SELECT trend_log, popularity FROM songs WHERE id = $1`, id).Scan(&v, &pop); err != nil {
				t.Fatal(err)
			}
			return v, pop
		}
		for i := range 4 {
			a, ap := trend(songs[i].ID)
			b, bp := trend(songs[4+i].ID)
			if math.Abs(a-b) > 1e-9 || ap != bp || ap == 0 {
				t.Errorf("song %d: events give trend_log %v (popularity %d), RecordPlays %v (%d)", i, a, ap, b, bp)
			}
		}
	})
}

// FuzzParseSnapshotID: whatever a client sends as If-Match, a parsed
// snapshot id names exactly one version, and every version's id parses
// back to it.
func FuzzParseSnapshotID(f *testing.F) {
	for _, s := range []string{"00000001", "0000000a", "ffffffffffffffff", "7fffffffffffffff", "1", "", "0000000A", "-0000001", "00000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v := ParseSnapshotID(s)
		if v < 0 {
			t.Fatalf("ParseSnapshotID(%q) = %d", s, v)
		}
		if v > 0 && SnapshotID(v) != s {
			t.Fatalf("ParseSnapshotID(%q) = %d, whose id is %q", s, v, SnapshotID(v))
		}
		if v > 0 {
			return
		}
		// Not an id: then no version's id is s.
		if n, err := strconv.ParseInt(s, 16, 64); err == nil && n > 0 && SnapshotID(n) == s {
			t.Fatalf("%q is the id of version %d but does not parse", s, n)
		}
	})
}

// sameResult compares IngestResults.
func sameResult(a, b IngestResult) bool {
	return a.Recorded == b.Recorded && a.Duplicates == b.Duplicates && a.Counted == b.Counted &&
		slices.Equal(a.Rejected, b.Rejected)
}
