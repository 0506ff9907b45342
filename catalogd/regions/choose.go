package regions

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Chooser picks a request's region (see the package doc). Its fields are
// read-only once in use; it is safe for concurrent use.
type Chooser struct {
	Set *Set
	// Header, when set, names the header in which the load balancer puts
	// the listener's region (a region name) or country (ISO code).
	Header string
	// Trusted are the peers whose Header is believed; from any other peer
	// the header is ignored, so a listener cannot pick a region by
	// sending it.
	Trusted []netip.Prefix
}

// How says what decided a choice.
type How string

// The sources of a choice.
const (
	ByHeader  How = "header"
	ByProfile How = "profile"
	ByDefault How = "default"
)

// Choose returns the region for r, whose caller's profile country is
// country ("" when unknown), and what decided it.
func (c *Chooser) Choose(r *http.Request, country string) (string, How) {
	if c.Header != "" && c.trusted(r.RemoteAddr) {
		if v := strings.TrimSpace(r.Header.Get(c.Header)); v != "" {
			if lv := strings.ToLower(v); c.Set.Has(lv) {
				return lv, ByHeader
			}
			if name := c.Set.ForCountry(v); name != "" {
				return name, ByHeader
			}
		}
	}
	if country != "" {
		if name := c.Set.ForCountry(country); name != "" {
			return name, ByProfile
		}
	}
	return c.Set.Default(), ByDefault
}

// NeedsCountry reports whether Choose would use a profile country for r:
// false when a trusted header already decides, so callers can skip
// looking the country up.
func (c *Chooser) NeedsCountry(r *http.Request) bool {
	if c.Header == "" || !c.trusted(r.RemoteAddr) {
		return true
	}
	v := strings.TrimSpace(r.Header.Get(c.Header))
	return v == "" || (!c.Set.Has(strings.ToLower(v)) && c.Set.ForCountry(v) == "")
}

// trusted reports whether the peer address hostport is in Trusted.
func (c *Chooser) trusted(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range c.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
