// Command compare is `make bench-compare`: riff edge and nginx side by
// side, in front of one riff origin, with the same content and the same
// loads.
//
// It synthesises songs with ffmpeg, packages them with `riff package`,
// starts `riff origin`, `riff edge` and one nginx per -nginx-configs entry
// (configs/nginx-edge.conf, "slice": the slice module, 1 MiB slices like
// riff edge; configs/nginx-edge-whole.conf, "whole": proxy_cache of whole
// objects, ranges served from the cached file), warms every cache, then
// runs each load against riff and each nginx in alternation, -rounds
// times, and prints one table with all of them and the ratios: requests/s,
// MB/s, latency, origin fetches, the server's CPU per request and cores,
// and the generator's. riff's URLs carry a playback token, verified by the
// edge; nginx's are the bare blob keys (nginx cannot check Ed25519 tokens
// without a module).
//
// The loads are riff bench's, in this process: flat closed loop
// (capacity), listen flat out (the player's mix), flat at a fixed rate
// (latency at equal load); and wrk with a Lua script that cycles through
// the flat load's requests (a second, independent generator).
//
// Placement: on a machine with two or more cores the servers run on core
// 0 and the generators on core 1 (this process with GOMAXPROCS=1, wrk with
// one thread). The server under test is also capped, by a cgroup of its
// own (-cpu-cap cores), so that a server flat out needs less than the
// generator's core: a capacity number then measures the server, not the
// generator. Each run reports the generator's cores and warns when it was
// near its limit.
//
// Tracing on: -edge-args passes more flags to riff edge (e.g.
// '-trace-ratio 0.01'), and -otlp-sink gives it an OTLP/HTTP endpoint in
// this process that counts and drops the spans, so the edge's CPU per
// request with tracing on can be set against a run without.
//
//	go build -o bin/riff ./cmd/riff && go run ./bench/compare -riff bin/riff
package main

import (
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
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"riff/internal/blobkey"
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
	riff, nginx, wrk, confDir string
	nginxConfigs              []string
	work                      string
	songs                     int
	songLen                   time.Duration
	duration                  time.Duration
	rounds                    int
	conns, listeners          int
	rate                      float64
	portBase                  int
	pin                       bool
	keep                      bool
	cores                     int
	cpuCap                    float64       // cores of the server under test (0: no cgroup)
	cpuPeriod                 time.Duration // of the cap
	edgeDisk                  bool          // riff edge gets a disk tier
	edgeProcs                 int           // riff edge GOMAXPROCS
	edgeArgs                  []string      // more flags for riff edge, after ours
	otlpSink                  bool          // give riff edge an in-process OTLP endpoint
	nginxWorkers              int
	useWrk                    bool
	tcpCC                     string // congestion control for the run ("": the machine's)
	shmemFolio                string // shmem folio size allowed on advice for the run ("": the machine's)
}

// shmemFolioRe is what -shmem-folio takes.
var shmemFolioRe = regexp.MustCompile(`^[1-9][0-9]{0,6}kB$`)

// defaultCap is -cpu-cap's default. The generator needs about 1.5 times
// the servers' CPU per request (31–37 µs against 20–27 on the edge loads,
// December 2026), so a server capped at c cores makes it use about 1.5c of
// its core: 0.4 keeps that near 0.6, under the 0.7 past which a run is
// flagged generator-bound (0.5 no longer did once riff's answers stopped
// copying their bytes).
const defaultCap = 0.4

// parseFlags reads and checks the flags; it has no side effects.
func parseFlags(args []string, stderr io.Writer) (settings, error) {
	s := settings{cores: runtime.NumCPU()}
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&s.riff, "riff", "bin/riff", "riff `binary`")
	fs.StringVar(&s.nginx, "nginx", "/usr/sbin/nginx", "nginx `binary`")
	fs.StringVar(&s.confDir, "nginx-conf-dir", "configs", "`folder` of the nginx configurations: slice is nginx-edge.conf, any other NAME nginx-edge-NAME.conf")
	configs := fs.String("nginx-configs", "slice,whole", "nginx configurations to measure, comma-separated: slice (the slice module), whole (proxy_cache of whole objects)")
	fs.StringVar(&s.wrk, "wrk-bin", "wrk", "wrk `binary`")
	fs.BoolVar(&s.useWrk, "wrk", true, "also measure with wrk (a second generator; -wrk=false turns it off)")
	fs.IntVar(&s.songs, "songs", 8, "songs (each packaged once and published under this many song folders)")
	fs.DurationVar(&s.songLen, "song-length", 90*time.Second, "length of the synthesised song")
	fs.DurationVar(&s.duration, "duration", 10*time.Second, "measured time of each load on each server")
	fs.IntVar(&s.rounds, "rounds", 2, "rounds; each runs every load on riff, then on each nginx")
	fs.IntVar(&s.conns, "conns", 32, "connections of the flat loads and wrk")
	fs.IntVar(&s.listeners, "listeners", 32, "listeners of the listen load (flat out: -speed 0)")
	fs.Float64Var(&s.rate, "rate", 0, "requests/s of the fixed-rate flat load, latency at equal load (0: half the lowest closed-loop req/s of round 1; negative: skip it)")
	fs.IntVar(&s.portBase, "port-base", 0, "ports: origin +1, edge +2, edge admin +4, origin admin +5, nginx configs +10, +11, … (0: free ports)")
	fs.BoolVar(&s.pin, "pin", s.cores >= 2, "run the servers on core 0 and the generators on core 1 (this process GOMAXPROCS=1, wrk 1 thread)")
	fs.Float64Var(&s.cpuCap, "cpu-cap", defaultCap, "CPU cap of the server under test, in `cores`, by a cgroup of its own (needs root; 0: no cgroup, no cap)")
	fs.DurationVar(&s.cpuPeriod, "cpu-period", 10*time.Millisecond, "enforcement period of -cpu-cap: a throttled server waits up to (1 - cap) × this")
	fs.IntVar(&s.edgeProcs, "edge-gomaxprocs", 1, "GOMAXPROCS of riff edge (0: Go's default)")
	fs.BoolVar(&s.edgeDisk, "edge-disk", false, "give riff edge a 4 GiB disk tier in the scratch folder (-disk-cache), as nginx-whole has its proxy_cache_path")
	edgeArgs := fs.String("edge-args", "", "more `flags` for riff edge, split at spaces and given after bench-compare's own (so they win), e.g. '-trace-ratio 0.01 -otlp-endpoint http://collector:4318'")
	fs.BoolVar(&s.otlpSink, "otlp-sink", false, "export riff edge's spans to an OTLP/HTTP sink in this process (on the generators' core) that counts and drops them: tracing on with somewhere to send; sets -otlp-endpoint unless -edge-args does")
	fs.IntVar(&s.nginxWorkers, "nginx-workers", 1, "nginx worker_processes (0: auto)")
	fs.StringVar(&s.tcpCC, "tcp-cc", "cubic", "TCP congestion control of every socket the run opens (net.ipv4.tcp_congestion_control, set for the run and restored after; needs root); \"\" leaves the machine's. Over loopback BBR paces with a timer per socket, and whether it does depends on each server's send pattern (docs/performance.md)")
	fs.StringVar(&s.shmemFolio, "shmem-folio", "64kB", "let memory files that ask for huge pages get folios of this size for the run (hugepages-SIZE/shmem_enabled = advise, restored after; needs root), as docs/operations.md recommends for edges: riff edge's slab then lends 64 KiB folios to sendfile, as ext4 gives nginx's cache files large folios; \"\" leaves the machine's")
	fs.BoolVar(&s.keep, "keep", false, "keep the scratch folder")
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	if fs.NArg() > 0 {
		return s, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	s.edgeArgs = strings.Fields(*edgeArgs)
	if len(s.edgeArgs) > 0 && !strings.HasPrefix(s.edgeArgs[0], "-") {
		return s, fmt.Errorf("-edge-args %q: want flags, e.g. '-trace-ratio 0.01'", *edgeArgs)
	}
	for c := range strings.SplitSeq(*configs, ",") {
		if c = strings.TrimSpace(c); c != "" && !slices.Contains(s.nginxConfigs, c) {
			s.nginxConfigs = append(s.nginxConfigs, c)
		}
	}
	switch {
	case len(s.nginxConfigs) == 0:
		return s, errors.New("-nginx-configs: name at least one configuration")
	case s.cpuCap < 0 || (s.pin && s.cpuCap > 1):
		return s, fmt.Errorf("-cpu-cap %g: want 0 (off) or a share of the servers' one core, e.g. 0.5", s.cpuCap)
	case s.rounds < 1 || s.conns < 1 || s.listeners < 1 || s.duration < time.Second:
		return s, errors.New("-rounds, -conns and -listeners must be at least 1 and -duration at least 1s")
	case s.edgeProcs < 0 || s.nginxWorkers < 0:
		return s, errors.New("-edge-gomaxprocs and -nginx-workers must not be negative")
	case strings.ContainsAny(s.tcpCC, "/. \n"):
		return s, fmt.Errorf("-tcp-cc %q is not a congestion control name", s.tcpCC)
	case s.shmemFolio != "" && !shmemFolioRe.MatchString(s.shmemFolio):
		return s, fmt.Errorf("-shmem-folio %q: want a size such as 64kB", s.shmemFolio)
	case s.pin && s.edgeProcs != 1 && realTime():
		// Two Go threads on one core under SCHED_FIFO: a spinning one
		// never lets the other run, and the edge livelocks at 100 % of
		// the core (seen: 12 minutes, the warm-up never answered).
		return s, errors.New("-edge-gomaxprocs other than 1 with -pin under a real-time policy (chrt) livelocks the edge on its one core: use -pin=false or no chrt")
	}
	for _, c := range s.nginxConfigs {
		if strings.ContainsAny(c, "/.") {
			return s, fmt.Errorf("-nginx-configs: %q is not a configuration name", c)
		}
	}
	return s, nil
}

// realTime reports whether this process runs under a real-time scheduling
// policy (chrt -f or -r), which the servers it starts inherit.
func realTime() bool {
	p, err := unix.SchedGetAttr(0, 0)
	return err == nil && (p.Policy == unix.SCHED_FIFO || p.Policy == unix.SCHED_RR)
}

// ccSysctl holds the congestion control new TCP sockets get.
const ccSysctl = "/proc/sys/net/ipv4/tcp_congestion_control"

// shmemFolioKnob is the setting that lets a memory file whose mapping asks
// for huge pages get folios of size (e.g. "64kB").
func shmemFolioKnob(size string) string {
	return "/sys/kernel/mm/transparent_hugepage/hugepages-" + size + "/shmem_enabled"
}

// setKnob writes value to the kernel setting at path (what names it in the
// log) and returns a func that puts the machine's back. A setting shown as
// a choice ("always [never]") is read as the word in brackets.
func setKnob(path, what, value string, log io.Writer) (func(), error) {
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	was := strings.TrimSpace(string(old))
	if i := strings.IndexByte(was, '['); i >= 0 {
		if j := strings.IndexByte(was[i:], ']'); j > 0 {
			was = was[i+1 : i+j]
		}
	}
	if was == value {
		return func() {}, nil
	}
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		return nil, err
	}
	fmt.Fprintf(log, "%s %s for the run (the machine's is %s; put back at the end)\n", what, value, was)
	return func() {
		if err := os.WriteFile(path, []byte(was), 0o644); err != nil {
			fmt.Fprintf(log, "putting %s %s back: %v\n", what, was, err)
		}
	}, nil
}

// confPath is the file of nginx configuration name.
func (s settings) confPath(name string) string {
	if name == "slice" {
		return filepath.Join(s.confDir, "nginx-edge.conf")
	}
	return filepath.Join(s.confDir, "nginx-edge-"+name+".conf")
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	s, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	tools := []string{s.riff, s.nginx, "ffmpeg"}
	if s.useWrk {
		tools = append(tools, s.wrk)
	}
	if s.pin {
		tools = append(tools, "taskset")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			hint := ""
			switch tool {
			case s.wrk:
				hint = " (Debian/Ubuntu: apt-get install wrk; or -wrk=false)"
			case "taskset":
				hint = " (util-linux; or -pin=false)"
			}
			return fmt.Errorf("needs %s%s: %w", tool, hint, err)
		}
	}
	for _, name := range s.nginxConfigs {
		if _, err := os.Stat(s.confPath(name)); err != nil {
			return fmt.Errorf("-nginx-configs %s: %w", name, err)
		}
	}
	var mounts cgroupMounts
	if s.cpuCap > 0 {
		data, err := os.ReadFile("/proc/mounts")
		if err != nil {
			return fmt.Errorf("-cpu-cap %g: %w", s.cpuCap, err)
		}
		mounts = findCgroupMounts(data, os.ReadFile)
		// Try one group now, so that a machine without cgroups fails fast.
		g, err := newCgroup(mounts, fmt.Sprintf("riff-bench-compare-%d-probe", os.Getpid()), s.cpuCap, s.cpuPeriod)
		if err != nil {
			return fmt.Errorf("-cpu-cap %g: cannot make a cgroup to cap the servers (%w); run as root on a machine with the cpu controller (cgroup v2 cpu.max, or v1 cpu and cpuacct), or pass -cpu-cap 0 to measure without a cap", s.cpuCap, err)
		}
		if err := g.remove(); err != nil {
			return err
		}
	}
	if s.tcpCC != "" {
		restore, err := setKnob(ccSysctl, "TCP congestion control", s.tcpCC, stderr)
		if err != nil {
			return fmt.Errorf("-tcp-cc %s: %w (run as root, or -tcp-cc \"\" to keep the machine's)", s.tcpCC, err)
		}
		defer restore()
	}
	if s.shmemFolio != "" {
		restore, err := setKnob(shmemFolioKnob(s.shmemFolio), "shmem folios of "+s.shmemFolio+" on advice:", "advise", stderr)
		if err != nil {
			return fmt.Errorf("-shmem-folio %s: %w (run as root, or -shmem-folio \"\" to keep the machine's)", s.shmemFolio, err)
		}
		defer restore()
	}
	if s.pin {
		// The generators take core 1; this process runs Go on one thread.
		if err := pinThreads(1); err != nil {
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
	c := &compare{s: s, mounts: mounts, log: stderr, ports: map[int]string{}, died: make(chan string, 8)}
	defer c.stopAll() // stops the servers, then removes their groups
	if err := c.setup(ctx); err != nil {
		return err
	}
	return c.measure(ctx, stdout)
}

// hasFlag reports whether args set flag name (-name or --name, with or
// without =value).
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		a, _, _ = strings.Cut(strings.TrimLeft(a, "-"), "=")
		if a == name {
			return true
		}
	}
	return false
}

// pinThreads moves every thread of this process to core (threads made
// later inherit it from the thread that makes them).
func pinThreads(core int) error {
	var set unix.CPUSet
	set.Set(core)
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return unix.SchedSetaffinity(0, &set)
	}
	for _, e := range ents {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}

// proc is a server this tool started; done closes when it has exited.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// server is an edge under test.
type server struct {
	name    string
	masters []string
	base    string // http://host:port, for wrk
	pid     int
	group   *cgroup // nil with -cpu-cap 0
	script  string  // wrk's Lua script
	targets int     // requests in the script
}

// cpu is the CPU time the server has used: its cgroup's, or from /proc
// (the process and its children) without one.
func (sv *server) cpu() time.Duration {
	if sv.group != nil {
		if d, err := sv.group.usage(); err == nil {
			return d
		}
	}
	pids := append([]int{sv.pid}, children(sv.pid)...)
	return time.Duration(cpuTicks(pids)) * time.Second / clockTicks
}

type compare struct {
	s      settings
	mounts cgroupMounts
	log    io.Writer
	procs  []proc
	groups []*cgroup
	ports  map[int]string
	died   chan string // the label and exit status of a server that exited

	servers       []*server // riff first, then the nginx configurations
	sink          *otlpSink // with -otlp-sink
	originMetrics string
	rate          float64 // of the fixed-rate load
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
	first := blobkey.VersionFolder(1, 1, 1, 1)
	if err := c.cmd(ctx, s.riff, "package", "-formats", "aac", "-prefix", first, wav, blobDir); err != nil {
		return err
	}
	var prefixes []string
	for i := 1; i <= s.songs; i++ {
		p := blobkey.VersionFolder(1, 1, int64(i), 1)
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
	riff := &server{name: "riff", base: "http://" + c.port(2)}
	c.servers = append(c.servers, riff)
	for i, name := range s.nginxConfigs {
		c.servers = append(c.servers, &server{name: "nginx-" + name, base: "http://" + c.port(10+i)})
	}
	for _, p := range prefixes {
		tok, err := signer.Mint(playtoken.Claims{Type: playtoken.TypePlay, Subject: "bench", Prefix: p}, 6*time.Hour)
		if err != nil {
			return err
		}
		riff.masters = append(riff.masters, riff.base+"/t/"+tok+"/"+p+blobkey.MasterName)
		for _, sv := range c.servers[1:] {
			sv.masters = append(sv.masters, sv.base+"/"+p+blobkey.MasterName)
		}
	}
	if s.cpuCap > 0 {
		for _, sv := range c.servers {
			g, err := newCgroup(c.mounts, fmt.Sprintf("riff-bench-compare-%d-%s", os.Getpid(), sv.name), s.cpuCap, s.cpuPeriod)
			if err != nil {
				return err
			}
			c.groups = append(c.groups, g)
			sv.group = g
		}
	}

	// The servers run from a copy with a name of its own: on a shared
	// machine, someone's `pkill -f "riff edge"` must not end this run.
	bin := filepath.Join(s.work, "riff-under-test")
	if err := c.cmd(ctx, "cp", s.riff, bin); err != nil {
		return err
	}

	const secret = "bench-secret"
	c.logf("starting riff origin %s, riff edge %s, %d nginx (servers on core 0: %v, CPU cap %s)", c.port(1), c.port(2), len(s.nginxConfigs), s.pin, c.capText())
	// The origin is not under test (the caches are warm, it idles) and not
	// capped, but it stays off the generators' core.
	if _, err := c.start(ctx, "origin", nil, nil, bin, "origin", "-listen", c.port(1), "-admin-listen", c.port(5),
		"-blob", blobDir, "-secret", secret, "-log-level", "warn"); err != nil {
		return err
	}
	var env []string
	if s.edgeProcs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(s.edgeProcs))
	}
	edgeArgs := []string{"edge", "-listen", c.port(2), "-admin-listen", c.port(4),
		"-origin", "http://" + c.port(1), "-origin-secret", secret, "-keys", filepath.Join(keys, playtoken.JWKSFile),
		"-cache-bytes", "1GiB", "-slice-bytes", "1MiB", "-log-level", "warn"}
	if s.edgeDisk {
		edgeArgs = append(edgeArgs, "-disk-cache", filepath.Join(s.work, "riff-disk"), "-disk-cache-bytes", "4GiB")
	}
	extra := s.edgeArgs
	if s.otlpSink && !hasFlag(extra, "otlp-endpoint") {
		if c.sink, err = startOTLPSink(); err != nil {
			return fmt.Errorf("-otlp-sink: %w", err)
		}
		extra = append([]string{"-otlp-endpoint", c.sink.URL}, extra...)
	}
	if len(extra) > 0 {
		c.logf("riff edge with %s", strings.Join(extra, " "))
	}
	edgeArgs = append(edgeArgs, extra...)
	if riff.pid, err = c.start(ctx, "edge", riff.group, env, bin, edgeArgs...); err != nil {
		return err
	}
	workers := "auto"
	if s.nginxWorkers > 0 {
		workers = strconv.Itoa(s.nginxWorkers)
	}
	for i, name := range s.nginxConfigs {
		sv := c.servers[1+i]
		prefix := filepath.Join(s.work, sv.name)
		for _, d := range []string{"logs", "cache", "tmp"} {
			if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
				return err
			}
		}
		conf, err := os.ReadFile(s.confPath(name))
		if err != nil {
			return err
		}
		conf, err = adaptConf(conf, map[string]string{
			"127.0.0.1:8083":         c.port(10 + i),
			"127.0.0.1:8081":         c.port(1),
			`"change-me"`:            `"` + secret + `"`,
			"worker_processes auto;": "worker_processes " + workers + ";",
		})
		if err != nil {
			return fmt.Errorf("%s: %w", s.confPath(name), err)
		}
		if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), conf, 0o644); err != nil {
			return err
		}
		global := "daemon off;"
		if os.Geteuid() == 0 { // workers would run as nobody and could not use the scratch folder
			global += " user root;"
		}
		if sv.pid, err = c.start(ctx, sv.name, sv.group, nil, s.nginx, "-p", prefix, "-c", filepath.Join(prefix, "nginx.conf"), "-g", global); err != nil {
			return err
		}
	}
	c.originMetrics = "http://" + c.port(5) + "/metrics"
	ready := []string{"http://" + c.port(5) + "/readyz", "http://" + c.port(4) + "/readyz"}
	for _, sv := range c.servers[1:] {
		ready = append(ready, sv.masters[0])
	}
	for _, u := range ready {
		if err := c.waitOK(ctx, u); err != nil {
			return err
		}
	}
	for _, sv := range c.servers {
		if err := c.checkGroup(sv); err != nil {
			return err
		}
	}
	return nil
}

// adaptConf replaces each key of repl in conf, which must contain it.
func adaptConf(conf []byte, repl map[string]string) ([]byte, error) {
	s := string(conf)
	for from, to := range repl {
		if !strings.Contains(s, from) {
			return nil, fmt.Errorf("no %s to replace", from)
		}
		s = strings.ReplaceAll(s, from, to)
	}
	return []byte(s), nil
}

// checkGroup makes sure that every process of the server (nginx: the
// master and its workers, cache manager and loader) is in its cgroup.
func (c *compare) checkGroup(sv *server) error {
	if sv.group == nil {
		return nil
	}
	pids := append([]int{sv.pid}, children(sv.pid)...)
	for _, pid := range pids {
		if !sv.group.contains(pid) {
			c.logf("%s: moving pid %d into %s", sv.name, pid, sv.group)
			if err := sv.group.add(pid); err != nil {
				return fmt.Errorf("%s: %w", sv.name, err)
			}
		}
	}
	c.logf("%s: %d processes in %s", sv.name, len(pids), sv.group)
	return nil
}

func (c *compare) capText() string {
	if c.s.cpuCap <= 0 {
		return "none"
	}
	return fmt.Sprintf("%.2f cores per %s", c.s.cpuCap, c.s.cpuPeriod)
}

// start runs a server in the background: on core 0 when pinning, in group
// from its first instruction when there is one.
func (c *compare) start(ctx context.Context, label string, group *cgroup, env []string, name string, args ...string) (int, error) {
	if c.s.pin {
		args = append([]string{"-c", "0", name}, args...)
		name = "taskset"
	}
	if group != nil {
		name, args = group.inGroup(name, args)
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
		c.died <- label + " (" + cmd.ProcessState.String() + ")"
	}()
	return cmd.Process.Pid, ctx.Err()
}

// stopAll stops the servers (SIGTERM to each process group, SIGKILL after
// 10 s), waits for them, and removes their cgroups.
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
	for _, g := range c.groups {
		if err := g.remove(); err != nil {
			c.logf("%v", err)
		}
	}
	if c.sink != nil {
		c.sink.Close()
		c.logf("otlp sink: riff edge exported %d batches, %d bytes of spans", c.sink.exports.Load(), c.sink.bytes.Load())
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

// alive returns an error when a server has exited (before stopAll): a
// load that ran meanwhile measured refused connections.
func (c *compare) alive() error {
	select {
	case label := <-c.died:
		return fmt.Errorf("%s exited during the measurement (killed from outside?); its numbers would be connection errors", label)
	default:
		return nil
	}
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
