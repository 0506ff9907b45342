package web_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"riff/internal/testrun"
)

// TestPlaysUnderCacheChurn plays the demo songs in the web player 200
// times (RIFF_CHURN_PLAYS) in one headless Chromium page (e2e/churn.mjs)
// through `riff dev` whose edge has a small cache of small slices, while
// a churn fetcher here keeps that cache evicting: it fetches segments and
// ranges of every song through the edge with playback URLs from catalogd,
// some of them reading slowly, and compares each body with the blob on
// disk byte for byte. It fails on any play that stalled, made the player
// recover (hls.js bufferAppendNoProgress or another media error), did not
// play what was asked, and on any body that differs from the blob.
//
// RIFF_CHURN_HEAP_SLICES=1 runs the edge with -heap-slices.
// RIFF_CHURN_SEED repeats a run's random choices (both sides print it).
// churn.mjs stops after RIFF_MAX_FAILURES failed plays (default 10); set
// it higher to count them all.
func TestPlaysUnderCacheChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("headless browser test; runs without -short (make test)")
	}
	nodeBin := node(t, "playwright-core", "esbuild", "hls.js")
	chromium := chromiumPath(t)
	plays := envInt(t, "RIFF_CHURN_PLAYS", 200)
	seed := uint64(envInt(t, "RIFF_CHURN_SEED", int(time.Now().UnixNano()%1e9)))
	started := time.Now()

	data := filepath.Join(t.TempDir(), "data")
	args := []string{"-demo-songs", "4", "-demo-length", "24s",
		"-edge-cache-bytes", "2MiB", "-edge-slice-bytes", "64KiB"}
	if os.Getenv("RIFF_CHURN_HEAP_SLICES") != "" {
		args = append(args, "-edge-heap-slices")
	}
	d := startDev(t, data, args...)
	t.Logf("riff dev up in %v (edge cache 2MiB of 64KiB slices, heap slices: %v)", time.Since(started).Round(time.Second), os.Getenv("RIFF_CHURN_HEAP_SLICES") != "")

	songs := d.demoSongs(t)
	fetcher := newChurn(t, filepath.Join(data, "blob"), songs, seed)
	// Bounds, far above what a run takes (about a second a play, about
	// 50 fetches a second): the churn stops when the plays end.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute+time.Duration(plays)*3*time.Second)
	defer cancel()
	churnDone := make(chan struct{})
	go func() { defer close(churnDone); fetcher.run(ctx, 3, plays*150) }()

	ids := make([]string, len(songs))
	for i, s := range songs {
		ids[i] = strconv.FormatInt(s.ID, 10)
	}
	cmd := exec.CommandContext(ctx, nodeBin, filepath.Join("e2e", "churn.mjs"))
	cmd.Env = append(os.Environ(), "RIFF_URL="+d.api, "RIFF_CHROMIUM="+chromium, "RIFF_SONGS="+strings.Join(ids, ","),
		"RIFF_EMAIL="+d.email, "RIFF_PASSWORD="+d.password, "RIFF_PLAYS="+strconv.Itoa(plays), "RIFF_SEED="+strconv.FormatUint(seed, 10))
	var out testrun.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	cancel()
	<-churnDone

	evictions := d.metric(t, "riff_edge_cache_evictions_total")
	report := fmt.Sprintf("churn: %s; edge cache evictions: %.0f", fetcher.summary(), evictions)
	t.Logf("churn.mjs:\n%s\n%s%s\n(the whole test took %v; repeat with RIFF_CHURN_SEED=%d)",
		out.String(), report, fetcher.problems(), time.Since(started).Round(time.Second), seed)
	if err != nil {
		msg := fmt.Sprintf("the web player failed under cache churn (%v): %s; the failed plays, with the player's log, are above", err, lastLine(out.String(), "churn: "))
		if s := d.stderr.String(); s != "" {
			msg += "; riff dev stderr:\n" + tail(s, 4000)
		}
		t.Error(msg)
	}
	if m := fetcher.mismatched.Load(); m > 0 {
		t.Errorf("%d bodies from the edge differ from the blob on disk (%s)%s", m, report, fetcher.problems())
	}
	if f := fetcher.failed.Load(); f > 0 {
		t.Errorf("%d fetches through the edge failed (%s)%s", f, report, fetcher.problems())
	}
	if fetcher.ok.Load() == 0 {
		t.Errorf("%s: the churn fetched nothing", report)
	}
	if evictions == 0 && err == nil {
		t.Errorf("%s: the edge cache never evicted, so nothing was tested under churn", report)
	}
}

// envInt reads a positive integer from the environment, or def.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// lastLine returns the last line of out that starts with prefix, or out's
// tail.
func lastLine(out, prefix string) string {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], prefix) {
			return lines[i]
		}
	}
	return tail(out, 500)
}

// devSong is what the churn needs of a song: its playback URLs.
type devSong struct {
	ID        int64  `json:"id"`
	Title     string `json:"title"`
	Status    string `json:"status"`
	HLSURL    string `json:"hls_url"`
	StreamURL string `json:"stream_url"`
}

// demoSongs logs in as the demo listener and returns the demo songs with
// fresh playback URLs: the songs from the one the banner names on, until
// one is missing.
func (d *devServer) demoSongs(t *testing.T) []devSong {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": d.email, "password": d.password})
	res, err := http.Post(d.api+"/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var login struct {
		AccessToken string `json:"access_token"`
	}
	err = json.NewDecoder(res.Body).Decode(&login)
	res.Body.Close()
	if err != nil || login.AccessToken == "" {
		t.Fatalf("logging in as the demo listener: status %d, %v", res.StatusCode, err)
	}
	var songs []devSong
	for id := d.firstSong; ; id++ {
		req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s/songs/%d", d.api, id), nil)
		req.Header.Set("Authorization", "Bearer "+login.AccessToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var s devSong
		err = json.NewDecoder(res.Body).Decode(&s)
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			break
		}
		if err != nil || res.StatusCode != http.StatusOK || s.HLSURL == "" || s.StreamURL == "" {
			t.Fatalf("GET /songs/%d: status %d, %v, song %+v", id, res.StatusCode, err, s)
		}
		songs = append(songs, s)
	}
	if len(songs) < 2 {
		t.Fatalf("riff dev has %d demo songs from /songs/%d on; want several", len(songs), d.firstSong)
	}
	return songs
}

// metric returns the sum of a metric's samples on the edge's admin
// listener.
func (d *devServer) metric(t *testing.T, name string) float64 {
	t.Helper()
	res, err := http.Get(d.edgeAdmin + "/metrics")
	if err != nil {
		t.Errorf("edge metrics: %v", err)
		return 0
	}
	defer res.Body.Close()
	var sum float64
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) > 0 {
			v, _ := strconv.ParseFloat(f[0], 64)
			sum += v
		}
	}
	return sum
}

// A churnTarget is a byte range of a media object, fetched through the
// edge and compared with the blob file.
type churnTarget struct {
	url      string // the edge URL, with its token
	key      string
	off, len int64
}

// churn fetches ranges of the songs' media through the edge and compares
// them with the blob folder. Its counters are safe to read while it runs.
type churn struct {
	t       *testing.T
	targets []churnTarget
	blobs   map[string][]byte // key → the file's bytes
	seed    uint64

	ok, mismatched, failed, bytes atomic.Int64
	mu                            sync.Mutex
	firstProblems                 []string
}

// newChurn reads the songs' playlists through the edge (as a player
// would) to list what to fetch: every HLS segment and init section of
// every rendition, and 64 KiB to 256 KiB ranges of the Ogg streams; and it
// reads each object's blob from blobDir.
func newChurn(t *testing.T, blobDir string, songs []devSong, seed uint64) *churn {
	t.Helper()
	c := &churn{t: t, blobs: map[string][]byte{}, seed: seed}
	get := func(u string) string {
		t.Helper()
		mustLoopback(t, u)
		res, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d, %v", u, res.StatusCode, err)
		}
		return string(b)
	}
	blob := func(u string) string {
		t.Helper()
		key := edgeKey(t, u)
		if _, ok := c.blobs[key]; !ok {
			b, err := os.ReadFile(filepath.Join(blobDir, filepath.FromSlash(key)))
			if err != nil {
				t.Fatalf("the blob of %s: %v (riff dev keeps its blob folder under -data)", u, err)
			}
			c.blobs[key] = b
		}
		return key
	}
	byteRange := regexp.MustCompile(`BYTERANGE[:=]"?(\d+)@(\d+)`)
	mapURI := regexp.MustCompile(`^#EXT-X-MAP:.*URI="([^"]+)"`)
	for _, s := range songs {
		base, _ := url.Parse(s.HLSURL)
		for _, variant := range playlistURIs(get(s.HLSURL)) {
			vu := base.JoinPath("..", variant).String()
			var pending *churnTarget
			for _, line := range strings.Split(get(vu), "\n") {
				line = strings.TrimSpace(line)
				if m := byteRange.FindStringSubmatch(line); m != nil {
					n, _ := strconv.ParseInt(m[1], 10, 64)
					off, _ := strconv.ParseInt(m[2], 10, 64)
					pending = &churnTarget{off: off, len: n}
					if uri := mapURI.FindStringSubmatch(line); uri != nil { // the init section
						pending.url = base.JoinPath("..", uri[1]).String()
						pending.key = blob(pending.url)
						c.targets = append(c.targets, *pending)
						pending = nil
					}
					continue
				}
				if pending != nil && line != "" && !strings.HasPrefix(line, "#") {
					pending.url = base.JoinPath("..", line).String()
					pending.key = blob(pending.url)
					c.targets = append(c.targets, *pending)
					pending = nil
				}
			}
		}
		key := blob(s.StreamURL)
		size := int64(len(c.blobs[key]))
		rng := rand.New(rand.NewPCG(seed, uint64(s.ID)))
		for range 8 {
			n := min(size, 64<<10+rng.Int64N(192<<10))
			c.targets = append(c.targets, churnTarget{url: s.StreamURL, key: key, off: rng.Int64N(size - n + 1), len: n})
		}
	}
	if len(c.targets) == 0 {
		t.Fatal("the songs' playlists name no segments")
	}
	return c
}

// playlistURIs returns the URI lines of an HLS multivariant playlist.
func playlistURIs(m3u8 string) []string {
	var uris []string
	for _, line := range strings.Split(m3u8, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			uris = append(uris, line)
		}
	}
	return uris
}

// edgeKey returns the blob key of an edge URL (/t/{token}/{key}).
func edgeKey(t *testing.T, u string) string {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(strings.TrimPrefix(p.Path, "/"), "/", 3)
	if len(parts) != 3 || parts[0] != "t" {
		t.Fatalf("%s is not an edge URL /t/{token}/{key}", u)
	}
	return path.Clean(parts[2])
}

// mustLoopback refuses to fetch anything but loopback addresses.
func mustLoopback(t *testing.T, u string) {
	t.Helper()
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(p.Hostname()); ip == nil || !ip.IsLoopback() {
		t.Fatalf("%s: the churn fetches from loopback only", u)
	}
}

// run fetches with workers goroutines until ctx is done or max fetches
// were made. Worker 0 reads at full speed; the others read through a small
// socket buffer in small steps with pauses, as a slow client does, so the
// edge's responses to them stay in flight while the cache evicts.
func (c *churn) run(ctx context.Context, workers, max int) {
	for _, tg := range c.targets {
		mustLoopback(c.t, tg.url)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			slow := w > 0
			client := &http.Client{Transport: &http.Transport{
				DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
					conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
					if tc, ok := conn.(*net.TCPConn); ok && slow {
						tc.SetReadBuffer(8 << 10)
					}
					return conn, err
				},
				MaxIdleConnsPerHost: 1,
			}}
			defer client.CloseIdleConnections()
			rng := rand.New(rand.NewPCG(c.seed, uint64(w)))
			for ctx.Err() == nil && n.Add(1) <= int64(max) {
				c.fetch(ctx, client, c.targets[rng.IntN(len(c.targets))], slow, rng)
				select {
				case <-ctx.Done():
				case <-time.After(time.Duration(2+rng.IntN(8)) * time.Millisecond):
				}
			}
		}()
	}
	wg.Wait()
}

// fetch gets one target and compares it with its blob.
func (c *churn) fetch(ctx context.Context, client *http.Client, tg churnTarget, slow bool, rng *rand.Rand) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, tg.url, nil)
	if err != nil {
		c.problem(&c.failed, "%s: %v", tg.key, err)
		return
	}
	req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", tg.off, tg.off+tg.len-1))
	res, err := client.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			c.problem(&c.failed, "%s %s: %v", tg.key, req.Header.Get("Range"), err)
		}
		return
	}
	defer res.Body.Close()
	var body []byte
	if slow {
		buf := make([]byte, 4<<10)
		for {
			n, err := res.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					body = nil
				}
				break
			}
			if rng.IntN(4) == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	} else {
		body, _ = io.ReadAll(res.Body)
	}
	if ctx.Err() != nil {
		return // cut short by the end of the run
	}
	want := c.blobs[tg.key][tg.off : tg.off+tg.len]
	switch {
	case res.StatusCode != http.StatusPartialContent:
		c.problem(&c.failed, "%s %s: status %d", tg.key, req.Header.Get("Range"), res.StatusCode)
	case !bytes.Equal(body, want):
		i := 0
		for i < len(body) && i < len(want) && body[i] == want[i] {
			i++
		}
		c.problem(&c.mismatched, "%s %s (X-Cache %s, slow reader %v): %d bytes, want %d; they differ from byte %d on",
			tg.key, req.Header.Get("Range"), res.Header.Get("X-Cache"), slow, len(body), len(want), i)
	default:
		c.ok.Add(1)
		c.bytes.Add(int64(len(body)))
	}
}

func (c *churn) problem(counter *atomic.Int64, format string, args ...any) {
	counter.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.firstProblems) < 5 {
		c.firstProblems = append(c.firstProblems, fmt.Sprintf(format, args...))
	}
}

// summary says what the churn did.
func (c *churn) summary() string {
	return fmt.Sprintf("%d bodies fetched and matched the blobs (%d MiB), %d mismatched, %d failed",
		c.ok.Load(), c.bytes.Load()>>20, c.mismatched.Load(), c.failed.Load())
}

// problems lists the first mismatches and failures, one a line.
func (c *churn) problems() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.firstProblems) == 0 {
		return ""
	}
	return "\nthe first:\n  " + strings.Join(c.firstProblems, "\n  ")
}
