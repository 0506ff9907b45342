package blob

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	for _, key := range []string{
		"a",
		"artists/7/albums/3/songs/42/v1/aac_128.mp4",
		"originals/42/01HV8Z.flac",
		"a..b/c...d/e.",
		"with space/ünïcödé/歌",
		strings.Repeat("a", MaxSegmentLen),
		strings.Repeat("abcd/", MaxKeyLen/5) + "efgh"[:MaxKeyLen%5],
	} {
		if err := ValidateKey(key); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", key, err)
		}
	}
	for _, tc := range badKeys {
		err := ValidateKey(tc.key)
		if !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidateKey(%q) [%s] = %v, want ErrInvalidKey", tc.key, tc.why, err)
		}
	}
	// The error says why.
	for _, tc := range []struct{ key, want string }{
		{"a//b", "empty segment"},
		{"../x", `".." segment`},
		{"a\x00b", "NUL"},
		{"/a", "starts with /"},
		{"a/", "ends with /"},
		{`a\b`, "backslash"},
		{"", "empty"},
	} {
		if err := ValidateKey(tc.key); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ValidateKey(%q) = %v, want it to say %q", tc.key, err, tc.want)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"", "a", "a/", "artists/1/", "artists/1", "artists/1/albums/2/songs/3/v1/"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"/", "//", "a//", "/a/", "../", "a/./", "a/../b/", "a\\", "a\x00/", ".", ".tmp-", strings.Repeat("a", MaxKeyLen+1) + "/"} {
		if err := ValidatePrefix(p); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ValidatePrefix(%q) = %v, want ErrInvalidKey", p, err)
		}
	}
}

func TestContentTypeFor(t *testing.T) {
	for _, tc := range []struct{ key, want string }{
		{"v1/master.m3u8", "application/vnd.apple.mpegurl"},
		{"v1/manifest.mpd", "application/dash+xml"},
		{"v1/aac_128.mp4", "audio/mp4"},
		{"v1/seg.m4s", "audio/mp4"},
		{"x.m4a", "audio/mp4"},
		{"v1/ogg_64.ogg", "audio/ogg"},
		{"x.oga", "audio/ogg"},
		{"x.mp3", "audio/mpeg"},
		{"x.flac", "audio/flac"},
		{"x.wav", "audio/wav"},
		{"x.json", "application/json"},
		{"cover.jpg", "image/jpeg"},
		{"cover.PNG", "image/png"},
		{"x.jpeg", "application/octet-stream"},
		{"noext", "application/octet-stream"},
		{"dir.mp4/noext", "application/octet-stream"},
		{"", "application/octet-stream"},
	} {
		if got := ContentTypeFor(tc.key); got != tc.want {
			t.Errorf("ContentTypeFor(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	for _, raw := range []string{
		filepath.Join(dir, "plain"),
		"file://" + filepath.ToSlash(filepath.Join(dir, "url")),
		"file://localhost" + filepath.ToSlash(filepath.Join(dir, "url2")),
	} {
		s, err := Open(t.Context(), raw)
		if err != nil {
			t.Errorf("Open(%q) error: %v", raw, err)
			continue
		}
		if fs, ok := s.(*FS); !ok {
			t.Errorf("Open(%q) = %T, want *FS", raw, s)
		} else {
			fs.Close()
		}
	}
	t.Chdir(dir)
	if s, err := Open(t.Context(), "relative/blobs"); err != nil {
		t.Errorf("Open(relative path) error: %v", err)
	} else if got, want := s.(*FS).Dir(), filepath.Join(dir, "relative", "blobs"); got != want {
		t.Errorf("Open(relative path).Dir() = %q, want %q", got, want)
	}

	newFakeS3(t) // isolates the AWS environment
	s, err := Open(t.Context(), "s3://riff-media?region=eu-west-1&endpoint=http://127.0.0.1:9000&path_style=true&part_size=16777216")
	if err != nil {
		t.Fatalf("Open(s3 URL) error: %v", err)
	}
	if s3s, ok := s.(*S3); !ok || s3s.Bucket() != "riff-media" {
		t.Errorf("Open(s3 URL) = %T %+v, want *S3 for riff-media", s, s)
	} else {
		o := s3s.client.Options()
		if o.Region != "eu-west-1" || deref(o.BaseEndpoint) != "http://127.0.0.1:9000" || !o.UsePathStyle || s3s.uploader.PartSize != 16<<20 {
			t.Errorf("Open(s3 URL) options: region %q, endpoint %q, path style %v, part size %d",
				o.Region, deref(o.BaseEndpoint), o.UsePathStyle, s3s.uploader.PartSize)
		}
	}

	for _, tc := range []struct{ raw, want string }{
		{"", "empty"},
		{"gs://bucket", `unknown scheme "gs"`},
		{"s3://", "no bucket"},
		{"s3://bucket/prefix", "prefix"},
		{"s3://bucket:9000", "endpoint"},
		{"s3://bucket?regoin=x", `unknown parameter "regoin"`},
		{"s3://bucket?path_style=maybe", `path_style "maybe"`},
		{"s3://bucket?endpoint=127.0.0.1:9000", "endpoint"},
		{"s3://bucket?part_size=-1", "part_size"},
		{"s3://bucket?part_size=1024", "part size"},
		{"s3://bucket?region=a&region=b", `"region" given 2 times`},
		{"s3://key:secret@bucket", "credentials"},
		{"file://host/path", "file:///"},
		{"file:relative", "absolute"},
		{"file:///tmp/x?y=1", "no parameters"},
		{"s3://bu cket", "bu cket"},
	} {
		s, err := Open(t.Context(), tc.raw)
		if err == nil {
			t.Errorf("Open(%q) = %T, want an error", tc.raw, s)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) error = %v, want it to mention %q", tc.raw, err, tc.want)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Errorf("Open(%q) error = %v leaks the credentials", tc.raw, err)
		}
	}
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
