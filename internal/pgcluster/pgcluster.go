package pgcluster

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
)

// Cluster is a running primary and its standbys. Its methods are safe for
// concurrent use; Close is idempotent.
type Cluster struct {
	Primary  *Node
	Standbys []*Node

	bin   string // folder of initdb, pg_ctl, pg_basebackup
	dir   string // scratch folder holding every data folder
	owner *user.User

	closeOnce sync.Once
}

// Node is one server of a Cluster.
type Node struct {
	Name string // "primary", "standby0", …
	Port int
	dir  string // data folder
	c    *Cluster

	mu      sync.Mutex
	running bool
	started bool // once: its port is in use by clients
}

// Options shape a Cluster. The zero value is one primary, no standby.
type Options struct {
	// Standbys is how many hot standbys to clone from the primary.
	Standbys int
	// Database is created on the primary (with pg_trgm, which Riff's
	// schema needs) before the standbys are cloned; default "riff".
	Database string
}

// ForTest starts a Cluster for t and stops it, removing its folders, at
// t's cleanup. Without the server binaries it skips t, or fails it when
// RIFF_TEST_POSTGRES is set (CI must run the topology).
func ForTest(t testing.TB, opts Options) *Cluster {
	t.Helper()
	if _, err := FindBin(); err != nil {
		if os.Getenv("RIFF_TEST_POSTGRES") != "" {
			t.Fatalf("pgcluster: RIFF_TEST_POSTGRES is set but %v", err)
		}
		t.Skipf("SKIPPING the PostgreSQL replica topology: %v (install Debian's postgresql, or set RIFF_TEST_POSTGRES to make this a failure)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("pgcluster: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// FindBin returns the folder of the PostgreSQL server binaries: Debian's
// newest /usr/lib/postgresql/<version>/bin, else the folder of pg_ctl on
// PATH.
func FindBin() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "pg_ctl")) && isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_basebackup")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		d := filepath.Dir(p)
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "pg_basebackup")) {
			return d, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries (initdb, pg_ctl, pg_basebackup) in /usr/lib/postgresql/*/bin or on PATH")
}

func version(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// Start creates and starts a primary and opts.Standbys standbys streaming
// from it, and waits until every standby has replayed the primary's
// setup. On error it removes what it made.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	bin, err := FindBin()
	if err != nil {
		return nil, err
	}
	if opts.Database == "" {
		opts.Database = "riff"
	}
	dir, err := os.MkdirTemp("", "riff-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin, dir: dir}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if os.Getuid() == 0 {
		// PostgreSQL will not run as root: its folders belong to postgres.
		if c.owner, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root needs the postgres OS user: %w", err)
		}
		if err := c.chown(dir); err != nil {
			return nil, err
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	c.Primary = &Node{Name: "primary", dir: filepath.Join(dir, "primary"), c: c}
	if c.Primary.Port, err = freePort(); err != nil {
		return nil, err
	}
	if err := c.run(ctx, "initdb", "-D", c.Primary.dir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync"); err != nil {
		return nil, err
	}
	if err := c.Primary.configure(); err != nil {
		return nil, err
	}
	if err := c.Primary.Start(ctx); err != nil {
		return nil, err
	}
	admin, err := sql.Open("pgx", c.Primary.DSN("postgres"))
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+opts.Database); err != nil {
		return nil, fmt.Errorf("create database: %w", err)
	}
	db, err := sql.Open("pgx", c.Primary.DSN(opts.Database))
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "CREATE EXTENSION IF NOT EXISTS pg_trgm"); err != nil {
		return nil, fmt.Errorf("pg_trgm: %w", err)
	}
	for i := range opts.Standbys {
		n := &Node{Name: "standby" + strconv.Itoa(i), dir: filepath.Join(dir, "standby"+strconv.Itoa(i)), c: c}
		if n.Port, err = freePort(); err != nil {
			return nil, err
		}
		if err := c.run(ctx, "pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Primary.Port), "-U", "postgres",
			"-D", n.dir, "-R", "-X", "stream", "-c", "fast", "--no-sync"); err != nil {
			return nil, err
		}
		if err := n.configure(); err != nil {
			return nil, err
		}
		if err := n.Start(ctx); err != nil {
			return nil, err
		}
		c.Standbys = append(c.Standbys, n)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// configure appends the test settings to the node's postgresql.conf (the
// last setting of a name wins, so a standby overrides its primary's copy).
func (n *Node) configure() error {
	conf := fmt.Sprintf(`
# pgcluster: a throwaway test server
port = %d
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
shared_buffers = 16MB
max_connections = 60
fsync = off
full_page_writes = off
wal_level = replica
max_wal_senders = 8
# Keep WAL for standbys that connect late or are stopped by a test: the
# second pg_basebackup's checkpoint could otherwise recycle the segment the
# first standby had yet to stream, which then never caught up (seen in CI).
wal_keep_size = 1GB
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
logging_collector = off
`, n.Port, n.c.dir)
	return n.appendConf(conf)
}

// appendConf appends settings to the node's postgresql.conf.
func (n *Node) appendConf(conf string) error {
	f, err := os.OpenFile(filepath.Join(n.dir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// DSN is a connection string to database db on the node.
func (n *Node) DSN(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", n.Port, db)
}

// Start starts the node's server and waits until it accepts connections.
func (n *Node) Start(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.running {
		return nil
	}
	for attempt := 0; ; attempt++ {
		err := n.startOnce(ctx)
		if err == nil {
			n.running = true
			return nil
		}
		// The free port was taken between our look and the server's bind:
		// take another (only the first start: later ones keep the DSN).
		if attempt < 3 && !n.started && strings.Contains(err.Error(), "already in use") {
			if n.Port, err = freePort(); err != nil {
				return err
			}
			if err := n.appendConf(fmt.Sprintf("port = %d\n", n.Port)); err != nil {
				return err
			}
			continue
		}
		return err
	}
}

// startOnce runs pg_ctl start and waits until the server answers. A
// standby answers once it has replayed a snapshot of the primary's running
// transactions, which the primary logs at a checkpoint or every 15 s: the
// primary is asked for checkpoints meanwhile.
func (n *Node) startOnce(ctx context.Context) error {
	kicked := make(chan struct{})
	defer close(kicked)
	if n != n.c.Primary {
		go func() {
			for {
				_ = n.c.Primary.Exec(ctx, "postgres", "CHECKPOINT")
				select {
				case <-kicked:
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
	}
	if err := n.c.run(ctx, "pg_ctl", "-D", n.dir, "-l", n.dir+".log", "-w", "-t", "120", "start"); err != nil {
		return fmt.Errorf("%s: %w (log: %s)", n.Name, err, tail(n.dir+".log"))
	}
	n.started = true
	return nil
}

// Stop stops the node's server (fast shutdown: sessions are ended, no
// wait for clients) and waits until it is gone.
func (n *Node) Stop(ctx context.Context) error { return n.stop(ctx, "fast") }

func (n *Node) stop(ctx context.Context, mode string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.running {
		return nil
	}
	if err := n.c.run(ctx, "pg_ctl", "-D", n.dir, "-m", mode, "-w", "-t", "60", "stop"); err != nil {
		return fmt.Errorf("%s: %w", n.Name, err)
	}
	n.running = false
	return nil
}

// Exec runs a statement on the node's database db.
func (n *Node) Exec(ctx context.Context, db, query string) error {
	conn, err := sql.Open("pgx", n.DSN(db))
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = conn.ExecContext(ctx, query)
	return err
}

// PauseReplay pauses WAL replay on a standby (pg_wal_replay_pause): it
// keeps answering reads from an older snapshot while its lag grows.
func (n *Node) PauseReplay(ctx context.Context) error {
	return n.Exec(ctx, "postgres", "SELECT pg_wal_replay_pause()")
}

// ResumeReplay resumes WAL replay on a standby.
func (n *Node) ResumeReplay(ctx context.Context) error {
	return n.Exec(ctx, "postgres", "SELECT pg_wal_replay_resume()")
}

// WaitReplayed waits until every running standby has replayed the
// primary's WAL as of the call.
func (c *Cluster) WaitReplayed(ctx context.Context) error {
	p, err := sql.Open("pgx", c.Primary.DSN("postgres"))
	if err != nil {
		return err
	}
	defer p.Close()
	var target string
	if err := p.QueryRowContext(ctx, "SELECT pg_current_wal_flush_lsn()::text").Scan(&target); err != nil {
		return fmt.Errorf("primary lsn: %w", err)
	}
	for _, n := range c.Standbys {
		n.mu.Lock()
		running := n.running
		n.mu.Unlock()
		if !running {
			continue
		}
		db, err := sql.Open("pgx", n.DSN("postgres"))
		if err != nil {
			return err
		}
		for {
			var ok bool
			err := db.QueryRowContext(ctx, "SELECT COALESCE(pg_last_wal_replay_lsn() >= $1::pg_lsn, false)", target).Scan(&ok)
			if err == nil && ok {
				break
			}
			select {
			case <-ctx.Done():
				db.Close()
				return fmt.Errorf("%s did not replay up to %s: %w (last error: %v)", n.Name, target, ctx.Err(), err)
			case <-time.After(50 * time.Millisecond):
			}
		}
		db.Close()
	}
	return nil
}

// Close stops every server at once (immediate shutdown) and removes the
// scratch folder.
func (c *Cluster) Close() {
	c.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		nodes := append([]*Node{}, c.Standbys...)
		if c.Primary != nil {
			nodes = append(nodes, c.Primary)
		}
		for _, n := range nodes {
			_ = n.stop(ctx, "immediate")
		}
		_ = os.RemoveAll(c.dir)
	})
}

// run runs a server binary, as the postgres OS user when we are root.
func (c *Cluster) run(ctx context.Context, name string, args ...string) error {
	path := filepath.Join(c.bin, name)
	var cmd *exec.Cmd
	if c.owner != nil {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = c.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (c *Cluster) chown(path string) error {
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	return os.Chown(path, uid, gid)
}

// freePort returns a loopback TCP port nobody listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the end of a log file, for errors.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}
