package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options say what Start runs.
type Options struct {
	Riff    string // the riff binary
	HAProxy string // the haproxy binary
	// Config is the HAProxy configuration to Render (configs/haproxy-lb.cfg).
	Config []byte
	// DB is every catalogd's -db: a PostgreSQL URL (several catalogd on
	// one SQLite file are not a supported topology).
	DB        string
	Dir       string // scratch folder: keys, blobs, spools, logs, the rendered configuration
	Instances int    // catalogd processes (at least 1)
	// Args are more catalogd flags, given to every instance after the
	// ones Start sets (-listen, -db, -keys, -blob, -upload-dir,
	// -client-ip-header).
	Args []string
	// Ready bounds each wait for readiness (default 60 s).
	Ready time.Duration
}

// Cluster is a running topology. Its methods are safe for concurrent use.
type Cluster struct {
	URL      string // the balancer: http://127.0.0.1:PORT
	AdminURL string // HAProxy's stats and metrics: http://127.0.0.1:PORT

	opts      Options
	keys      string
	haproxy   *exec.Cmd
	hpDone    chan struct{} // closed when haproxy exits
	haproxyLo string        // its log file
	mu        sync.Mutex
	inst      []*instance
}

type instance struct {
	addr string // 127.0.0.1:PORT, kept across restarts
	dir  string
	cmd  *exec.Cmd // nil while stopped
	done chan struct{}
}

// Start generates signing keys (riff keygen), starts the catalogd one by
// one (the first applies the migrations), each ready (/readyz 200), then
// HAProxy, and returns once HAProxy sees every instance UP. On error it
// stops what it started. Close stops everything.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Instances < 1 {
		return nil, errors.New("cluster: at least one instance")
	}
	if opts.Ready <= 0 {
		opts.Ready = time.Minute
	}
	c := &Cluster{opts: opts, keys: filepath.Join(opts.Dir, "keys")}
	if out, err := exec.CommandContext(ctx, opts.Riff, "keygen", "-dir", c.keys).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cluster: riff keygen: %v: %s", err, out)
	}
	var servers []string
	for i := range opts.Instances {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		dir := filepath.Join(opts.Dir, fmt.Sprintf("catalogd%d", i+1))
		if err := os.MkdirAll(filepath.Join(dir, "spool"), 0o700); err != nil {
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.inst = append(c.inst, &instance{addr: addr, dir: dir})
		servers = append(servers, addr)
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c.URL, c.AdminURL = "http://"+listen, "http://"+admin
	conf, err := Render(opts.Config, listen, admin, servers)
	if err != nil {
		return nil, err
	}
	confPath := filepath.Join(opts.Dir, "haproxy.cfg")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	for i := range c.inst {
		if err := c.Restart(ctx, i); err != nil {
			c.Close()
			return nil, err
		}
	}
	c.haproxyLo = filepath.Join(opts.Dir, "haproxy.log")
	c.haproxy, err = startLogged(opts.HAProxy, c.haproxyLo, "-db", "-f", confPath)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("cluster: haproxy: %w", err)
	}
	c.hpDone = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(c.haproxy, c.hpDone)
	ctx, cancel := context.WithTimeout(ctx, opts.Ready)
	defer cancel()
	for {
		states, err := c.ServerStates(ctx)
		up := 0
		for _, s := range states {
			if s == "UP" {
				up++
			}
		}
		if err == nil && up == len(c.inst) {
			return c, nil
		}
		select {
		case <-c.hpDone:
			c.Close()
			return nil, fmt.Errorf("cluster: haproxy exited at start; its log:\n%s", readFile(c.haproxyLo))
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("cluster: haproxy never saw every instance up (%v, %v); its log:\n%s", states, err, readFile(c.haproxyLo))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Addr returns the address of instance i (0-based; the balancer names it
// catalogd<i+1>). It stays the same across Kill and Restart.
func (c *Cluster) Addr(i int) string { return c.inst[i].addr }

// Log returns what instance i wrote to stderr, all runs.
func (c *Cluster) Log(i int) string { return readFile(filepath.Join(c.inst[i].dir, "stderr.log")) }

// HAProxyLog returns HAProxy's log (one line per request: option httplog).
func (c *Cluster) HAProxyLog() string { return readFile(c.haproxyLo) }

// UploadDir returns instance i's -upload-dir.
func (c *Cluster) UploadDir(i int) string { return filepath.Join(c.inst[i].dir, "spool") }

// Kill sends SIGKILL to instance i and waits for it to exit: no shutdown
// runs, requests in flight are cut.
func (c *Cluster) Kill(i int) error {
	c.mu.Lock()
	in := c.inst[i]
	cmd := in.cmd
	in.cmd = nil
	c.mu.Unlock()
	if cmd == nil {
		return fmt.Errorf("cluster: catalogd%d is not running", i+1)
	}
	if err := cmd.Process.Kill(); err != nil {
		return fmt.Errorf("cluster: kill catalogd%d: %w", i+1, err)
	}
	<-in.done
	return nil
}

// Restart starts instance i (again) on its address and waits until its
// /readyz answers 200.
func (c *Cluster) Restart(ctx context.Context, i int) error {
	c.mu.Lock()
	in := c.inst[i]
	if in.cmd != nil {
		c.mu.Unlock()
		return fmt.Errorf("cluster: catalogd%d is running", i+1)
	}
	args := []string{"catalogd", "-listen", in.addr, "-db", c.opts.DB, "-keys", c.keys,
		"-blob", filepath.Join(c.opts.Dir, "blob"), "-upload-dir", filepath.Join(in.dir, "spool"),
		"-client-ip-header", "X-Forwarded-For"}
	cmd, err := startLogged(c.opts.Riff, filepath.Join(in.dir, "stderr.log"), append(args, c.opts.Args...)...)
	if err != nil {
		c.mu.Unlock()
		return fmt.Errorf("cluster: catalogd%d: %w", i+1, err)
	}
	in.cmd, in.done = cmd, make(chan struct{})
	done := in.done
	go func() { cmd.Wait(); close(done) }()
	c.mu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, c.opts.Ready)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+in.addr+"/readyz", nil)
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-done:
			return fmt.Errorf("cluster: catalogd%d exited at start: %s", i+1, c.Log(i))
		case <-ctx.Done():
			return fmt.Errorf("cluster: catalogd%d not ready: %w; its log:\n%s", i+1, ctx.Err(), c.Log(i))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ServerStates returns HAProxy's state of each catalogd (name → "UP",
// "DOWN", "no check", or a transition such as "UP 1/2"), from its stats
// page as CSV.
func (c *Cluster) ServerStates(ctx context.Context) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.AdminURL+"/stats;csv", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("cluster: haproxy stats: %s", resp.Status)
	}
	return parseStats(resp.Body)
}

// parseStats reads HAProxy's stats CSV: the status of each server of the
// backend catalogd.
func parseStats(r io.Reader) (map[string]string, error) {
	sc := bufio.NewScanner(r)
	col := map[string]int{}
	states := map[string]string{}
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# "); ok {
			for i, name := range strings.Split(rest, ",") {
				col[name] = i
			}
			continue
		}
		f := strings.Split(line, ",")
		px, sv, st := col["pxname"], col["svname"], col["status"]
		if len(col) == 0 || len(f) <= max(px, sv, st) {
			continue
		}
		if f[px] == "catalogd" && f[sv] != "BACKEND" && f[sv] != "FRONTEND" {
			states[f[sv]] = f[st]
		}
	}
	if len(col) == 0 {
		return nil, errors.New("cluster: haproxy stats: no CSV header")
	}
	return states, sc.Err()
}

// Close stops HAProxy and every catalogd still running (SIGTERM, then
// SIGKILL after 10 s). It is idempotent.
func (c *Cluster) Close() error {
	var errs []error
	c.mu.Lock()
	hp, hpDone := c.haproxy, c.hpDone
	c.haproxy = nil
	var running []*instance
	for _, in := range c.inst {
		if in.cmd != nil {
			running = append(running, in)
		}
	}
	c.mu.Unlock()
	if hp != nil {
		errs = append(errs, stop(hp, hpDone))
	}
	for _, in := range running {
		c.mu.Lock()
		cmd := in.cmd
		in.cmd = nil
		c.mu.Unlock()
		if cmd != nil {
			errs = append(errs, stop(cmd, in.done))
		}
	}
	return errors.Join(errs...)
}

// stop sends SIGTERM and waits for the exit (done: closed by the goroutine
// that waits on cmd), SIGKILL after 10 s.
func stop(cmd *exec.Cmd, done chan struct{}) error {
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("cluster: %s did not stop on SIGTERM within 10 s", filepath.Base(cmd.Path))
	}
}

// startLogged starts bin with args, stdout and stderr appended to logPath,
// killed if this process dies (see dieWithParent).
func startLogged(bin, logPath string, args ...string) (*exec.Cmd, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return cmd, nil
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cluster: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
