package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"riff/bench"
)

func TestProcHelpers(t *testing.T) {
	cmd := exec.Command("sleep", "5")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	defer cmd.Process.Kill()
	if kids := children(os.Getpid()); !slices.Contains(kids, cmd.Process.Pid) {
		t.Errorf("children(%d) = %v, want %d among them", os.Getpid(), kids, cmd.Process.Pid)
	}
	before := cpuTicks([]int{os.Getpid()})
	for end := time.Now().Add(150 * time.Millisecond); time.Now().Before(end); {
	}
	if after := cpuTicks([]int{os.Getpid()}); after <= before {
		t.Errorf("cpuTicks did not grow while spinning: %d → %d", before, after)
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr bool
		check   func(s settings) bool
	}{
		{nil, false, func(s settings) bool {
			return s.cpuCap == defaultCap && slices.Equal(s.nginxConfigs, []string{"slice", "whole"}) && s.useWrk && s.edgeProcs == 1 && s.tcpCC == "cubic" && s.shmemFolio == "64kB"
		}},
		{[]string{"-shmem-folio", ""}, false, func(s settings) bool { return s.shmemFolio == "" }},
		{[]string{"-shmem-folio", "../../etc/passwd"}, true, nil},
		{[]string{"-shmem-folio", "64k"}, true, nil},
		{[]string{"-tcp-cc", ""}, false, func(s settings) bool { return s.tcpCC == "" }},
		{[]string{"-tcp-cc", "../../etc/passwd"}, true, nil},
		{[]string{"-nginx-configs", "whole, slice,whole"}, false, func(s settings) bool { return slices.Equal(s.nginxConfigs, []string{"whole", "slice"}) }},
		{[]string{"-cpu-cap", "0", "-wrk=false"}, false, func(s settings) bool { return s.cpuCap == 0 && !s.useWrk }},
		{[]string{"-cpu-cap", "-1"}, true, nil},
		{[]string{"-pin", "-cpu-cap", "1.5"}, true, nil},
		{[]string{"-nginx-configs", ""}, true, nil},
		{[]string{"-nginx-configs", "../etc"}, true, nil},
		{[]string{"-duration", "10ms"}, true, nil},
		{[]string{"stray"}, true, nil},
		{[]string{"-edge-args", " -trace-ratio 0.01  -otlp-endpoint=http://c:4318", "-otlp-sink"}, false, func(s settings) bool {
			return slices.Equal(s.edgeArgs, []string{"-trace-ratio", "0.01", "-otlp-endpoint=http://c:4318"}) && s.otlpSink &&
				hasFlag(s.edgeArgs, "otlp-endpoint") && !hasFlag(s.edgeArgs, "trace")
		}},
		{[]string{"-edge-args", "0.01"}, true, nil},
	} {
		s, err := parseFlags(tc.args, io.Discard)
		if (err != nil) != tc.wantErr {
			t.Errorf("parseFlags(%q) error = %v, want error: %v", tc.args, err, tc.wantErr)
			continue
		}
		if err == nil && !tc.check(s) {
			t.Errorf("parseFlags(%q) = %+v", tc.args, s)
		}
	}
	s := settings{confDir: "configs"}
	for name, want := range map[string]string{"slice": "configs/nginx-edge.conf", "whole": "configs/nginx-edge-whole.conf"} {
		if got := s.confPath(name); got != want {
			t.Errorf("confPath(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestConfigs checks that the nginx configurations have what bench/compare
// rewrites, and, with nginx installed, that nginx accepts them.
func TestConfigs(t *testing.T) {
	for _, name := range []string{"slice", "whole"} {
		path := settings{confDir: "../../configs"}.confPath(name)
		conf, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		adapted, err := adaptConf(conf, map[string]string{
			"127.0.0.1:8083": "127.0.0.1:18083", "127.0.0.1:8081": "127.0.0.1:18081",
			`"change-me"`: `"s"`, "worker_processes auto;": "worker_processes 1;",
		})
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		nginx, err := exec.LookPath("nginx")
		if err != nil {
			nginx = "/usr/sbin/nginx"
		}
		if _, err := os.Stat(nginx); err != nil {
			continue
		}
		prefix := t.TempDir()
		for _, d := range []string{"logs", "cache", "tmp"} {
			os.MkdirAll(filepath.Join(prefix, d), 0o755)
		}
		confPath := filepath.Join(prefix, "nginx.conf")
		os.WriteFile(confPath, adapted, 0o644)
		global := "daemon off;"
		if os.Geteuid() == 0 {
			global += " user root;"
		}
		if out, err := exec.Command(nginx, "-t", "-q", "-p", prefix, "-c", confPath, "-g", global).CombinedOutput(); err != nil {
			t.Errorf("nginx -t %s: %v\n%s", path, err, out)
		}
	}
	if _, err := adaptConf([]byte("listen 1;"), map[string]string{"listen 2;": "x"}); err == nil {
		t.Error("adaptConf replaced what is not there")
	}
}

func TestFindCgroupMounts(t *testing.T) {
	mounts := `tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
`
	controllers := map[string]string{"/sys/fs/cgroup/unified/cgroup.controllers": "\n", "/v2/cgroup.controllers": "cpuset cpu io memory pids\n"}
	read := func(p string) ([]byte, error) {
		if s, ok := controllers[p]; ok {
			return []byte(s), nil
		}
		return nil, os.ErrNotExist
	}
	got := findCgroupMounts([]byte(mounts), read)
	if want := (cgroupMounts{cpu: "/sys/fs/cgroup/cpu", cpuacct: "/sys/fs/cgroup/cpuacct"}); got != want {
		t.Errorf("v1 with an empty v2: %+v, want %+v", got, want)
	}
	got = findCgroupMounts([]byte("cgroup /c cgroup rw,cpu,cpuacct 0 0\ncgroup2 /v2 cgroup2 rw 0 0\n"), read)
	if want := (cgroupMounts{v2: "/v2", cpu: "/c", cpuacct: "/c"}); got != want {
		t.Errorf("v1 co-mounted and v2 with cpu: %+v, want %+v", got, want)
	}
}

// TestCgroup caps a spinning shell in a real cgroup (skipped unless this
// machine lets us make one: root and a cpu controller).
func TestCgroup(t *testing.T) {
	if _, err := newCgroup(cgroupMounts{}, "g", 0.5, 10*time.Millisecond); err == nil {
		t.Error("newCgroup without mounts: no error")
	}
	if _, err := newCgroup(cgroupMounts{cpu: "/x", cpuacct: "/x"}, "g", 0.05, 10*time.Millisecond); err == nil {
		t.Error("newCgroup with a 0.5 ms quota: no error")
	}
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Skip(err)
	}
	g, err := newCgroup(findCgroupMounts(data, os.ReadFile), fmt.Sprintf("riff-bench-compare-test-%d", os.Getpid()), 0.2, 10*time.Millisecond)
	if err != nil {
		t.Skipf("no cgroup here: %v", err)
	}
	defer g.remove()
	name, args := g.inGroup("sh", []string{"-c", "while :; do :; done"})
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	u0 := mustUsage(t, g)
	time.Sleep(time.Second)
	used := mustUsage(t, g) - u0
	if !g.contains(cmd.Process.Pid) {
		t.Errorf("pid %d is not in %s", cmd.Process.Pid, g)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// Uncapped, the loop would use a whole second.
	if used < 100*time.Millisecond || used > 400*time.Millisecond {
		t.Errorf("a spinning process capped at 0.2 cores used %s in 1s, want about 200ms", used)
	}
	if g.throttled() == 0 {
		t.Errorf("%s: no throttled periods", g)
	}
	if err := g.remove(); err != nil {
		t.Fatal(err)
	}
	for _, d := range g.dirs() {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still there after remove: %v", d, err)
		}
	}
}

func mustUsage(t *testing.T, g *cgroup) time.Duration {
	t.Helper()
	d, err := g.usage()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestReport checks the table: means over rounds, riff's ratios to each
// nginx, rows a load does not measure, the faster nginx and the
// generator-bound warnings.
func TestReport(t *testing.T) {
	rep := func(rps, p99 float64) *bench.Report {
		return &bench.Report{RPS: rps, MBps: rps / 10, Latency: bench.Latency{P99: p99}, HitRatio: 1,
			ByKind: []bench.KindReport{{Kind: "segment", Requests: 10, Latency: bench.Latency{P99: p99}}},
			Origin: &bench.OriginReport{Fetches: 0}}
	}
	res := func(server string, rps, p99 float64, cpuUS float64) result {
		return result{server: server, rep: rep(rps, p99), requests: 1000, wall: time.Second,
			serverCPU: time.Duration(cpuUS * 1000 * float64(time.Microsecond)), genCPU: 20 * time.Millisecond, genCores: 0.5, genAvail: 1}
	}
	c := &compare{s: settings{songs: 8, songLen: time.Minute, duration: time.Second, rounds: 2, cores: 2},
		servers: []*server{{name: "riff"}, {name: "nginx-slice"}, {name: "nginx-whole"}}}
	wrk := &wrkReport{Requests: 5000, Bytes: 5e6, Seconds: 1, P50: 1, P99: 4}
	results := [][]result{{
		res("riff", 1000, 10, 40), res("nginx-slice", 500, 20, 30), res("nginx-whole", 800, 5, 20),
		res("riff", 3000, 30, 40), res("nginx-slice", 1500, 40, 30), res("nginx-whole", 1600, 15, 20),
	}, {
		{server: "riff", wrk: wrk, requests: 5000, wall: time.Second, serverCPU: 250 * time.Millisecond, genCPU: 800 * time.Millisecond, genCores: 0.8, genAvail: 1},
		{server: "nginx-slice", wrk: wrk, requests: 5000, wall: time.Second, serverCPU: 200 * time.Millisecond, genCPU: 300 * time.Millisecond, genCores: 0.3, genAvail: 1},
		{server: "nginx-whole", wrk: wrk, requests: 5000, wall: time.Second, serverCPU: 100 * time.Millisecond, genCPU: 300 * time.Millisecond, genCores: 0.3, genAvail: 1},
	}}
	var out strings.Builder
	c.report(&out, []load{{name: "flat"}, {name: "wrk"}}, results, []string{"GENERATOR-BOUND: round 1, wrk on riff"})
	for _, want := range []string{
		"| load | metric | riff | nginx-slice | nginx-whole | riff/nginx-slice | riff/nginx-whole |",
		"| flat | req/s | 2000 | 1000 | 1200 | 2.00 | 1.67 |",
		"| flat | p99 ms | 20.00 | 30.00 | 10.00 | 0.67 | 2.00 |",
		"| flat | p99 ms segment | 20.00 | 30.00 | 10.00 | 0.67 | 2.00 |",
		"| flat | server CPU µs/req | 40.0 | 30.0 | 20.0 | 1.33 | 2.00 |",
		"| flat | server cores | 0.04 | 0.03 | 0.02 | 1.33 | 2.00 |",
		"| flat | generator CPU µs/req | 20.0 | 20.0 | 20.0 | 1.00 | 1.00 |",
		"| flat | origin fetches | 0 | 0 | 0 | - | - |",
		"| wrk | req/s | 5000 | 5000 | 5000 | 1.00 | 1.00 |",
		"| wrk | hit ratio | - | - | - | - | - |",
		"| wrk | server CPU µs/req | 50.0 | 40.0 | 20.0 | 1.25 | 2.50 |",
		"| wrk | generator cores | 0.80 | 0.30 | 0.30 | 2.67 | 2.67 |",
		"- flat: nginx-whole (nginx-slice 1000 req/s, nginx-whole 1200 req/s)",
		"!!! GENERATOR-BOUND: round 1, wrk on riff",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if !results[1][0].bound() || results[1][1].bound() {
		t.Errorf("bound() = %v, %v for 0.8 and 0.3 of one core, want true, false", results[1][0].bound(), results[1][1].bound())
	}
}

// TestWrk lists the targets of a playlist as the flat load does, and,
// with wrk installed, runs the script against a server that records what
// it was asked.
func TestWrk(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen[r.URL.Path+" "+r.Header.Get("Range")]++
		mu.Unlock()
		switch r.URL.Path {
		case "/t/tok/a/master.m3u8":
			io.WriteString(w, "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=128000\naac_128.m3u8\n")
		case "/t/tok/a/aac_128.m3u8":
			io.WriteString(w, "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:6\n#EXT-X-MAP:URI=\"aac_128.mp4\",BYTERANGE=\"100@0\"\n"+
				"#EXTINF:6.0,\n#EXT-X-BYTERANGE:1000@100\naac_128.mp4\n#EXTINF:6.0,\n#EXT-X-BYTERANGE:1000@1100\naac_128.mp4\n#EXT-X-ENDLIST\n")
		default:
			w.WriteHeader(http.StatusPartialContent)
		}
	}))
	defer srv.Close()
	ts, err := flatTargets([]string{srv.URL + "/t/tok/a/master.m3u8"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []target{
		{"/t/tok/a/master.m3u8", bench.Range{First: 0, Last: -1}},
		{"/t/tok/a/aac_128.m3u8", bench.Range{First: 0, Last: -1}},
		{"/t/tok/a/aac_128.mp4", bench.Range{First: 0, Last: 99}},
		{"/t/tok/a/aac_128.mp4", bench.Range{First: 100, Last: 1099}},
		{"/t/tok/a/aac_128.mp4", bench.Range{First: 1100, Last: 2099}},
	}
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b target) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	slices.SortFunc(want, func(a, b target) int { return strings.Compare(fmt.Sprint(a), fmt.Sprint(b)) })
	if !slices.Equal(sorted, want) {
		t.Errorf("flatTargets = %v, want %v in some order", ts, want)
	}
	script := string(wrkScript(ts))
	if !strings.Contains(script, `{"/t/tok/a/aac_128.mp4", "bytes=100-1099"},`) || !strings.Contains(script, `{"/t/tok/a/master.m3u8", nil},`) {
		t.Errorf("script lacks the targets:\n%s", script)
	}

	wrk, err := exec.LookPath("wrk")
	if err != nil {
		t.Skip("no wrk")
	}
	path := filepath.Join(t.TempDir(), "s.lua")
	if err := writeWrkScript(path, ts); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clear(seen)
	mu.Unlock()
	r, err := runWrk(context.Background(), wrk, path, srv.URL, 1, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests < 10 || r.RPS() <= 0 || r.P99 < r.P50 || r.CPU <= 0 || r.StatusErrors != 0 {
		t.Errorf("runWrk = %+v", r)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, tg := range want {
		k := tg.path + " "
		if tg.rng.Last >= 0 {
			k += fmt.Sprintf("bytes=%d-%d", tg.rng.First, tg.rng.Last)
		}
		if seen[k] == 0 {
			t.Errorf("wrk never asked for %q; asked for %v", k, seen)
		}
	}
}

func TestParseWrk(t *testing.T) {
	out := "Running 1s test @ http://x\n  Latency Distribution\n     50%  1.00ms\n" +
		"riff-compare-wrk requests=1200 duration_us=2000000 bytes=5000 p50_us=1500 p99_us=9000 status_errors=3 socket_errors=1\n"
	got, err := parseWrk([]byte(out))
	want := wrkReport{Requests: 1200, Bytes: 5000, Seconds: 2, P50: 1.5, P99: 9, StatusErrors: 3, SockErrs: 1}
	if err != nil || got != want {
		t.Errorf("parseWrk = %+v, %v, want %+v", got, err, want)
	}
	if got.RPS() != 600 {
		t.Errorf("RPS() = %v, want 600", got.RPS())
	}
	for _, bad := range []string{"", "riff-compare-wrk requests=1\n", "riff-compare-wrk requests=x duration_us=1 bytes=1 p50_us=1 p99_us=1 status_errors=0 socket_errors=0\n"} {
		if _, err := parseWrk([]byte(bad)); err == nil {
			t.Errorf("parseWrk(%q): no error", bad)
		}
	}
}

// TestOTLPSink: the sink takes riff's span exports (OTLP/HTTP protobuf
// POSTs) and counts them.
func TestOTLPSink(t *testing.T) {
	s, err := startOTLPSink()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Post(s.URL+"/v1/traces", "application/x-protobuf", strings.NewReader("spans"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || s.exports.Load() != 1 || s.bytes.Load() != 5 {
		t.Errorf("sink answered %d, counted %d exports of %d bytes; want 200, 1, 5", resp.StatusCode, s.exports.Load(), s.bytes.Load())
	}
}

// TestSetKnob sets a setting shown as a choice and puts it back, then the
// machine's congestion control to what it is (no change, nothing to put
// back) and, where the test may write the sysctl (root), to another one
// the kernel has and back.
func TestSetKnob(t *testing.T) {
	knob := filepath.Join(t.TempDir(), "shmem_enabled")
	if err := os.WriteFile(knob, []byte("always inherit within_size advise [never]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	put, err := setKnob(knob, "folios", "advise", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(knob); string(b) != "advise" {
		t.Errorf("set: %q, want advise", b)
	}
	put()
	if b, _ := os.ReadFile(knob); string(b) != "never" {
		t.Errorf("put back: %q, want never (the choice in brackets)", b)
	}

	old, err := os.ReadFile(ccSysctl)
	if err != nil {
		t.Skipf("no %s: %v", ccSysctl, err)
	}
	was := strings.TrimSpace(string(old))
	restore, err := setKnob(ccSysctl, "cc", was, io.Discard)
	if err != nil {
		t.Fatalf("setting it to what it is (%s): %v", was, err)
	}
	restore()
	other := "reno" // built into every kernel
	if was == other {
		other = "cubic"
	}
	restore, err = setKnob(ccSysctl, "cc", other, io.Discard)
	if err != nil {
		if os.Geteuid() != 0 {
			t.Skipf("not root: %v", err)
		}
		t.Fatal(err)
	}
	now, _ := os.ReadFile(ccSysctl)
	restore()
	back, _ := os.ReadFile(ccSysctl)
	if strings.TrimSpace(string(now)) != other || strings.TrimSpace(string(back)) != was {
		t.Errorf("set %s: read %q; restored: %q, want %q", other, now, back, was)
	}
	if _, err := setKnob(ccSysctl, "cc", "no-such-cc", io.Discard); err == nil {
		t.Error("an unknown congestion control: no error")
		restore()
	}
}
