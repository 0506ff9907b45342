package blobkey

import (
	"errors"
	"testing"
)

func TestUnescape(t *testing.T) {
	all := func(byte) bool { return true }
	noSlash := func(c byte) bool { return c != '/' }
	tests := []struct {
		in    string
		allow func(byte) bool
		want  string
		ok    bool
	}{
		{"artists/1/a.mp4", all, "artists/1/a.mp4", true},
		{"%61rtists/%7E", all, "artists/~", true},
		{"a%2Fb", all, "a/b", true},
		{"a%2fb", noSlash, "", false},
		{"a%2", all, "", false},
		{"a%", all, "", false},
		{"a%zz", all, "", false},
		{"%41%42", all, "AB", true},
		{"", all, "", true},
	}
	for _, tt := range tests {
		got, ok := Unescape(nil, []byte(tt.in), tt.allow)
		if ok != tt.ok || string(got) != tt.want {
			t.Errorf("Unescape(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}

func TestValidate(t *testing.T) {
	for _, bad := range []string{"", "/a", "a/", "a//b", "a/./b", "a/../b", "a/.hidden", "a\\b", "a\x00b"} {
		if err := Validate(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	if err := Validate("artists/1/albums/2/songs/3/v1/aac_128.mp4"); err != nil {
		t.Errorf("Validate(good key) = %v", err)
	}
}
