package regions

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Region is one region of the regions file.
type Region struct {
	// Name identifies the region (lower-case letters, digits, '-').
	Name string `yaml:"name"`
	// Edges are the public base URLs of the region's edges (or of the
	// load balancer in front of them) that playback URLs start with.
	Edges []string `yaml:"edges"`
	// Purge are the admin base URLs of the region's edges, which take
	// POST /purge.
	Purge []string `yaml:"purge"`
	// Blob is the URL of the region's blob store (blob.Open).
	Blob string `yaml:"blob"`
	// Countries are the ISO 3166-1 alpha-2 codes the region serves.
	Countries []string `yaml:"countries"`
	// Fallback names the regions to try, in order, when this one does
	// not have a song yet or fails.
	Fallback []string `yaml:"fallback"`
}

// file is the YAML document.
type file struct {
	Home    string   `yaml:"home"`
	Default string   `yaml:"default"`
	Regions []Region `yaml:"regions"`
}

// Set is a checked regions file. It is immutable and safe for concurrent
// use.
type Set struct {
	home, def string
	regions   []Region
	byName    map[string]int
	byCountry map[string]int
}

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	countryRE = regexp.MustCompile(`^[A-Z]{2}$`)
)

// Load reads and checks the regions file at path.
func Load(path string) (*Set, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("regions: %w", err)
	}
	s, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("regions: %s: %w", path, err)
	}
	return s, nil
}

// Parse checks a regions file's text (see the package doc).
func Parse(b []byte) (*Set, error) {
	var f file
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("not a regions file: %w", err)
	}
	return New(f.Home, f.Default, f.Regions)
}

// New checks regions as Parse does and returns their Set; home and def
// may be "" (the default is then the first region, home the default).
func New(home, def string, regions []Region) (*Set, error) {
	if len(regions) == 0 {
		return nil, errors.New("no regions")
	}
	s := &Set{byName: map[string]int{}, byCountry: map[string]int{}}
	var errs []error
	for i, r := range regions {
		r.Name = strings.TrimSpace(r.Name)
		where := fmt.Sprintf("region %d (%s)", i+1, r.Name)
		if !nameRE.MatchString(r.Name) {
			errs = append(errs, fmt.Errorf("%s: name %q: want lower-case letters, digits and '-', at most 32", where, r.Name))
		} else if _, dup := s.byName[r.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: name listed twice", where))
		}
		s.byName[r.Name] = i
		if len(r.Edges) == 0 {
			errs = append(errs, fmt.Errorf("%s: no edges (the public base URLs of playback URLs)", where))
		}
		for j, e := range r.Edges {
			c, err := baseURL(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: edges: %w", where, err))
			}
			r.Edges[j] = c
		}
		for j, e := range r.Purge {
			c, err := baseURL(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: purge: %w", where, err))
			}
			r.Purge[j] = c
		}
		if strings.TrimSpace(r.Blob) == "" {
			errs = append(errs, fmt.Errorf("%s: no blob store URL", where))
		}
		for j, c := range r.Countries {
			c = strings.ToUpper(strings.TrimSpace(c))
			r.Countries[j] = c
			if !countryRE.MatchString(c) {
				errs = append(errs, fmt.Errorf("%s: country %q: want an ISO 3166-1 alpha-2 code like SE", where, c))
				continue
			}
			if other, dup := s.byCountry[c]; dup {
				errs = append(errs, fmt.Errorf("%s: country %s is already served by region %s", where, c, regions[other].Name))
			}
			s.byCountry[c] = i
		}
		s.regions = append(s.regions, r)
	}
	for i, r := range s.regions {
		seen := map[string]bool{}
		for _, f := range r.Fallback {
			_, ok := s.byName[f]
			switch {
			case !ok:
				errs = append(errs, fmt.Errorf("region %d (%s): fallback %q: no such region", i+1, r.Name, f))
			case f == r.Name:
				errs = append(errs, fmt.Errorf("region %d (%s): fallback names the region itself", i+1, r.Name))
			case seen[f]:
				errs = append(errs, fmt.Errorf("region %d (%s): fallback %s listed twice", i+1, r.Name, f))
			}
			seen[f] = true
		}
	}
	s.def = s.regions[0].Name
	if def != "" {
		if _, ok := s.byName[def]; !ok {
			errs = append(errs, fmt.Errorf("default %q: no such region", def))
		}
		s.def = def
	}
	s.home = s.def
	if home != "" {
		if _, ok := s.byName[home]; !ok {
			errs = append(errs, fmt.Errorf("home %q: no such region", home))
		}
		s.home = home
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// baseURL checks an edge's base URL and returns it without a trailing
// slash.
func baseURL(raw string) (string, error) {
	u := strings.TrimSuffix(strings.TrimSpace(raw), "/")
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil ||
		pu.RawQuery != "" || pu.Fragment != "" || pu.Path != "" {
		return "", fmt.Errorf("%q: want http(s)://host[:port], without path, query or credentials", raw)
	}
	return u, nil
}

// Regions returns the regions in file order (copies).
func (s *Set) Regions() []Region {
	out := make([]Region, len(s.regions))
	for i, r := range s.regions {
		out[i] = s.Region(r.Name)
	}
	return out
}

// Names returns the regions' names in file order.
func (s *Set) Names() []string {
	out := make([]string, len(s.regions))
	for i, r := range s.regions {
		out[i] = r.Name
	}
	return out
}

// Region returns a copy of the region called name (the zero Region if
// there is none).
func (s *Set) Region(name string) Region {
	i, ok := s.byName[name]
	if !ok {
		return Region{}
	}
	r := s.regions[i]
	r.Edges, r.Purge = slices.Clone(r.Edges), slices.Clone(r.Purge)
	r.Countries, r.Fallback = slices.Clone(r.Countries), slices.Clone(r.Fallback)
	return r
}

// Has reports whether a region is called name.
func (s *Set) Has(name string) bool { _, ok := s.byName[name]; return ok }

// Home is the region packagers write to: every other region gets its
// published versions by replication.
func (s *Set) Home() string { return s.home }

// Default is the region of listeners nothing else places.
func (s *Set) Default() string { return s.def }

// ForCountry returns the region serving country code cc ("" if none).
func (s *Set) ForCountry(cc string) string {
	if i, ok := s.byCountry[strings.ToUpper(cc)]; ok {
		return s.regions[i].Name
	}
	return ""
}

// Order returns the regions to serve a listener of region name from, best
// first: name, its fallbacks in their order, then the other regions in
// file order. An unknown name starts with the default region.
func (s *Set) Order(name string) []string {
	if !s.Has(name) {
		name = s.def
	}
	out := make([]string, 0, len(s.regions))
	out = append(out, name)
	for _, f := range s.regions[s.byName[name]].Fallback {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	for _, r := range s.regions {
		if !slices.Contains(out, r.Name) {
			out = append(out, r.Name)
		}
	}
	return out
}

// Pick returns the region to serve from and the one to fall back to ("":
// none) for a listener of region name, given which regions hold the
// content (has): the first two regions of Order(name) that have it. When
// no region has it, the home region serves (it is where content is
// written first) with no fallback.
func (s *Set) Pick(name string, has func(region string) bool) (serve, fallback string) {
	for _, r := range s.Order(name) {
		if !has(r) {
			continue
		}
		if serve == "" {
			serve = r
			continue
		}
		return serve, r
	}
	if serve == "" {
		serve = s.home
	}
	return serve, ""
}

// Edge returns the public edge base URL of region for a listener: one of
// the region's edges, the same for the same key (a user id), so a
// listener keeps one edge and its cache.
func (s *Set) Edge(region string, key uint64) string {
	i, ok := s.byName[region]
	if !ok {
		i = s.byName[s.def]
	}
	es := s.regions[i].Edges
	return es[key%uint64(len(es))]
}

// PurgeEdges returns every region's purge endpoints, each once, in file
// order: every edge gets every purge.
func (s *Set) PurgeEdges() []string { return s.union(func(r Region) []string { return r.Purge }) }

// PublicEdges returns every region's public edge base URLs, each once
// (for a web page's Content-Security-Policy).
func (s *Set) PublicEdges() []string { return s.union(func(r Region) []string { return r.Edges }) }

// union returns the URLs of field over every region, each once, in file
// order.
func (s *Set) union(field func(Region) []string) []string {
	var out []string
	for _, r := range s.regions {
		for _, u := range field(r) {
			if !slices.Contains(out, u) {
				out = append(out, u)
			}
		}
	}
	return out
}

// ParseCIDRs parses a comma-separated list of CIDR prefixes or single
// addresses (-trusted-proxies).
func ParseCIDRs(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: want a CIDR prefix like 10.0.0.0/8 or an address", f)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
