package blobkey

import (
	"strings"
	"testing"
)

func TestFolders(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{ArtistFolder(1), "artists/1/"},
		{AlbumFolder(1, 2), "artists/1/albums/2/"},
		{SongFolder(1, 2, 3), "artists/1/albums/2/songs/3/"},
		{VersionFolder(1, 2, 3, 4), "artists/1/albums/2/songs/3/v4/"},
		{VersionFolder(9223372036854775807, 20, 300, 12), "artists/9223372036854775807/albums/20/songs/300/v12/"},
		{Original(3, 17, "flac"), "originals/3/17.flac"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
	for _, f := range []string{ArtistFolder(1), AlbumFolder(1, 2), SongFolder(1, 2, 3)} {
		if !IsPurgeFolder(f) {
			t.Errorf("IsPurgeFolder(%q) = false, want true", f)
		}
		if got, ok := PurgeFolder(f); !ok || got != f {
			t.Errorf("PurgeFolder(%q) = %q, %v; want it unchanged", f, got, ok)
		}
	}
	if f := VersionFolder(1, 2, 3, 4); IsPurgeFolder(f) {
		t.Errorf("IsPurgeFolder(%q) = true: a version folder carries no generation", f)
	}
}

func TestRenditionNames(t *testing.T) {
	tests := []struct {
		r                     Rendition
		name, media, playlist string
	}{
		{Rendition{FormatAAC, 64}, "aac_64", "aac_64.mp4", "aac_64.m3u8"},
		{Rendition{FormatAAC, 320}, "aac_320", "aac_320.mp4", "aac_320.m3u8"},
		{Rendition{FormatOgg, 128}, "ogg_128", "ogg_128.ogg", "ogg_128.m3u8"},
	}
	for _, tt := range tests {
		if got := tt.r.Name(); got != tt.name {
			t.Errorf("%v.Name() = %q, want %q", tt.r, got, tt.name)
		}
		if got := tt.r.Media(); got != tt.media {
			t.Errorf("%v.Media() = %q, want %q", tt.r, got, tt.media)
		}
		if got := tt.r.Playlist(); got != tt.playlist {
			t.Errorf("%v.Playlist() = %q, want %q", tt.r, got, tt.playlist)
		}
	}
}

func TestRungOf(t *testing.T) {
	tests := []struct {
		in   string
		want int
	}{
		{"aac_320.mp4", 320}, {"aac_64.m3u8", 64}, {"ogg_128.ogg", 128}, {"aac_128", 128},
		{"master.m3u8", 0}, {"manifest.mpd", 0}, {"aac_.mp4", 0}, {"aac_12a.mp4", 0},
		{"x_1234567.mp4", 0}, {"a_b_96.mp4", 96}, {"96.mp4", 0},
		{"artists/1/albums/2/songs/3/v1/aac_320.mp4", 320}, {"artists/a_1/x", 0}, {"", 0},
	}
	for _, tt := range tests {
		if got, gotB := RungOf(tt.in), RungOf([]byte(tt.in)); got != tt.want || gotB != tt.want {
			t.Errorf("RungOf(%q) = %d, on bytes %d; want %d", tt.in, got, gotB, tt.want)
		}
	}
}

func TestKindOf(t *testing.T) {
	const v = "artists/1/albums/2/songs/3/v1/"
	tests := []struct {
		in   string
		want Kind
	}{
		{v + "master.m3u8", KindMaster}, {"master.m3u8", KindMaster},
		{v + "aac_128.m3u8", KindPlaylist}, {v + "manifest.mpd", KindMPD}, {"x.mpd", KindMPD},
		{v + "aac_128.mp4", KindMedia}, {v + "ogg_64.ogg", KindMedia},
		{"m3u8", KindMedia}, {"a/master.m3u8/x", KindMedia}, {"xmaster.m3u8", KindPlaylist}, {"", KindMedia},
	}
	for _, tt := range tests {
		if got, gotB := KindOf(tt.in), KindOf([]byte(tt.in)); got != tt.want || gotB != tt.want {
			t.Errorf("KindOf(%q) = %d, on bytes %d; want %d", tt.in, got, gotB, tt.want)
		}
	}
}

func TestPurgeFolders(t *testing.T) {
	tests := []struct {
		in   string
		want [3]string
	}{
		{"artists/1/albums/2/songs/3/v1/aac_128.mp4", [3]string{"artists/1/", "artists/1/albums/2/", "artists/1/albums/2/songs/3/"}},
		{"artists/1/albums/2/songs/3/", [3]string{"artists/1/", "artists/1/albums/2/", "artists/1/albums/2/songs/3/"}},
		{"artists/1/albums/2/x.mp4", [3]string{"artists/1/", "artists/1/albums/2/", ""}},
		{"artists/1/x", [3]string{"artists/1/", "", ""}},
		{"artists/1", [3]string{"", "", ""}},
		{"", [3]string{"", "", ""}},
	}
	for _, tt := range tests {
		var got [3]string
		for i, n := range PurgeFolders(tt.in) {
			got[i] = tt.in[:n]
		}
		if got != tt.want {
			t.Errorf("PurgeFolders(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPurgeFolder(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means refused
	}{
		{"", Root}, {"artists", Root}, {"artists/", Root},
		{"artists/1", "artists/1/"}, {"artists/1/", "artists/1/"},
		{"artists/1/albums/2", "artists/1/albums/2/"}, {"artists/1/albums/2/songs/3/", "artists/1/albums/2/songs/3/"},
		{"artists/1/albums", ""}, {"artists/1/albums/2/songs/3/v1/", ""}, {"artists//", ""}, {"artists//1/", ""},
		{"originals/1/", ""}, {"/artists/1/", ""}, {"artists/1//", ""}, {"artists/../x/", ""}, {"artists/.x/", ""},
		{"artistsx/1/", ""}, {"artists/1/albums/2/songs/3/x/y", ""},
	}
	for _, tt := range tests {
		got, ok := PurgeFolder(tt.in)
		if ok != (tt.want != "") || got != tt.want {
			t.Errorf("PurgeFolder(%q) = %q, %v; want %q", tt.in, got, ok, tt.want)
		}
	}
	for _, in := range []string{"a/b/", "a/b/c/d/", "a/b/c/d/e/f/"} {
		if !IsPurgeFolder(in) {
			t.Errorf("IsPurgeFolder(%q) = false, want true", in)
		}
	}
	for _, in := range []string{"", "/", "a/", "a/b", "/a/b/", "a//b/", "a/b/c/", "a/b/c/d/e/f/g/h/"} {
		if IsPurgeFolder(in) {
			t.Errorf("IsPurgeFolder(%q) = true, want false", in)
		}
	}
}

// TestParseAllocs checks that the parsers the edge runs on every request
// allocate nothing, on byte slices and on strings.
func TestParseAllocs(t *testing.T) {
	key := []byte("artists/1/albums/2/songs/3/v1/aac_128.mp4")
	master := []byte("artists/1/albums/2/songs/3/v1/master.m3u8")
	skey := string(key)
	sink := 0
	allocs := testing.AllocsPerRun(100, func() {
		sink += RungOf(key) + RungOf(skey) + int(KindOf(key)) + int(KindOf(master)) + int(KindOf(skey))
		ends := PurgeFolders(key)
		sink += ends[2]
		if IsPurgeFolder("artists/1/albums/2/") {
			sink++
		}
	})
	if allocs != 0 {
		t.Errorf("RungOf, KindOf, PurgeFolders: %v allocations per run, want 0", allocs)
	}
	if sink == 0 {
		t.Fatal("sink unused")
	}
}

// FuzzRendition builds rendition names and keys and parses them back.
func FuzzRendition(f *testing.F) {
	f.Add(int64(1), int64(2), int64(3), 1, true, 128)
	f.Add(int64(7), int64(1), int64(42), 12, false, 320)
	f.Add(int64(0), int64(0), int64(0), 0, true, 0)
	f.Fuzz(func(t *testing.T, a, b, s int64, v int, aac bool, kbps int) {
		if a < 0 || b < 0 || s < 0 || v < 0 || kbps < 0 {
			t.Skip()
		}
		kbps %= 1000000 // RungOf reads at most 6 digits
		format := FormatOgg
		if aac {
			format = FormatAAC
		}
		r := Rendition{format, kbps}
		dir := VersionFolder(a, b, s, v)
		for _, name := range []string{r.Name(), r.Media(), r.Playlist()} {
			key := dir + name
			if err := Validate(key); err != nil {
				t.Fatalf("Validate(%q) = %v", key, err)
			}
			if got := RungOf(key); got != kbps {
				t.Errorf("RungOf(%q) = %d, want %d", key, got, kbps)
			}
			if got := RungOf(name); got != kbps {
				t.Errorf("RungOf(%q) = %d, want %d", name, got, kbps)
			}
		}
		if got := KindOf(dir + r.Media()); got != KindMedia {
			t.Errorf("KindOf(%q) = %d, want KindMedia", r.Media(), got)
		}
		if got := KindOf(dir + r.Playlist()); got != KindPlaylist {
			t.Errorf("KindOf(%q) = %d, want KindPlaylist", r.Playlist(), got)
		}
		if got := KindOf(dir + MasterName); got != KindMaster {
			t.Errorf("KindOf(%q) = %d, want KindMaster", MasterName, got)
		}
		if got := KindOf(dir + ManifestName); got != KindMPD {
			t.Errorf("KindOf(%q) = %d, want KindMPD", ManifestName, got)
		}
		want := [3]string{ArtistFolder(a), AlbumFolder(a, b), SongFolder(a, b, s)}
		for i, n := range PurgeFolders(dir + r.Media()) {
			if got := dir[:n]; got != want[i] {
				t.Errorf("PurgeFolders(%q)[%d] = %q, want %q", dir, i, got, want[i])
			}
			if got, ok := PurgeFolder(want[i]); !ok || got != want[i] {
				t.Errorf("PurgeFolder(%q) = %q, %v; want it unchanged", want[i], got, ok)
			}
		}
		if !strings.HasPrefix(dir, want[2]) || IsPurgeFolder(dir) {
			t.Errorf("VersionFolder = %q: not in its song folder %q, or a purge folder", dir, want[2])
		}
	})
}

// FuzzParse feeds arbitrary names to the parsers: they never panic, agree
// on strings and byte slices, and whatever RungOf reads is what a
// rendition of that rung is named.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"aac_128.mp4", "master.m3u8", "manifest.mpd", "a/b_1.ogg", "_", ".", "/", "x_0000001.mp4", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := RungOf(s)
		if rb := RungOf([]byte(s)); rb != r {
			t.Fatalf("RungOf(%q) = %d on a string, %d on bytes", s, r, rb)
		}
		if k, kb := KindOf(s), KindOf([]byte(s)); k != kb {
			t.Fatalf("KindOf(%q) = %d on a string, %d on bytes", s, k, kb)
		}
		if r < 0 || r > 999999 {
			t.Fatalf("RungOf(%q) = %d, outside 0..999999", s, r)
		}
		if r > 0 {
			if got := RungOf(Rendition{FormatAAC, r}.Media()); got != r {
				t.Fatalf("RungOf(Rendition{aac, %d}.Media()) = %d", r, got)
			}
		}
		ends := PurgeFolders(s)
		for i, n := range ends {
			if n == 0 {
				continue
			}
			if n > len(s) || s[n-1] != '/' || strings.Count(s[:n], "/") != 2*(i+1) {
				t.Fatalf("PurgeFolders(%q)[%d] = %d: not a folder of depth %d", s, i, n, 2*(i+1))
			}
		}
		if p, ok := PurgeFolder(s); ok && p != Root {
			if !IsPurgeFolder(p) || Validate(strings.TrimSuffix(p, "/")) != nil || !strings.HasPrefix(p, Root) {
				t.Fatalf("PurgeFolder(%q) = %q, not a valid purge folder", s, p)
			}
		}
	})
}
