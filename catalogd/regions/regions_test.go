package regions

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const example = `
home: eu
default: na
regions:
  - name: eu
    edges: [https://eu1.example.com/, https://eu2.example.com]
    purge: [http://10.1.0.5:9082]
    blob: s3://riff-eu?region=eu-west-1
    countries: [se, DE]
    fallback: [na]
  - name: na
    edges: [https://na.example.com]
    purge: [http://10.2.0.5:9082, http://10.1.0.5:9082]
    blob: /srv/na
    countries: [US, CA]
  - name: apac
    edges: [https://apac.example.com]
    blob: /srv/apac
    countries: [JP]
    fallback: [na, eu]
`

func TestParse(t *testing.T) {
	s, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	if s.Home() != "eu" || s.Default() != "na" {
		t.Errorf("home, default = %s, %s, want eu, na", s.Home(), s.Default())
	}
	if got := s.Region("eu").Edges; !slices.Equal(got, []string{"https://eu1.example.com", "https://eu2.example.com"}) {
		t.Errorf("eu edges = %v", got)
	}
	if got := s.ForCountry("se"); got != "eu" {
		t.Errorf("ForCountry(se) = %q, want eu", got)
	}
	if got := s.ForCountry("BR"); got != "" {
		t.Errorf("ForCountry(BR) = %q, want none", got)
	}
	for _, c := range []struct {
		name string
		want []string
	}{
		{"eu", []string{"eu", "na", "apac"}},
		{"na", []string{"na", "eu", "apac"}},
		{"apac", []string{"apac", "na", "eu"}},
		{"nowhere", []string{"na", "eu", "apac"}},
	} {
		if got := s.Order(c.name); !slices.Equal(got, c.want) {
			t.Errorf("Order(%s) = %v, want %v", c.name, got, c.want)
		}
	}
	if got, want := s.PurgeEdges(), []string{"http://10.1.0.5:9082", "http://10.2.0.5:9082"}; !slices.Equal(got, want) {
		t.Errorf("PurgeEdges = %v, want %v", got, want)
	}
	if a, b := s.Edge("eu", 7), s.Edge("eu", 7); a != b {
		t.Errorf("Edge not stable: %s, %s", a, b)
	}
	if s.Edge("eu", 0) == s.Edge("eu", 1) {
		t.Errorf("Edge spreads nothing over two edges")
	}
	// Region returns a copy.
	r := s.Region("eu")
	r.Edges[0] = "mutated"
	if s.Region("eu").Edges[0] == "mutated" {
		t.Error("Region shares its slices with the Set")
	}
}

func TestPick(t *testing.T) {
	s, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	in := func(names ...string) func(string) bool {
		return func(r string) bool { return slices.Contains(names, r) }
	}
	for _, c := range []struct {
		listener     string
		has          []string
		serve, fback string
	}{
		{"na", []string{"eu", "na", "apac"}, "na", "eu"},
		{"na", []string{"eu"}, "eu", ""},               // only home has it yet: served from there, never a 404
		{"apac", []string{"eu", "apac"}, "apac", "eu"}, // na skipped: it does not have it
		{"apac", nil, "eu", ""},                        // nothing marked: home
	} {
		serve, fb := s.Pick(c.listener, in(c.has...))
		if serve != c.serve || fb != c.fback {
			t.Errorf("Pick(%s, has %v) = %s, %s; want %s, %s", c.listener, c.has, serve, fb, c.serve, c.fback)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{"regions: []", "no regions"},
		{"regions:\n  - name: EU\n    edges: [http://a]\n    blob: x", "name \"EU\""},
		{"regions:\n  - name: eu\n    blob: x", "no edges"},
		{"regions:\n  - name: eu\n    edges: [ftp://a]\n    blob: x", "want http(s)"},
		{"regions:\n  - name: eu\n    edges: [http://a/path]\n    blob: x", "without path"},
		{"regions:\n  - name: eu\n    edges: [http://a]\n    purge: [http://u:p@a]\n    blob: x", "credentials"},
		{"regions:\n  - name: eu\n    edges: [http://a]", "no blob store"},
		{"regions:\n  - name: eu\n    edges: [http://a]\n    blob: x\n    countries: [SWE]", "alpha-2"},
		{"regions:\n  - name: eu\n    edges: [http://a]\n    blob: x\n    countries: [SE]\n  - name: na\n    edges: [http://b]\n    blob: y\n    countries: [SE]", "already served by region eu"},
		{"regions:\n  - name: eu\n    edges: [http://a]\n    blob: x\n    fallback: [mars]", "no such region"},
		{"regions:\n  - name: eu\n    edges: [http://a]\n    blob: x\n    fallback: [eu]", "the region itself"},
		{"regions:\n  - name: eu\n    edges: [http://a]\n    blob: x\n  - name: eu\n    edges: [http://b]\n    blob: y", "listed twice"},
		{"default: mars\nregions:\n  - name: eu\n    edges: [http://a]\n    blob: x", "default \"mars\""},
		{"home: mars\nregions:\n  - name: eu\n    edges: [http://a]\n    blob: x", "home \"mars\""},
		{"regions:\n  - name: eu\n    edge: [http://a]\n    blob: x", "not a regions file"},
	} {
		_, err := Parse([]byte(c.doc))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", c.doc, err, c.want)
		}
	}
}

func TestLoadExampleConfig(t *testing.T) {
	path := filepath.Join("..", "..", "configs", "regions.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Skip("no configs/regions.yaml")
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("configs/regions.yaml: %v", err)
	}
}

func TestChoose(t *testing.T) {
	s, err := Parse([]byte(example))
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := ParseCIDRs("10.0.0.0/8, 127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	c := &Chooser{Set: s, Header: "X-Riff-Region", Trusted: trusted}
	for _, tc := range []struct {
		peer, header, country string
		want                  string
		how                   How
	}{
		{"10.1.2.3:5000", "apac", "SE", "apac", ByHeader},
		{"10.1.2.3:5000", "JP", "SE", "apac", ByHeader},      // a country in the header
		{"[::ffff:10.1.2.3]:5000", "eu", "", "eu", ByHeader}, // v4-mapped peer
		{"192.0.2.1:5000", "apac", "SE", "eu", ByProfile},    // untrusted peer: header ignored
		{"127.0.0.1:5000", "mars", "US", "na", ByProfile},    // unknown value: ignored
		{"192.0.2.1:5000", "", "BR", "na", ByDefault},        // country no region serves
		{"192.0.2.1:5000", "", "", "na", ByDefault},
	} {
		r := httptest.NewRequest("GET", "/songs/1", nil)
		r.RemoteAddr = tc.peer
		if tc.header != "" {
			r.Header.Set("X-Riff-Region", tc.header)
		}
		got, how := c.Choose(r, tc.country)
		if got != tc.want || how != tc.how {
			t.Errorf("Choose(peer %s, header %q, country %q) = %s by %s, want %s by %s", tc.peer, tc.header, tc.country, got, how, tc.want, tc.how)
		}
		if need := c.NeedsCountry(r); need != (tc.how != ByHeader) {
			t.Errorf("NeedsCountry(peer %s, header %q) = %v", tc.peer, tc.header, need)
		}
	}
	if _, err := ParseCIDRs("10.0.0.0/8,nonsense"); err == nil {
		t.Error("ParseCIDRs accepted nonsense")
	}
}
