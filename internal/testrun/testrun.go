// Package testrun holds the helpers Riff's tests share: a log buffer safe
// for concurrent writers, a free loopback address, golden files refreshed
// with -update, the check for external tools such as ffmpeg, fixtures made
// once per test binary, and the check of a command's flag errors
// (WantFlagError).
//
// Only _test.go files import it. It must not import any riff package (no
// command or daemon, nor internal ones), so that every package's tests,
// internal tests included, can use it without an import cycle.
package testrun

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// LockedBuffer is a bytes.Buffer safe for concurrent use: hand it to a
// logger or a daemon's Run as stdout or stderr and read it with String while
// they write. The zero value is ready to use.
type LockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (l *LockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns a copy of what has been written so far.
func (l *LockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// FreeAddr returns a loopback address ("127.0.0.1:port") that was free a
// moment ago, for a daemon whose address must be known before it starts.
// Prefer listening on "127.0.0.1:0" when the server can be handed the
// listener: another process may take the port in between.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

var update = flag.Bool("update", false, "rewrite golden files under testdata/ (and other generated files the tests check)")

// Update reports whether the test binary runs with -update: golden files
// are rewritten from the current output instead of compared.
func Update() bool { return *update }

// Golden compares got with the file testdata/name of the package under
// test, or writes got there (creating folders) when the tests run with
// -update. Review golden diffs like code.
func Golden(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

// RequireTool returns the path of the program name on PATH. When it is
// missing, the test is skipped, loudly, on a developer's machine, and fails
// when the CI environment variable is set (CI installs every tool the tests
// use, so a missing one there is a broken CI image, not a reason to skip).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is not on PATH, and CI is set: the CI image must install it (make test does)", name)
	}
	t.Skipf("!!!!! SKIPPING: %s is not on PATH; install it to run this test (make test does) !!!!!", name)
	return ""
}

// RequireFFmpeg is RequireTool for ffmpeg and ffprobe, which the media
// tests need together. It returns the path of ffmpeg.
func RequireFFmpeg(t testing.TB) string {
	t.Helper()
	RequireTool(t, "ffprobe")
	return RequireTool(t, "ffmpeg")
}

// Fixture is test content that is costly to make (media encoded with
// ffmpeg, say) and is therefore made once per test binary, on first use,
// in a temporary folder of its own. Declare one as a package variable and
// call Remove from TestMain after m.Run. A Fixture is safe for concurrent
// use.
type Fixture struct {
	once     sync.Once
	tmp, dir string
	err      error
}

// Dir returns the fixture's folder, calling build on first use with a new
// temporary folder (named after pattern, as in os.MkdirTemp) to fill; build
// returns the folder the tests use, tmp or one below it. It fails the test
// when build failed, now or on first use.
func (f *Fixture) Dir(t testing.TB, pattern string, build func(tmp string) (string, error)) string {
	t.Helper()
	f.once.Do(func() {
		if f.tmp, f.err = os.MkdirTemp("", pattern); f.err == nil {
			f.dir, f.err = build(f.tmp)
		}
	})
	if f.err != nil {
		t.Fatal(f.err)
	}
	return f.dir
}

// Remove deletes the fixture's temporary folder, if it was made.
func (f *Fixture) Remove() {
	if f.tmp != "" {
		os.RemoveAll(f.tmp)
	}
}

// RunFFmpeg runs ffmpeg with args (never through a shell), for making test
// media; the error carries ffmpeg's output. Safe to call from any
// goroutine.
func RunFFmpeg(args ...string) error {
	if out, err := exec.Command("ffmpeg", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("ffmpeg %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// FFmpeg is RunFFmpeg that fails the test on error.
func FFmpeg(t testing.TB, args ...string) {
	t.Helper()
	if err := RunFFmpeg(args...); err != nil {
		t.Fatal(err)
	}
}

// SetFLACSamples rewrites the total-samples field of the STREAMINFO block
// of the FLAC file at path (the first metadata block, as ffmpeg writes it):
// a file whose header lies about its length, for tests of what a file
// really holds.
func SetFLACSamples(t testing.TB, path string, samples uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 42 || string(b[:4]) != "fLaC" || b[4]&0x7f != 0 {
		t.Fatalf("%s does not start with a STREAMINFO block", path)
	}
	// 36 bits: the low nibble of byte 21, then bytes 22..25.
	b[21] = b[21]&0xf0 | byte(samples>>32)&0x0f
	b[22], b[23], b[24], b[25] = byte(samples>>24), byte(samples>>16), byte(samples>>8), byte(samples)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// StartChild runs the test named test of the current test binary in a
// child process with env added to the environment, its stderr going to
// stderr: a daemon a test can kill -9 (the child's test finds its setup in
// env). The child is killed when the test ends, if it still runs.
func StartChild(t testing.TB, test string, stderr io.Writer, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	return cmd
}

// Clock is a settable clock for tests, to hand to a daemon or a store as
// its now function: it starts at 2025-06-01 12:00 UTC and moves only with
// Advance. It is safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a Clock at 2025-06-01 12:00 UTC.
func NewClock() *Clock {
	return &Clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Main runs the tests of a package whose TestMain has fixtures: m.Run,
// then each fixture's Remove, then it exits with m.Run's code.
//
//	func TestMain(m *testing.M) { testrun.Main(m, &media) }
func Main(m *testing.M, fixtures ...*Fixture) {
	code := m.Run()
	for _, f := range fixtures {
		f.Remove()
	}
	os.Exit(code)
}

// Stopper returns the stop function of something a test runs in a
// goroutine (a daemon's Run): it calls cancel and waits up to timeout for
// the result on done. It is idempotent (later calls return nil) and also
// runs at the test's cleanup.
func Stopper(t testing.TB, cancel func(), done <-chan error, timeout time.Duration) func() error {
	var once sync.Once
	stop := func() (err error) {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(timeout):
				err = fmt.Errorf("not stopped %v after cancel", timeout)
			}
		})
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}
