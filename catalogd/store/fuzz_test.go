package store

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzSearchQuery checks the query folding and escaping that stand between
// user input and FTS5/tsquery syntax: whatever the input, the words are
// plain letters and digits, the FTS5 expression is accepted by SQLite (no
// syntax errors, no operators smuggled in), the tsquery expression has the
// expected shape, and searching never fails.
func FuzzSearchQuery(f *testing.F) {
	for _, s := range []string{"", "acdc", "AC/DC", "Beyoncé", `"`, `*`, `NEAR(`, `NEAR(a b)`, `'; DROP TABLE songs; --`, `-`, `:`,
		`title:x`, `a OR b`, `a AND NOT b`, `^x`, `x*`, `"a" "b"`, `{a b}: c`, "a\x00b", "\xff\xfe", "ǅungla", "ﬁre", "Ⅻ", "東京 夜",
		"\u0301", "a\u200bb", strings.Repeat("ab ", 50), "x\"\"y", "''", `\`, "%_"} {
		f.Add(s)
	}
	s, err := Open(context.Background(), "file:"+filepath.Join(f.TempDir(), "fuzz.db"), Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Seed(ctx, SeedOptions{Songs: 200, Seed: 3, TrendingSongs: -1}); err != nil {
		f.Fatal(err)
	}
	tsq := regexp.MustCompile(`^'[\p{L}\p{N}]+'(:A)?( & '[\p{L}\p{N}]+'(:A)?)*(:\*A?)?$`)
	f.Fuzz(func(t *testing.T, in string) {
		q := ParseQuery(in)
		if len(q.Words) > MaxQueryWords || q.Key != strings.Join(q.Words, " ") {
			t.Fatalf("ParseQuery(%q) = %+v", in, q)
		}
		for _, w := range q.Words {
			if w == "" || !utf8.ValidString(w) {
				t.Fatalf("ParseQuery(%q): bad word %q", in, w)
			}
			for _, r := range w {
				if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
					t.Fatalf("ParseQuery(%q): word %q has %q", in, w, r)
				}
			}
		}
		if q.Empty() {
			return
		}
		for _, ts := range []string{q.TSQuery(), q.TSQueryWeighted("A")} {
			if !tsq.MatchString(ts) {
				t.Fatalf("TSQuery(%q) = %q", in, ts)
			}
		}
		all, names := s.matchers(songSearch, q)
		for _, m := range []matcher{all, names, all.except(names)} {
			if _, err := s.countMatches(ctx, songSearch, m); err != nil {
				t.Fatalf("FTS5 rejects %+v (from %q): %v", m, in, err)
			}
		}
		if _, err := s.SearchSongs(ctx, q, 5, 0); err != nil {
			t.Fatalf("SearchSongs(%q): %v", in, err)
		}
		if _, err := s.SearchArtists(ctx, q, 5, 0); err != nil {
			t.Fatalf("SearchArtists(%q): %v", in, err)
		}
	})
}

func TestFold(t *testing.T) {
	for _, tc := range []struct{ in, key, text string }{
		{"AC/DC", "acdc", "acdc ac dc"},
		{"Beyoncé", "beyonce", "beyonce"},
		{"  Sigur   Rós ", "sigur ros", "sigur ros"},
		{"Guns N' Roses", "guns n roses", "guns n roses"},
		{"Jay-Z", "jayz", "jayz jay z"},
		{"will.i.am", "william", "william will i am"},
		{"Don't Stop Me Now", "dont stop me now", "dont don t stop me now"},
		{"Motörhead", "motorhead", "motorhead"},
		{"Straße", "strasse", "strasse"},
		{"Ægir Øster", "aegir oster", "aegir oster"},
		{"ﬁre", "fire", "fire"},
		{"P!nk", "pnk", "pnk p nk"},
		{"Ke$ha", "keha", "keha ke ha"},
		{"Earth, Wind & Fire", "earth wind fire", "earth wind fire"},
		{"東京 夜", "東京 夜", "東京 夜"},
		{"!!!", "", ""},
		{"", "", ""},
	} {
		if got := Fold(tc.in); got.Key != tc.key || got.Text != tc.text {
			t.Errorf("Fold(%q) = %q / %q, want %q / %q", tc.in, got.Key, got.Text, tc.key, tc.text)
		}
	}
}

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		in, fts, ts string
		short       bool
	}{
		{"Bohemian Rhap", `"bohemian" "rhap"*`, `'bohemian' & 'rhap':*`, false},
		{"queen bo", `"queen" "bo"*`, `'queen' & 'bo':*`, false},
		{"queen ", `"queen"`, `'queen'`, false},
		{"AC/DC", `"acdc"*`, `'acdc':*`, false},
		{`NEAR("a" b) OR c*`, `"near" "a" "b" "or" "c"*`, `'near' & 'a' & 'b' & 'or' & 'c':*`, false},
		{"u2", `"u2"*`, `'u2':*`, true},
		{"é", `"e"*`, `'e':*`, true},
	} {
		q := ParseQuery(tc.in)
		if q.FTS5() != tc.fts || q.TSQuery() != tc.ts || q.Short() != tc.short {
			t.Errorf("ParseQuery(%q) = %q, %q, short %v; want %q, %q, %v", tc.in, q.FTS5(), q.TSQuery(), q.Short(), tc.fts, tc.ts, tc.short)
		}
	}
}
