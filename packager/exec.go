package packager

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// stderrTail is how much of a tool's stderr an ExecError keeps.
const stderrTail = 4 << 10

// ExecError reports a failed ffmpeg or ffprobe run.
type ExecError struct {
	Tool   string // "ffmpeg" or "ffprobe"
	Err    error  // the exec error, or context.DeadlineExceeded when killed for time
	Stderr string // the last few KiB of its stderr
}

func (e *ExecError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Tool, e.Err)
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + strings.ReplaceAll(s, "\n", " | ")
	}
	return msg
}

func (e *ExecError) Unwrap() error { return e.Err }

// exec runs bin with args, never through a shell, with no stdin, an empty
// environment, and a deadline after which the process is killed. It is the
// one place the packager starts a process: on Linux the process gets a
// process group of its own, killed whole on cancel, and dies when we do
// (see contain). stdout goes to stdout (discarded if nil); the tail of
// stderr is kept for the error.
func (p *Packager) exec(ctx context.Context, timeout time.Duration, bin string, args []string, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	contain(cmd)         // dies with us; killed with its process group on cancel
	cmd.Env = []string{} // nothing from our environment (proxies, ffmpeg options)
	cmd.Stdin = nil      // /dev/null
	cmd.WaitDelay = 5 * time.Second
	if stdout == nil {
		stdout = io.Discard
	}
	cmd.Stdout = stdout
	tail := &tailBuffer{max: stderrTail}
	cmd.Stderr = tail
	err := cmd.Run()
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return &ExecError{Tool: filepath.Base(bin), Err: err, Stderr: tail.String()}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	n := len(b)
	if len(b) >= t.max {
		t.buf = append(t.buf[:0], b[len(b)-t.max:]...)
		return n, nil
	}
	if over := len(t.buf) + len(b) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.buf = append(t.buf, b...)
	return n, nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// limitedWriter fails once more than n bytes were written.
type limitedWriter struct {
	w io.Writer
	n int64
}

var errTooMuchOutput = errors.New("too much output")

func (l *limitedWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > l.n {
		return 0, errTooMuchOutput
	}
	l.n -= int64(len(b))
	return l.w.Write(b)
}

// progressWriter parses ffmpeg's `-progress pipe:1` key=value stream and
// reports out_time as it advances.
type progressWriter struct {
	pr     *io.PipeWriter
	done   chan struct{}
	report func(time.Duration)
}

func newProgressWriter(report func(time.Duration)) *progressWriter {
	r, w := io.Pipe()
	pw := &progressWriter{pr: w, done: make(chan struct{}), report: report}
	go func() {
		defer close(pw.done)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if d, ok := parseProgressLine(sc.Text()); ok && report != nil {
				report(d)
			}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return pw
}

func (p *progressWriter) Write(b []byte) (int, error) { return p.pr.Write(b) }

// Close ends the stream and waits until every line was reported.
func (p *progressWriter) Close() error {
	err := p.pr.Close()
	<-p.done
	return err
}

// parseProgressLine reads "out_time_us=1234567" (or out_time_ms, which
// ffmpeg also reports in microseconds).
func parseProgressLine(line string) (time.Duration, bool) {
	k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
	if !ok || (k != "out_time_us" && k != "out_time_ms") {
		return 0, false
	}
	us, err := strconv.ParseInt(v, 10, 64)
	if err != nil || us < 0 {
		return 0, false
	}
	return time.Duration(us) * time.Microsecond, true
}
