package catalogd

import (
	"regexp"
	"strings"
	"testing"
)

// TestWebPlayerServing: / and the assets index.html names are served with
// their types and cache rules, the CSP names the edge, and API paths and
// unknown paths still answer as the API does.
func TestWebPlayerServing(t *testing.T) {
	e := newEnv(t)

	index := e.get("/", "")
	wantStatus(t, index, 200, "")
	for k, want := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-cache",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := index.Header.Get(k); got != want {
			t.Errorf("GET / %s = %q, want %q", k, got, want)
		}
	}
	csp := index.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self';", "media-src 'self' blob: https://edge.example;",
		"connect-src 'self' https://edge.example;", "img-src 'self' data: https://edge.example;", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-") {
		t.Errorf("CSP %q allows unsafe sources", csp)
	}

	// Conditional GET of index.html revalidates.
	if etag := index.Header.Get("ETag"); etag == "" {
		t.Error("GET / has no ETag")
	} else {
		r := e.do(request{method: "GET", path: "/", header: map[string]string{"If-None-Match": etag}})
		wantStatus(t, r, 304, "")
	}
	head := e.do(request{method: "HEAD", path: "/"})
	wantStatus(t, head, 200, "")
	if len(head.body) != 0 {
		t.Errorf("HEAD / has a body of %d bytes", len(head.body))
	}

	assets := regexp.MustCompile(`(?:src|href)="(/assets/[^"]+)"`).FindAllStringSubmatch(string(index.body), -1)
	types := map[string]string{".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
	seen := map[string]bool{}
	for _, m := range assets {
		path := m[1]
		ext := path[strings.LastIndexByte(path, '.'):]
		seen[ext] = true
		r := e.get(path, "")
		wantStatus(t, r, 200, "")
		if got := r.Header.Get("Content-Type"); got != types[ext] {
			t.Errorf("GET %s Content-Type = %q, want %q", path, got, types[ext])
		}
		if got, want := r.Header.Get("Cache-Control"), "public, max-age=31536000, immutable"; got != want {
			t.Errorf("GET %s Cache-Control = %q, want %q", path, got, want)
		}
		if len(r.body) == 0 {
			t.Errorf("GET %s: empty body", path)
		}
		if !regexp.MustCompile(`-[0-9A-Z]{8}\.[a-z]+$`).MatchString(path) {
			t.Errorf("asset %s has no content hash in its name", path)
		}
	}
	for _, ext := range []string{".js", ".css", ".svg"} {
		if !seen[ext] {
			t.Errorf("index.html names no %s asset: %s", ext, index.body)
		}
	}

	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/assets/app-00000000.js", 404, "route_not_found"},
		{"GET", "/assets/index.html", 404, "route_not_found"},
		{"GET", "/assets/", 404, "route_not_found"},
		{"GET", "/index.html", 404, "route_not_found"},
		{"GET", "/no/such/route", 404, "route_not_found"},
		{"POST", "/", 405, "method_not_allowed"},
		{"DELETE", "/assets/x.js", 405, "method_not_allowed"},
	} {
		r := e.do(request{method: tc.method, path: tc.path})
		wantStatus(t, r, tc.status, tc.code)
	}

	// API routes keep answering JSON.
	r := e.get("/songs/trending", "")
	wantStatus(t, r, 200, "")
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("GET /songs/trending Content-Type = %q, want JSON", ct)
	}
}

func TestContentSecurityPolicyEdge(t *testing.T) {
	for _, tc := range []struct{ edge, want string }{
		{"http://127.0.0.1:8082", "media-src 'self' blob: http://127.0.0.1:8082;"},
		{"https://cdn.example/riff", "media-src 'self' blob: https://cdn.example;"},
	} {
		if got := contentSecurityPolicy(tc.edge); !strings.Contains(got, tc.want) {
			t.Errorf("contentSecurityPolicy(%q) = %q, want it to contain %q", tc.edge, got, tc.want)
		}
	}
}
