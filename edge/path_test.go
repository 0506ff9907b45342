package edge

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"riff/internal/blob"
	"riff/internal/blobkey"
)

func TestSplitPath(t *testing.T) {
	tests := []struct {
		in          string
		token, rest string
		ok          bool
	}{
		{"/t/abc.def.ghi/artists/1/x.mp4", "abc.def.ghi", "artists/1/x.mp4", true},
		{"/t/tok/a", "tok", "a", true},
		{"/t/tok/", "", "", false},
		{"/t//artists/1/x.mp4", "", "artists/1/x.mp4", true},
		{"/t/tok", "", "", false},
		{"/t/", "", "", false},
		{"/x/tok/artists/1", "", "", false},
		{"t/tok/artists/1", "", "", false},
		{"", "", "", false},
		{"/T/tok/artists/1", "", "", false},
	}
	for _, tt := range tests {
		token, rest, ok := splitPath([]byte(tt.in))
		if ok != tt.ok || string(token) != tt.token || string(rest) != tt.rest {
			t.Errorf("splitPath(%q) = %q, %q, %v; want %q, %q, %v", tt.in, token, rest, ok, tt.token, tt.rest, tt.ok)
		}
	}
}

func TestCleanKey(t *testing.T) {
	const song = "artists/1/albums/2/songs/3/v1/"
	tests := []struct {
		raw  string
		want string // "" means refused
	}{
		{song + "aac_128.mp4", song + "aac_128.mp4"},
		{song + "master.m3u8", song + "master.m3u8"},
		{"artists/a-b_c~d/x.ogg", "artists/a-b_c~d/x.ogg"},
		{"artists/%31/albums/2/x.mp4", "artists/1/albums/2/x.mp4"}, // an escaped unreserved char is that char
		{"%61rtists/1/x.mp4", "artists/1/x.mp4"},
		{"artists/1/x%2Emp4", "artists/1/x.mp4"},
		// traversal, in every spelling
		{"artists/1/../../originals/1/x.wav", ""},
		{"artists/1/./x.mp4", ""},
		{"artists/1/%2e%2e/%2e%2e/originals/x", ""},
		{"artists/1/%2E%2E/x", ""},
		{"artists/1/.%2e/x", ""},
		{"artists/1/%252e%252e/x", ""}, // decoded once: "%2e%2e" contains '%'
		{"artists/1%2F..%2Foriginals/x", ""},
		{"artists/1%2f../x", ""},
		{"artists/1/..%5Cx", ""},
		{"artists\\1\\x", ""},
		{"artists/1/x%00.mp4", ""},
		{"artists/1/x\x00.mp4", ""},
		{"artists/1/.hidden", ""},
		{"artists/1/.", ""},
		{"artists/1/..", ""},
		// empty segments
		{"artists//1/x.mp4", ""},
		{"artists/1/x.mp4/", ""},
		{"/artists/1/x.mp4", ""},
		{"artists/1/x.mp4%2F", ""},
		// not under artists/, or not unreserved
		{"originals/1/x.wav", ""},
		{"artists", ""},
		{"artists/", ""},
		{"artistsx/1", ""},
		{"artists/1/a b.mp4", ""},
		{"artists/1/a%20b.mp4", ""},
		{"artists/1/%C3%A9.mp4", ""},
		{"artists/1/é.mp4", ""},
		{"artists/1/x%", ""},
		{"artists/1/x%4", ""},
		{"artists/1/x%zz", ""},
		{"artists/1/x?y", ""},
		{"artists/1/x;y", ""},
		{"artists/1/" + strings.Repeat("a", 256), ""},
		{"artists/" + strings.Repeat("a/", 600) + "x", ""},
	}
	for _, tt := range tests {
		got, ok := cleanKey(nil, []byte(tt.raw))
		if tt.want == "" {
			if ok {
				t.Errorf("cleanKey(%q) = %q, want refused", tt.raw, got)
			}
			continue
		}
		if !ok || string(got) != tt.want {
			t.Errorf("cleanKey(%q) = %q, %v; want %q", tt.raw, got, ok, tt.want)
		}
	}
}

// checkCleanKey asserts what every accepted key must satisfy.
func checkCleanKey(t *testing.T, raw []byte) {
	key, ok := cleanKey(nil, raw)
	if !ok {
		return
	}
	s := string(key)
	if err := blob.ValidateKey(s); err != nil {
		t.Fatalf("cleanKey(%q) = %q, which ValidateKey refuses: %v", raw, s, err)
	}
	if !strings.HasPrefix(s, blobkey.Root) {
		t.Fatalf("cleanKey(%q) = %q, not under %s", raw, s, blobkey.Root)
	}
	for seg := range strings.SplitSeq(s, "/") {
		if seg == "" || seg == "." || seg == ".." || seg[0] == '.' {
			t.Fatalf("cleanKey(%q) = %q has segment %q", raw, s, seg)
		}
	}
	for _, c := range key {
		if c != '/' && !unreserved(c) {
			t.Fatalf("cleanKey(%q) = %q has byte %q", raw, s, c)
		}
	}
	// Decoding once more changes nothing: the key has one spelling.
	if again, err := url.PathUnescape(s); err != nil || again != s {
		t.Fatalf("cleanKey(%q) = %q decodes again to %q", raw, s, again)
	}
	// The key is the raw path decoded exactly once, and the raw path had
	// no encoded slash.
	if dec, err := url.PathUnescape(string(raw)); err != nil || dec != s {
		t.Fatalf("cleanKey(%q) = %q, but one decoding gives %q (%v)", raw, s, dec, err)
	}
	if bytes.Contains(bytes.ToLower(raw), []byte("%2f")) {
		t.Fatalf("cleanKey(%q) accepted an encoded slash", raw)
	}
}

func FuzzCleanKey(f *testing.F) {
	for _, s := range []string{
		"artists/1/albums/2/songs/3/v1/aac_128.mp4", "artists/1/../x", "artists/%2e%2e/x",
		"artists/1%2F2", "artists/%31/x", "artists//x", "artists/1/x%", "artists/1/%252e",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkCleanKey)
}

func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{
		"/t/eyJhbGciOiJFZERTQSJ9.e30.sig/artists/1/albums/2/songs/3/v1/master.m3u8",
		"/t//x", "/t/x/", "/t/a/b/c", "/t/a%2Fb/artists/1/x", "//t/a/b",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		token, rawKey, ok := splitPath(p)
		if !ok {
			return
		}
		if bytes.IndexByte(token, '/') >= 0 || len(rawKey) == 0 {
			t.Fatalf("splitPath(%q) = %q, %q", p, token, rawKey)
		}
		if want := "/t/" + string(token) + "/" + string(rawKey); want != string(p) {
			t.Fatalf("splitPath(%q) lost bytes: %q", p, want)
		}
		checkCleanKey(t, rawKey)
	})
}
