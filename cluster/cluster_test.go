package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"riff/catalogd/store/storetest"
	"riff/cluster"
	"riff/internal/testrun"
)

// riffBin is the riff binary the tests run, built once per test binary.
var riffBin testrun.Fixture

func TestMain(m *testing.M) { testrun.Main(m, &riffBin) }

// riff returns the path of a riff built from this tree (./cmd/riff).
func riff(t *testing.T) string {
	t.Helper()
	dir := riffBin.Dir(t, "riff-cluster-bin", func(tmp string) (string, error) {
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		cmd := exec.Command(goBin, "build", "-o", filepath.Join(tmp, "riff"), "riff/cmd/riff")
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build ./cmd/riff: %v\n%s", err, out)
		}
		return tmp, nil
	})
	return filepath.Join(dir, "riff")
}

// haproxy returns HAProxy's path (Debian puts it in /usr/sbin).
func haproxy(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/sbin/haproxy"); err == nil {
		return "/usr/sbin/haproxy"
	}
	return testrun.RequireTool(t, "haproxy")
}

// committedConfig is configs/haproxy-lb.cfg, the file operators run.
func committedConfig(t *testing.T) []byte {
	t.Helper()
	conf, err := os.ReadFile("../configs/haproxy-lb.cfg")
	if err != nil {
		t.Fatal(err)
	}
	return conf
}

// start runs n catalogd on a fresh PostgreSQL schema behind HAProxy with
// the committed configuration; args go to every catalogd. Logs are printed
// when the test fails.
func start(t *testing.T, n int, args ...string) *cluster.Cluster {
	t.Helper()
	haproxy(t) // skips (or fails in CI) before a schema is made
	c, err := startOn(t, storetest.PostgresDSN(t), n, append([]string{"-workers", "1"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startOn is start on the database dsn.
func startOn(t *testing.T, dsn string, n int, args ...string) (*cluster.Cluster, error) {
	t.Helper()
	hp := haproxy(t)
	bin := riff(t)
	args = append([]string{"-argon2-memory", "64KiB", "-argon2-time", "1", "-shutdown-timeout", "2s"}, args...)
	c, err := cluster.Start(context.Background(), cluster.Options{Riff: bin, HAProxy: hp, Config: committedConfig(t),
		DB: dsn, Dir: t.TempDir(), Instances: n, Args: args, Ready: 90 * time.Second})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i := range n {
				t.Logf("catalogd%d log (tail):\n%s", i+1, tail(c.Log(i), 4000))
			}
			t.Logf("haproxy log (tail):\n%s", tail(c.HAProxyLog(), 6000))
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// client talks to the balancer as a player does (keep-alive, JSON).
type client struct {
	t     *testing.T
	base  string
	token string
	http  *http.Client
}

func newClient(t *testing.T, base string) *client {
	return &client{t: t, base: base, http: &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
}

// do sends a request and returns the status (0 and the error when none
// came back) and the body.
func (c *client) do(method, path string, body any, hdr map[string]string) (int, []byte, http.Header, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header, err
}

// must is do that fails the test unless the status is want; it decodes
// the answer into out (nil: ignored).
func (c *client) must(method, path string, body any, want int, out any) {
	c.t.Helper()
	code, b, _, err := c.do(method, path, body, nil)
	if err != nil || code != want {
		c.t.Fatalf("%s %s = %d %v %s, want %d", method, path, code, err, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// user registers who through the balancer and returns a logged-in client.
func user(t *testing.T, base, who string) *client {
	t.Helper()
	c := newClient(t, base)
	c.must("POST", "/auth/register", map[string]string{"email": who + "@example.com", "password": "long enough pw", "display_name": who}, 201, nil)
	var tr struct {
		AccessToken string `json:"access_token"`
	}
	c.must("POST", "/auth/login", map[string]string{"email": who + "@example.com", "password": "long enough pw"}, 200, &tr)
	c.token = tr.AccessToken
	return c
}

// counts returns instance i's riff_http_requests_total by status code, read
// from its own /metrics (not through the balancer). A dead instance reads
// as none.
func counts(t *testing.T, c *cluster.Cluster, i int) map[int]int {
	t.Helper()
	resp, err := http.Get("http://" + c.Addr(i) + "/metrics")
	if err != nil {
		return map[int]int{}
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[int]int{}
	re := regexp.MustCompile(`(?m)^riff_http_requests_total\{component="catalogd",code="(\d+)"\} (\d+)$`)
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		code, _ := strconv.Atoi(m[1])
		n, _ := strconv.Atoi(m[2])
		out[code] = n
	}
	return out
}

// metric returns the value of the sample named name (with its labels, as
// written) on instance i's /metrics, or -1.
func metric(c *cluster.Cluster, i int, name string) float64 {
	resp, err := http.Get("http://" + c.Addr(i) + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// waitState waits (up to limit) until HAProxy reports server (catalogd1,
// …) in state want, and returns how long it took.
func waitState(t *testing.T, c *cluster.Cluster, server, want string, limit time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	var last map[string]string
	for time.Since(began) < limit {
		states, err := c.ServerStates(context.Background())
		if err == nil && states[server] == want {
			return time.Since(began)
		}
		last = states
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("haproxy never reported %s %s within %v (last: %v)", server, want, limit, last)
	return 0
}

// TestRender: the committed configuration passes haproxy -c as written
// and as rendered, and Render refuses a configuration it cannot map.
func TestRender(t *testing.T) {
	hp := haproxy(t)
	conf := committedConfig(t)
	got, err := cluster.Render(conf, "127.0.0.1:18080", "127.0.0.1:18404", []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bind 127.0.0.1:18080\n", "bind 127.0.0.1:18404\n", "server catalogd1 127.0.0.1:1\n",
		"server catalogd3 127.0.0.1:3\n", "balance leastconn", "option httpchk GET /readyz", "http-request disable-l7-retry if !riff_safe"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("rendered configuration lacks %q", want)
		}
	}
	if strings.Contains(string(got), "10.0.1.") {
		t.Error("rendered configuration keeps the example servers")
	}
	// Nothing else changes: same lines but the binds and servers.
	if a, b := strings.Count(string(conf), "\n"), strings.Count(string(got), "\n"); b != a+1 {
		t.Errorf("rendered configuration has %d lines, want %d (the committed %d plus one server)", b, a+1, a)
	}
	dir := t.TempDir()
	for name, c := range map[string][]byte{"committed.cfg": conf, "rendered.cfg": got} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, c, 0o600)
		if out, err := exec.Command(hp, "-c", "-q", "-f", p).CombinedOutput(); err != nil {
			t.Errorf("haproxy -c %s: %v\n%s", name, err, out)
		}
	}
	for _, bad := range []string{
		strings.Replace(string(conf), "\nbackend catalogd", "\nbackend api", 1),
		strings.Replace(string(conf), "\nfrontend lb_admin", "\nfrontend admin", 1),
	} {
		if _, err := cluster.Render([]byte(bad), "a", "b", []string{"c"}); err == nil {
			t.Error("Render accepted a configuration without its sections")
		}
	}
}

// TestSpread: requests through the balancer reach both instances (their
// own counters say so), each answer carries a request id, and the client's
// address catalogd sees is the one HAProxy saw, not the X-Forwarded-For a
// client forged (the per-address login limit holds).
func TestSpread(t *testing.T) {
	c := start(t, 2, "-login-ip-limit", "6", "-login-account-limit", "1000")
	const workers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan string, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := newClient(t, c.URL)
			for i := range each {
				code, b, hdr, err := cl.do("GET", fmt.Sprintf("/songs/%d", 900000+w*each+i), nil, nil)
				if err != nil || code != 404 || hdr.Get("X-Request-Id") == "" {
					errs <- fmt.Sprintf("GET = %d %v %s (request id %q)", code, err, b, hdr.Get("X-Request-Id"))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	a, b := counts(t, c, 0)[404], counts(t, c, 1)[404]
	t.Logf("404s: catalogd1 %d, catalogd2 %d", a, b)
	if a+b != workers*each {
		t.Errorf("the instances answered %d+%d 404s, want %d in all (no request lost or sent twice)", a, b, workers*each)
	}
	if min(a, b) < workers*each/5 {
		t.Errorf("least connections sent %d and %d of %d requests: not spread", a, b, workers*each)
	}

	// A forged X-Forwarded-For: HAProxy appends the real address, and
	// catalogd takes the right-most one, so the limit of 6 per address
	// holds whatever the client claims.
	cl := newClient(t, c.URL)
	limited := 0
	for i := range 10 {
		code, _, _, err := cl.do("POST", "/auth/login", map[string]string{"email": fmt.Sprintf("nobody%d@example.com", i), "password": "wrong password"},
			map[string]string{"X-Forwarded-For": fmt.Sprintf("203.0.113.%d", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		if code == 429 {
			limited++
		}
	}
	if limited < 4 {
		t.Errorf("%d of 10 logins with forged addresses were limited, want at least 4 (limit 6 per address)", limited)
	}

	// No instance left: HAProxy answers in catalogd's shape, with a
	// Retry-After.
	for i := range 2 {
		if err := c.Kill(i); err != nil {
			t.Fatal(err)
		}
		waitState(t, c, fmt.Sprintf("catalogd%d", i+1), "DOWN", 30*time.Second)
	}
	code, body, hdr, err := cl.do("GET", "/songs/1", nil, nil)
	var p struct {
		Status int    `json:"status"`
		Code   string `json:"code"`
	}
	if err != nil || code != 503 || hdr.Get("Content-Type") != "application/problem+json" || hdr.Get("Retry-After") == "" ||
		json.Unmarshal(body, &p) != nil || p.Status != 503 || p.Code != "unavailable" {
		t.Errorf("with every instance down: %d %v %v %s, want a 503 problem+json with Retry-After", code, err, hdr, body)
	}
}

// TestLoginLimitAcrossInstances: wrong passwords for one account, spread
// by the balancer over both instances, hit the one per-account limit kept
// in the database.
func TestLoginLimitAcrossInstances(t *testing.T) {
	c := start(t, 2, "-login-account-limit", "4", "-login-ip-limit", "1000")
	user(t, c.URL, "victim")
	cl := newClient(t, c.URL)
	before := [2]map[int]int{counts(t, c, 0), counts(t, c, 1)}
	got := map[int]int{}
	for range 12 {
		code, b, _, err := cl.do("POST", "/auth/login", map[string]string{"email": "victim@example.com", "password": "wrong password"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if code != 401 && code != 429 {
			t.Fatalf("wrong password = %d %s", code, b)
		}
		got[code]++
	}
	if got[401] > 4 || got[429] < 8 {
		t.Errorf("12 wrong passwords: %d answered 401, %d 429; want at most 4 tries (the limit) and the rest 429", got[401], got[429])
	}
	for i := range 2 {
		now := counts(t, c, i)
		if n := now[401] + now[429] - before[i][401] - before[i][429]; n == 0 {
			t.Errorf("catalogd%d answered none of the attempts: the balancer did not spread them", i+1)
		} else {
			t.Logf("catalogd%d answered %d attempts", i+1, n)
		}
	}
}

// TestOnePurgeDispatcher: of two instances on one database exactly one
// sends the purge outbox (riff_purge_dispatcher), and when it is killed the
// other takes over within seconds.
func TestOnePurgeDispatcher(t *testing.T) {
	edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"purged":[]}`))
	}))
	t.Cleanup(edge.Close)
	c := start(t, 2, "-purge-edges", edge.URL, "-purge-lease", "1s")
	holder := func() (int, [2]float64) {
		v := [2]float64{metric(c, 0, "riff_purge_dispatcher"), metric(c, 1, "riff_purge_dispatcher")}
		switch v {
		case [2]float64{1, 0}, [2]float64{1, -1}:
			return 0, v
		case [2]float64{0, 1}, [2]float64{-1, 1}:
			return 1, v
		}
		return -1, v
	}
	deadline := time.Now().Add(30 * time.Second)
	h, v := holder()
	for h < 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		h, v = holder()
	}
	if h < 0 {
		t.Fatalf("riff_purge_dispatcher on the two instances: %v, want exactly one 1", v)
	}
	// It stays one for a few lease terms.
	for range 20 {
		if v := [2]float64{metric(c, 0, "riff_purge_dispatcher"), metric(c, 1, "riff_purge_dispatcher")}; v[0]+v[1] != 1 {
			t.Fatalf("riff_purge_dispatcher: %v, want exactly one 1", v)
		}
		time.Sleep(150 * time.Millisecond)
	}
	killed := time.Now()
	if err := c.Kill(h); err != nil {
		t.Fatal(err)
	}
	other := 1 - h
	for metric(c, other, "riff_purge_dispatcher") != 1 {
		if time.Since(killed) > 15*time.Second {
			t.Fatalf("catalogd%d did not take over the purge outbox within 15 s of catalogd%d's death", other+1, h+1)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("catalogd%d took over %v after catalogd%d was killed (lease 1 s)", other+1, time.Since(killed).Round(time.Millisecond), h+1)
}
