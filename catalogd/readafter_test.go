package catalogd

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/testrun"
)

func TestRecentWrites(t *testing.T) {
	clock := testrun.NewClock()
	rw := newRecentWrites(time.Minute, clock.Now)
	if got := rw.get(1); got != 0 {
		t.Errorf("get(unknown) = %v", got)
	}
	rw.put(1, 100)
	rw.put(1, 50) // an older position never replaces a newer one
	if got := rw.get(1); got != 100 {
		t.Errorf("get = %v, want 100", got)
	}
	clock.Advance(61 * time.Second)
	if got := rw.get(1); got != 0 {
		t.Errorf("get after the TTL = %v, want 0", got)
	}
	if got := recentWritesTTL(30 * time.Second); got != 2*time.Minute {
		t.Errorf("recentWritesTTL(30s) = %v", got)
	}
}

func TestClientLSN(t *testing.T) {
	for _, c := range []struct {
		header, cookie string
		want           store.LSN
		ok             bool
	}{
		{"", "", 0, false},
		{"0/10", "", 0x10, true},
		{"", "1/0", 1 << 32, true},
		{"0/10", "1/0", 0x10, true}, // the header wins
		{"junk", "", 0, false},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		if c.header != "" {
			r.Header.Set(readAfterHeader, c.header)
		}
		if c.cookie != "" {
			r.AddCookie(&http.Cookie{Name: readAfterCookie, Value: c.cookie})
		}
		if got, ok := clientLSN(r); got != c.want || ok != c.ok {
			t.Errorf("clientLSN(header %q, cookie %q) = %v, %v; want %v, %v", c.header, c.cookie, got, ok, c.want, c.ok)
		}
	}
}

// TestNoReplicasNoReadAfter: without replicas (here SQLite) answers carry
// no position, as before.
func TestNoReplicasNoReadAfter(t *testing.T) {
	e := newEnv(t)
	r := e.do(request{method: "POST", path: "/auth/register", body: map[string]string{
		"email": "a@example.com", "password": "long enough pw", "display_name": "A"}})
	wantStatus(t, r, http.StatusCreated, "")
	if v := r.Header.Get(readAfterHeader); v != "" {
		t.Errorf("%s = %q without replicas", readAfterHeader, v)
	}
	for _, c := range r.Cookies() {
		if c.Name == readAfterCookie {
			t.Errorf("cookie %s set without replicas", c.Name)
		}
	}
}

// TestDatabaseUnavailableProblem: a store error that says the database
// cannot be reached is 503 database_unavailable with Retry-After.
func TestDatabaseUnavailableProblem(t *testing.T) {
	e := newEnv(t)
	w := httptest.NewRecorder()
	err := fmt.Errorf("store: create playlist: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	e.srv.writeError(w, httptest.NewRequest("POST", "/playlist", nil), err)
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "5" {
		t.Errorf("status %d, Retry-After %q; want 503 and 5", w.Code, w.Header().Get("Retry-After"))
	}
	var p problem
	r := response{Response: w.Result(), body: w.Body.Bytes()}
	p = r.problem()
	if p.Code != "database_unavailable" {
		t.Errorf("code %q, want database_unavailable", p.Code)
	}
}
