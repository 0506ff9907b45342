package edge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"riff/internal/testrun"
)

type logLine struct {
	Time         time.Time `json:"time"`
	Client       string    `json:"client"`
	ForwardedFor *string   `json:"forwarded_for"`
	Method       string    `json:"method"`
	Key          string    `json:"key"`
	Range        string    `json:"range"`
	Status       int       `json:"status"`
	Cache        string    `json:"cache"`
	Sub          string    `json:"sub"`
	Bytes        int64     `json:"bytes"`
	TTFB         int64     `json:"ttfb_us"`
	Dur          int64     `json:"dur_us"`
}

func parseLog(t *testing.T, b []byte) []logLine {
	t.Helper()
	var out []logLine
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var l logLine
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, l)
	}
	return out
}

func bufferLog(t *testing.T, buf io.Writer, trusted ...string) *AccessLog {
	t.Helper()
	var ps []netip.Prefix
	for _, p := range trusted {
		ps = append(ps, netip.MustParsePrefix(p))
	}
	l, err := NewAccessLog(func() (io.WriteCloser, error) { return nopCloser{buf}, nil }, ps, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// TestAccessLogLinesMatchRequests: one JSON line per request, with what
// was asked and answered, the token's subject and never the token.
func TestAccessLogLinesMatchRequests(t *testing.T) {
	const S = 64 << 10
	media := newDistinctMedia(t, 1, 3*S)
	for _, trusted := range []bool{true, false} {
		t.Run(fmt.Sprintf("trusted=%v", trusted), func(t *testing.T) {
			buf := &testrun.LockedBuffer{}
			proxies := []string{"10.0.0.0/8"}
			if trusted {
				proxies = append(proxies, "127.0.0.1/32")
			}
			alog := bufferLog(t, buf, proxies...)
			h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, cfg: func(c *Config) { c.AccessLog = alog }})
			tok := h.play(distinctSong(0), 0)
			other := h.play("artists/2/", 0)
			key := media.key(0)
			type sent struct {
				method, url, rng string
				status           int
				cache            string
				bytes            int64
				sub              string
			}
			reqs := []sent{
				{"GET", h.object(tok, key), "bytes=0-99", 206, "MISS", 100, "u1"},
				{"GET", h.object(tok, key), "bytes=0-99", 206, "HIT", 100, "u1"},
				{"GET", h.object(tok, key), fmt.Sprintf("bytes=%d-%d", S-10, 2*S+9), 206, "MISS", S + 20, "u1"},
				{"HEAD", h.object(tok, key), "", 200, "HIT", 0, "u1"},
				{"GET", h.object(tok, key), "bytes=99999999-", 416, "HIT", int64(len(problem416)), "u1"},
				{"GET", h.object(other, key), "bytes=0-9", 403, "", -1, "u1"}, // a valid token, another prefix
				{"GET", h.object("not.a.token", key), "bytes=0-9", 403, "", -1, ""},
			}
			for _, r := range reqs {
				hdr := []string{"X-Forwarded-For", "203.0.113.7, 10.1.2.3"}
				if r.rng != "" {
					hdr = append(hdr, "Range", r.rng)
				}
				if got := h.do(r.method, r.url, hdr...); got.status != r.status {
					t.Fatalf("%s %s: %d, want %d", r.method, r.rng, got.status, r.status)
				}
			}
			h.stop() // closes the log: every line is written
			if strings.Contains(buf.String(), tok) || strings.Contains(buf.String(), other) {
				t.Fatal("the access log holds a token")
			}
			lines := parseLog(t, []byte(buf.String()))
			if len(lines) != len(reqs) {
				t.Fatalf("%d lines for %d requests:\n%s", len(lines), len(reqs), buf.String())
			}
			for i, r := range reqs {
				l := lines[i]
				if l.Method != r.method || l.Key != key || l.Range != r.rng || l.Status != r.status || l.Cache != r.cache ||
					(r.bytes >= 0 && l.Bytes != r.bytes) || l.Sub != r.sub || l.Client != "127.0.0.1" {
					t.Errorf("line %d = %+v, want %+v", i, l, r)
				}
				if l.Dur < l.TTFB || l.TTFB < 0 || time.Since(l.Time) > time.Minute {
					t.Errorf("line %d: times %v, ttfb %d µs, duration %d µs", i, l.Time, l.TTFB, l.Dur)
				}
				if trusted != (l.ForwardedFor != nil) || (trusted && *l.ForwardedFor != "203.0.113.7, 10.1.2.3") {
					t.Errorf("line %d: forwarded_for %v with the proxy trusted %v", i, l.ForwardedFor, trusted)
				}
			}
		})
	}
}

// blockingWriter blocks every Write until released.
type blockingWriter struct {
	release chan struct{}
	once    sync.Once
}

func (w *blockingWriter) Write(p []byte) (int, error) { <-w.release; return len(p), nil }
func (w *blockingWriter) Close() error                { return nil }
func (w *blockingWriter) unblock()                    { w.once.Do(func() { close(w.release) }) }

// TestBlockedAccessLogNeverBlocksServing: a log whose writes hang (a stuck
// disk) costs dropped lines, never a request.
func TestBlockedAccessLogNeverBlocksServing(t *testing.T) {
	const S = 64 << 10
	media := newDistinctMedia(t, 1, 3*S)
	w := &blockingWriter{release: make(chan struct{})}
	defer w.unblock()
	alog, err := NewAccessLog(func() (io.WriteCloser, error) { return w, nil }, nil, 2048, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, cfg: func(c *Config) { c.AccessLog = alog }})
	tok := h.play(distinctSong(0), 0)
	const n = 200
	for i := range n {
		lo := int64(i * 100)
		checkRange(t, h, media, []string{tok}, 0, fmt.Sprintf("bytes=%d-%d", lo, lo+S))
	}
	// Every request was answered. The writer hangs writing its first
	// batch; 2 KiB of lines wait; the rest were dropped.
	st := alog.Stats()
	if st.Dropped == 0 || st.Lines != 0 {
		t.Fatalf("with the writer stuck: %+v", st)
	}
	if got := h.metric("riff_edge_access_log_dropped_total"); got != float64(st.Dropped) {
		t.Fatalf("riff_edge_access_log_dropped_total = %v, want %d", got, st.Dropped)
	}
	w.unblock()
}

// TestAccessLogReopen: after the file is moved (logrotate), Reopen makes
// the next lines go to a new file at the path.
func TestAccessLogReopen(t *testing.T) {
	const S = 64 << 10
	media := newDistinctMedia(t, 1, 3*S)
	path := filepath.Join(t.TempDir(), "access.log")
	alog, err := NewAccessLog(AccessLogFile(path, nil), nil, 0, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, harnessOptions{root: media.root, sliceBytes: S, cfg: func(c *Config) { c.AccessLog = alog }})
	tok := h.play(distinctSong(0), 0)
	waitLines := func(n int64) {
		deadline := time.Now().Add(20 * time.Second)
		for alog.Stats().Lines < n {
			if time.Now().After(deadline) {
				t.Fatalf("lines written: %+v, want %d", alog.Stats(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	checkRange(t, h, media, []string{tok}, 0, "bytes=0-9")
	waitLines(1)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	alog.Reopen()
	// Reopen does not wait: the writer makes the new file when it gets to it.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(path); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no new file after Reopen")
		}
	}
	checkRange(t, h, media, []string{tok}, 0, "bytes=10-19")
	waitLines(2)
	h.stop()
	old, _ := os.ReadFile(path + ".1")
	cur, _ := os.ReadFile(path)
	ol, cl := parseLog(t, old), parseLog(t, cur)
	if len(ol) != 1 || len(cl) != 1 || ol[0].Range != "bytes=0-9" || cl[0].Range != "bytes=10-19" {
		t.Fatalf("rotated file %q, new file %q", old, cur)
	}
	if !bytes.HasSuffix(cur, []byte("}\n")) {
		t.Fatalf("the new file does not end in a whole line: %q", cur)
	}
}

// FuzzAppendJSONString: whatever bytes a request carries, the log's string
// is valid JSON and, for valid UTF-8, decodes to the same bytes.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "bytes=0-1", `a"b\c`, "\x00\x1f\x7f", "é\u2028"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, in), &got); err != nil {
			t.Fatalf("appendJSONString(%q) is not JSON: %v", in, err)
		}
		if utf8.Valid(in) && got != string(in) {
			t.Fatalf("appendJSONString(%q) decodes to %q", in, got)
		}
	})
}
