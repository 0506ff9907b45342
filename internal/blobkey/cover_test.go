package blobkey

import (
	"strings"
	"testing"
)

const testHash = "0123456789abcdef0123456789abcdef"

func TestCoverKeys(t *testing.T) {
	if got, want := CoverFolder(1, 2, testHash), "artists/1/albums/2/covers/"+testHash+"/"; got != want {
		t.Errorf("CoverFolder = %q, want %q", got, want)
	}
	key := CoverKey(1, 2, testHash, 300)
	if want := "artists/1/albums/2/covers/" + testHash + "/300.jpg"; key != want {
		t.Errorf("CoverKey = %q, want %q", key, want)
	}
	if err := Validate(key); err != nil {
		t.Errorf("Validate(%q) = %v", key, err)
	}
	path := CoverPath(1, 2, testHash, 300)
	if want := "/covers/1/2/" + testHash + "/300.jpg"; path != want {
		t.Errorf("CoverPath = %q, want %q", path, want)
	}
	if got, ok := CoverKeyOfPath(nil, path); !ok || string(got) != key {
		t.Errorf("CoverKeyOfPath(%q) = %q, %v; want %q", path, got, ok, key)
	}
	// The cover folder is a purge unit of its own, and the album folder
	// covers it too.
	folder := CoverFolder(1, 2, testHash)
	if got, ok := PurgeFolder(folder); !ok || got != folder {
		t.Errorf("PurgeFolder(%q) = %q, %v", folder, got, ok)
	}
	if ends := PurgeFolders(key); key[:ends[1]] != AlbumFolder(1, 2) || key[:ends[2]] != folder {
		t.Errorf("PurgeFolders(%q) = %v", key, ends)
	}
}

func TestCoverKeyOfPathRefuses(t *testing.T) {
	for _, p := range []string{
		"/covers/",
		"/covers/1/2/" + testHash,
		"/covers/1/2/" + testHash + "/",
		"/covers/1/2/" + testHash + "/301.jpg",
		"/covers/1/2/" + testHash + "/300.png",
		"/covers/1/2/" + testHash + "/300.jpg/x",
		"/covers/1/2/" + testHash + "/0300.jpg",
		"/covers/01/2/" + testHash + "/300.jpg",
		"/covers/0/2/" + testHash + "/300.jpg",
		"/covers/1/2/" + strings.ToUpper(testHash) + "/300.jpg",
		"/covers/1/2/" + testHash[1:] + "/300.jpg",
		"/covers/1/2/../" + testHash + "/300.jpg",
		"/covers/1/%32/" + testHash + "/300.jpg",
		"/covers//1/2/" + testHash + "/300.jpg",
		"/covers/1/2/" + testHash + "/300.jpg?x",
		"/t/x/artists/1/albums/2/covers/" + testHash + "/300.jpg",
		"/covers/-1/2/" + testHash + "/300.jpg",
		"/covers/1/2/" + testHash + "/.jpg",
	} {
		if got, ok := CoverKeyOfPath(nil, []byte(p)); ok {
			t.Errorf("CoverKeyOfPath(%q) = %q, true; want false", p, got)
		}
	}
}

func TestCoverKeyOfPathAllocs(t *testing.T) {
	p := []byte(CoverPath(12, 34, testHash, 640))
	dst := make([]byte, 0, 128)
	if n := testing.AllocsPerRun(100, func() { CoverKeyOfPath(dst, p) }); n != 0 {
		t.Errorf("CoverKeyOfPath allocates %v times, want 0", n)
	}
}

// FuzzCoverKeyOfPath checks that every accepted path maps to a valid key
// inside a cover folder, which CoverPath spells back the same way.
func FuzzCoverKeyOfPath(f *testing.F) {
	f.Add("/covers/1/2/" + testHash + "/64.jpg")
	f.Add("/covers/1/2/../300.jpg")
	f.Fuzz(func(t *testing.T, p string) {
		key, ok := CoverKeyOfPath(nil, p)
		if !ok {
			return
		}
		if err := Validate(string(key)); err != nil {
			t.Fatalf("CoverKeyOfPath(%q) = %q: %v", p, key, err)
		}
		if !strings.Contains(string(key), "/covers/") || KindOf(key) != KindMedia {
			t.Fatalf("CoverKeyOfPath(%q) = %q: not a cover key", p, key)
		}
	})
}
