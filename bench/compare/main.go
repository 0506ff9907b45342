// Command compare is `make bench-compare`: riff edge and nginx side by
// side, in front of one riff origin, with the same content and the same
// riff bench loads.
//
// It synthesises songs with ffmpeg, packages them with `riff package`,
// starts `riff origin`, `riff edge` and nginx (configs/nginx-edge.conf: a
// caching reverse proxy with the slice module), warms both caches, then
// runs each load against riff and nginx in alternation, -rounds times, and
// prints one table with both and the ratios: requests/s, MB/s, p99 by
// request kind, origin fetches, and the server's CPU per request. riff's
// URLs carry a playback token, verified by the edge; nginx's are the bare
// blob keys (nginx cannot check Ed25519 tokens without a module).
//
// On a machine with two or more cores the servers are pinned to core 0
// (riff edge with GOMAXPROCS=1, nginx with one worker) and this process,
// which generates the load, moves itself to core 1 with GOMAXPROCS=1, so
// that each side has one core of its own.
//
//	go build -o bin/riff ./cmd/riff && go run ./bench/compare -riff bin/riff
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"golang.org/x/sys/unix"

	"riff/bench"
	"riff/internal/playtoken"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench-compare:", err)
		os.Exit(1)
	}
}

type settings struct {
	riff, nginx, conf, work string
	songs                   int
	songLen                 time.Duration
	duration                time.Duration
	rounds                  int
	conns, listeners        int
	rate                    float64
	portBase                int
	pin                     bool
	keep                    bool
	cores                   int
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s := settings{cores: runtime.NumCPU()}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.riff, "riff", "bin/riff", "riff `binary`")
	fs.StringVar(&s.nginx, "nginx", "/usr/sbin/nginx", "nginx `binary`")
	fs.StringVar(&s.conf, "nginx-conf", "configs/nginx-edge.conf", "nginx configuration to adapt")
	fs.IntVar(&s.songs, "songs", 8, "songs (each packaged once and published under this many song folders)")
	fs.DurationVar(&s.songLen, "song-length", 90*time.Second, "length of the synthesised song")
	fs.DurationVar(&s.duration, "duration", 10*time.Second, "measured time of each load on each server")
	fs.IntVar(&s.rounds, "rounds", 2, "rounds; each runs every load on riff, then on nginx")
	fs.IntVar(&s.conns, "conns", 32, "connections of the flat loads")
	fs.IntVar(&s.listeners, "listeners", 32, "listeners of the listen load (flat out: -speed 0)")
	fs.Float64Var(&s.rate, "rate", 0, "requests/s of the fixed-rate flat load, latency at equal load (0: half the lower closed-loop req/s of round 1; negative: skip it)")
	fs.IntVar(&s.portBase, "port-base", 0, "ports: origin +1, edge +2, nginx +3, edge admin +4, origin admin +5 (0: free ports)")
	fs.BoolVar(&s.pin, "pin", runtime.NumCPU() >= 2, "pin the servers to core 0 (edge GOMAXPROCS=1, nginx 1 worker) and the load to core 1")
	fs.BoolVar(&s.keep, "keep", false, "keep the scratch folder")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, tool := range []string{s.riff, s.nginx, "ffmpeg"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("needs %s: %w", tool, err)
		}
	}
	if s.pin {
		if _, err := exec.LookPath("taskset"); err != nil {
			s.pin = false
		}
	}
	if s.pin {
		// The load generator takes core 1, on one thread of Go code.
		var set unix.CPUSet
		set.Set(1)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			return fmt.Errorf("pinning to core 1: %w", err)
		}
		runtime.GOMAXPROCS(1)
	}
	work, err := os.MkdirTemp("", "riff-bench-compare-")
	if err != nil {
		return err
	}
	s.work = work
	if s.keep {
		defer fmt.Fprintln(stderr, "kept", work)
	} else {
		defer os.RemoveAll(work)
	}
	c := &compare{s: s, log: stderr, ports: map[int]string{}, died: make(chan string, 8)}
	defer c.stopAll()
	if err := c.setup(ctx); err != nil {
		return err
	}
	return c.measure(ctx, stdout)
}

// proc is a server this tool started; done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

type compare struct {
	s     settings
	log   io.Writer
	procs []proc
	ports map[int]string
	died  chan string // the label of a server that exited

	riffMasters, nginxMasters []string
	originMetrics             string
	edgePID, nginxPID         int
	rate                      float64 // of the fixed-rate load
}

func (c *compare) logf(format string, args ...any) {
	fmt.Fprintf(c.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// port returns the address of a server: -port-base + off, or a port that
// was free a moment ago.
func (c *compare) port(off int) string {
	if c.s.portBase > 0 {
		return "127.0.0.1:" + strconv.Itoa(c.s.portBase+off)
	}
	if a, ok := c.ports[off]; ok {
		return a
	}
	a := "127.0.0.1:0"
	if ln, err := net.Listen("tcp", a); err == nil {
		a = ln.Addr().String()
		ln.Close()
	}
	c.ports[off] = a
	return a
}

func (c *compare) cmd(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

// setup makes the content and starts the servers.
func (c *compare) setup(ctx context.Context) error {
	s := c.s
	blobDir := filepath.Join(s.work, "blob")
	c.logf("packaging a %s song (AAC 64/128/320), published as %d songs", s.songLen, s.songs)
	wav := filepath.Join(s.work, "song.flac")
	if err := c.cmd(ctx, "ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i",
		fmt.Sprintf("anoisesrc=d=%g:c=pink:a=0.3:r=44100", s.songLen.Seconds()), "-ac", "2", "-c:a", "flac", wav); err != nil {
		return err
	}
	first := "artists/1/albums/1/songs/1/v1/"
	if err := c.cmd(ctx, s.riff, "package", "-formats", "aac", "-prefix", first, wav, blobDir); err != nil {
		return err
	}
	var prefixes []string
	for i := 1; i <= s.songs; i++ {
		p := fmt.Sprintf("artists/1/albums/1/songs/%d/v1/", i)
		prefixes = append(prefixes, p)
		if i > 1 {
			dst := filepath.Join(blobDir, p)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				return err
			}
			if err := c.cmd(ctx, "cp", "-r", filepath.Join(blobDir, first), dst); err != nil {
				return err
			}
		}
	}
	keys := filepath.Join(s.work, "keys")
	if err := c.cmd(ctx, s.riff, "keygen", "-dir", keys); err != nil {
		return err
	}
	signer, err := playtoken.LoadSigner(filepath.Join(keys, playtoken.SigningKeyFile), time.Now)
	if err != nil {
		return err
	}
	for _, p := range prefixes {
		tok, err := signer.Mint(playtoken.Claims{Type: playtoken.TypePlay, Subject: "bench", Prefix: p}, 6*time.Hour)
		if err != nil {
			return err
		}
		c.riffMasters = append(c.riffMasters, "http://"+c.port(2)+"/t/"+tok+"/"+p+"master.m3u8")
		c.nginxMasters = append(c.nginxMasters, "http://"+c.port(3)+"/"+p+"master.m3u8")
	}

	const secret = "bench-secret"
	c.logf("starting riff origin %s, riff edge %s, nginx %s (pinned to core 0: %v)", c.port(1), c.port(2), c.port(3), s.pin)
	if _, err := c.start(ctx, "origin", false, nil, s.riff, "origin", "-listen", c.port(1), "-admin-listen", c.port(5),
		"-blob", blobDir, "-secret", secret, "-log-level", "warn"); err != nil {
		return err
	}
	env := []string{}
	if s.pin {
		env = append(env, "GOMAXPROCS=1")
	}
	if c.edgePID, err = c.start(ctx, "edge", s.pin, env, s.riff, "edge", "-listen", c.port(2), "-admin-listen", c.port(4),
		"-origin", "http://"+c.port(1), "-origin-secret", secret, "-keys", filepath.Join(keys, playtoken.JWKSFile),
		"-cache-bytes", "1GiB", "-slice-bytes", "1MiB", "-log-level", "warn"); err != nil {
		return err
	}
	ngx := filepath.Join(s.work, "nginx")
	for _, d := range []string{"logs", "cache", "tmp"} {
		if err := os.MkdirAll(filepath.Join(ngx, d), 0o755); err != nil {
			return err
		}
	}
	conf, err := os.ReadFile(s.conf)
	if err != nil {
		return err
	}
	workers := "auto"
	if s.pin {
		workers = "1"
	}
	conf = bytes.ReplaceAll(conf, []byte("127.0.0.1:8083"), []byte(c.port(3)))
	conf = bytes.ReplaceAll(conf, []byte("127.0.0.1:8081"), []byte(c.port(1)))
	conf = bytes.ReplaceAll(conf, []byte(`"change-me"`), []byte(`"`+secret+`"`))
	conf = bytes.ReplaceAll(conf, []byte("worker_processes auto;"), []byte("worker_processes "+workers+";"))
	if err := os.WriteFile(filepath.Join(ngx, "nginx.conf"), conf, 0o644); err != nil {
		return err
	}
	global := "daemon off;"
	if os.Geteuid() == 0 { // workers would run as nobody and could not use the scratch folder
		global += " user root;"
	}
	if c.nginxPID, err = c.start(ctx, "nginx", s.pin, nil, s.nginx, "-p", ngx, "-c", filepath.Join(ngx, "nginx.conf"), "-g", global); err != nil {
		return err
	}
	c.originMetrics = "http://" + c.port(5) + "/metrics"
	for _, u := range []string{"http://" + c.port(5) + "/readyz", "http://" + c.port(4) + "/readyz", c.nginxMasters[0]} {
		if err := c.waitOK(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

// start runs a server in the background (pinned to core 0 when pin).
func (c *compare) start(ctx context.Context, label string, pin bool, env []string, name string, args ...string) (int, error) {
	if pin {
		args = append([]string{"-c", "0", name}, args...)
		name = "taskset"
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = &prefixWriter{w: c.log, prefix: label + ": "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	p := proc{cmd: cmd, done: make(chan struct{})}
	c.procs = append(c.procs, p)
	go func() {
		cmd.Wait()
		close(p.done)
		c.died <- label
	}()
	return cmd.Process.Pid, ctx.Err()
}

// stopAll stops the servers (SIGTERM to each process group, SIGKILL after
// 10 s) and waits for them.
func (c *compare) stopAll() {
	for _, p := range c.procs {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	}
	deadline := time.After(10 * time.Second)
	for _, p := range c.procs {
		select {
		case <-p.done:
		case <-deadline:
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
			expired := make(chan time.Time)
			close(expired)
			deadline = expired // the rest are killed at once
		}
	}
}

type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line != "" {
			io.WriteString(p.w, p.prefix+line)
		}
	}
	return len(b), nil
}

func (c *compare) waitOK(ctx context.Context, url string) error {
	client := &http.Client{Timeout: time.Second}
	for range 100 {
		if res, err := client.Get(url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case label := <-c.died:
			return fmt.Errorf("%s exited", label)
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("timed out waiting for %s", url)
}

// load is one of the loads every server gets.
type load struct {
	name string
	opt  func(masters []string) bench.Options
}

func (c *compare) loads() []load {
	base := func(scenario string, masters []string) bench.Options {
		return bench.Options{
			Scenario: scenario, Playlists: masters, Duration: c.s.duration, Timeout: 5 * time.Second,
			Conns: c.s.conns, Seed: 1, Quiet: true, OriginMetrics: c.originMetrics,
			MaxErrorRate: -1, MinHitRatio: -1, MaxRebufferRatio: -1,
		}
	}
	ls := []load{
		{"flat, closed loop", func(m []string) bench.Options { return base("flat", m) }},
		{"listen, flat out", func(m []string) bench.Options {
			o := base("listen", m)
			o.Listeners, o.Speed, o.Zipf = c.s.listeners, 0, 1.1
			return o
		}},
	}
	if c.s.rate >= 0 {
		ls = append(ls, load{"flat, fixed rate", func(m []string) bench.Options {
			o := base("flat", m)
			o.Rate = c.rate
			return o
		}})
	}
	return ls
}

// result is one load on one server in one round.
type result struct {
	rep    *bench.Report
	cpuUS  float64 // server CPU µs per request
	server string
}

func (c *compare) measure(ctx context.Context, stdout io.Writer) error {
	servers := []struct {
		name    string
		masters []string
		pids    func() []int
	}{
		{"riff", c.riffMasters, func() []int { return []int{c.edgePID} }},
		{"nginx", c.nginxMasters, func() []int { return append([]int{c.nginxPID}, children(c.nginxPID)...) }},
	}
	c.logf("warming both caches")
	for _, sv := range servers {
		o := c.loads()[0].opt(sv.masters)
		o.Duration, o.Zipf, o.Conns = 3*time.Second, 0, 8
		rep, err := bench.Execute(ctx, o, io.Discard)
		if err != nil {
			return err
		}
		if rep.Errors > 0 {
			return fmt.Errorf("%s: errors while warming: %v", sv.name, rep.ErrorsByKind)
		}
	}
	loads := c.loads()
	results := make([][]result, len(loads))
	for round := 1; round <= c.s.rounds; round++ {
		for li, l := range loads {
			for _, sv := range servers {
				c.logf("round %d: %s on %s", round, l.name, sv.name)
				pids := sv.pids()
				t0 := cpuTicks(pids)
				rep, err := bench.Execute(ctx, l.opt(sv.masters), io.Discard)
				if err != nil {
					return err
				}
				t1 := cpuTicks(pids)
				n := float64(rep.Requests + rep.Errors)
				us := 0.0
				if n > 0 {
					us = float64(t1-t0) / clockTicks * 1e6 / n
				}
				results[li] = append(results[li], result{rep: rep, cpuUS: us, server: sv.name})
				if li == 0 && c.rate == 0 { // the closed loop: the fixed rate follows from it
					if c.rate = c.s.rate; c.rate == 0 && len(results[0]) == len(servers) {
						c.rate = 0.5 * min(results[0][0].rep.RPS, results[0][1].rep.RPS)
					}
				}
				if rep.Errors > 0 {
					c.logf("%s answered errors: %v", sv.name, rep.ErrorsByKind)
				}
				for _, w := range rep.Warnings {
					c.logf("%s: %s", sv.name, w)
				}
			}
		}
	}
	c.report(stdout, loads, results)
	return nil
}

// report prints one markdown table: each load's metrics for riff and
// nginx (means over rounds) and the ratio.
func (c *compare) report(w io.Writer, loads []load, results [][]result) {
	cpu := ""
	if out, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	placement := "no pinning"
	if c.s.pin {
		placement = "servers pinned to core 0 (riff edge GOMAXPROCS=1, nginx 1 worker), bench on core 1"
	}
	fmt.Fprintf(w, "\nbench-compare: %d cores (%s), %s; %d songs of %s (AAC 64/128/320, 6 s fragments, 1 MiB slices), %s per load, %d rounds, %d conns, %d listeners, fixed rate %.0f req/s\n\n",
		c.s.cores, cpu, placement, c.s.songs, c.s.songLen, c.s.duration, c.s.rounds, c.s.conns, c.s.listeners, c.rate)
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	fmt.Fprintln(tw, "| load | metric | riff | nginx | riff/nginx |")
	fmt.Fprintln(tw, "|---|---|--:|--:|--:|")
	for li, l := range loads {
		mean := func(server string, f func(r result) float64) float64 {
			var sum float64
			var n int
			for _, r := range results[li] {
				if r.server == server {
					sum += f(r)
					n++
				}
			}
			if n == 0 {
				return 0
			}
			return sum / float64(n)
		}
		row := func(metric, format string, f func(r result) float64) {
			a, b := mean("riff", f), mean("nginx", f)
			ratio := "-"
			if b != 0 {
				ratio = fmt.Sprintf("%.2f", a/b)
			}
			fmt.Fprintf(tw, "| %s | %s | "+format+" | "+format+" | %s |\n", l.name, metric, a, b, ratio)
		}
		row("req/s", "%.0f", func(r result) float64 { return r.rep.RPS })
		row("MB/s", "%.1f", func(r result) float64 { return r.rep.MBps })
		row("p50 ms", "%.2f", func(r result) float64 { return r.rep.Latency.P50 })
		row("p99 ms", "%.2f", func(r result) float64 { return r.rep.Latency.P99 })
		for _, k := range []string{"playlist", "init", "segment"} {
			if results[li][0].rep.Kind(k).Requests > 0 {
				row("p99 ms "+k, "%.2f", func(r result) float64 { return r.rep.Kind(k).Latency.P99 })
			}
		}
		row("hit ratio", "%.3f", func(r result) float64 { return r.rep.HitRatio })
		row("origin fetches", "%.0f", func(r result) float64 {
			if r.rep.Origin == nil {
				return 0
			}
			return r.rep.Origin.Fetches
		})
		row("errors", "%.0f", func(r result) float64 { return float64(r.rep.Errors) })
		row("server CPU µs/req", "%.1f", func(r result) float64 { return r.cpuUS })
		row("bench cores", "%.2f", func(r result) float64 { return r.rep.CPU.Cores })
	}
	tw.Flush()
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// cpuTicks sums user and system ticks of pids from /proc.
func cpuTicks(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the command name (which may contain spaces).
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 12 {
			u, _ := strconv.ParseInt(fields[11], 10, 64)
			k, _ := strconv.ParseInt(fields[12], 10, 64)
			total += u + k
		}
	}
	return total
}

// children lists the processes whose parent is pid (nginx's workers).
func children(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", n))
		if err != nil {
			continue
		}
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == strconv.Itoa(pid) {
			out = append(out, n)
		}
	}
	return out
}
