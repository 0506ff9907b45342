package edge

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"

	"riff/edge/disk"
	"riff/internal/blob"
	"riff/internal/obs"
	"riff/internal/playtoken"
	"riff/internal/testrun"
	"riff/origin"
)

// Test content: one song packaged by ffmpeg the way the packager lays it
// out (single-file CMAF renditions with byte-range HLS playlists, an MPD,
// a hand-written master playlist, an Ogg file), published under three song
// folders so that purges and prefixes have neighbours.
const (
	songA = "artists/1/albums/2/songs/3/v1/"
	songB = "artists/1/albums/2/songs/4/v1/"
	songC = "artists/5/albums/6/songs/7/v1/"
)

// media is the blob folder with the test content (testMedia).
var media testrun.Fixture

func TestMain(m *testing.M) { testrun.Main(m, &media) }

// testMedia returns the root of a blob folder with the test content,
// making it with ffmpeg on first use.
func testMedia(t testing.TB) string {
	t.Helper()
	testrun.RequireFFmpeg(t)
	return media.Dir(t, "riff-edge-test-", makeMedia)
}

// makeMedia fills tmp with the test content and returns its blob folder.
func makeMedia(tmp string) (string, error) {
	work := filepath.Join(tmp, "work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		return "", err
	}
	run := func(args ...string) error {
		cmd := exec.Command("ffmpeg", append([]string{"-v", "error", "-nostdin"}, args...)...)
		cmd.Dir = work
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("ffmpeg %v: %v\n%s", args, err, out)
		}
		return nil
	}
	src := "anoisesrc=d=10:c=pink:a=0.3:r=44100"
	if err := run("-f", "lavfi", "-i", src, "-ac", "2",
		"-map", "0:a", "-map", "0:a", "-map", "0:a", "-c:a", "aac",
		"-b:a:0", "64k", "-b:a:1", "128k", "-b:a:2", "320k",
		"-f", "dash", "-single_file", "1", "-global_sidx", "1", "-single_file_name", "aac_$RepresentationID$.mp4",
		"-seg_duration", "2", "-hls_playlist", "1", "-adaptation_sets", "id=0,streams=a",
		"manifest.mpd"); err != nil {
		return "", err
	}
	if err := run("-f", "lavfi", "-i", src, "-ac", "2", "-c:a", "libvorbis", "-b:a", "128k", "ogg_128.ogg"); err != nil {
		return "", err
	}
	// ffmpeg's media playlists are used as they are; the MPD is written
	// here in the packager's on-demand form (SegmentBase with the sidx),
	// which ffmpeg's own DASH demuxer plays (it loops on the SegmentList
	// MPD the dash muxer writes).
	rungs := []string{"64", "128", "320"}
	files := map[string][]byte{}
	var master, mpd strings.Builder
	master.WriteString("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n")
	mpd.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-on-demand:2011" type="static" mediaPresentationDuration="PT10S" minBufferTime="PT2S">
  <Period id="0">
    <AdaptationSet id="0" lang="und" contentType="audio" mimeType="audio/mp4" codecs="mp4a.40.2" subsegmentAlignment="true" subsegmentStartsWithSAP="1">
`)
	for i, r := range rungs {
		mp4, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("aac_%d.mp4", i)))
		if err != nil {
			return "", err
		}
		pl, err := os.ReadFile(filepath.Join(work, fmt.Sprintf("media_%d.m3u8", i)))
		if err != nil {
			return "", err
		}
		files["aac_"+r+".mp4"] = mp4
		files["aac_"+r+".m3u8"] = bytes.ReplaceAll(pl, []byte(fmt.Sprintf("aac_%d.mp4", i)), []byte("aac_"+r+".mp4"))
		initEnd, sidxStart, sidxEnd, err := boxLayout(mp4)
		if err != nil {
			return "", fmt.Errorf("aac_%s.mp4: %w", r, err)
		}
		avg := int(math.Ceil(float64(len(mp4)*8) / 10))
		fmt.Fprintf(&master, "#EXT-X-STREAM-INF:BANDWIDTH=%d,AVERAGE-BANDWIDTH=%d,CODECS=\"mp4a.40.2\"\naac_%s.m3u8\n", avg*11/10, avg, r)
		fmt.Fprintf(&mpd, `      <Representation id="aac_%s" bandwidth="%d">
        <BaseURL>aac_%s.mp4</BaseURL>
        <SegmentBase indexRange="%d-%d" indexRangeExact="true">
          <Initialization range="0-%d"/>
        </SegmentBase>
      </Representation>
`, r, avg*11/10, r, sidxStart, sidxEnd-1, initEnd-1)
	}
	mpd.WriteString("    </AdaptationSet>\n  </Period>\n</MPD>\n")
	files["manifest.mpd"] = []byte(mpd.String())
	files["master.m3u8"] = []byte(master.String())
	ogg, err := os.ReadFile(filepath.Join(work, "ogg_128.ogg"))
	if err != nil {
		return "", err
	}
	files["ogg_128.ogg"] = ogg
	root := filepath.Join(tmp, "blob")
	store, err := blob.NewFS(root)
	if err != nil {
		return "", err
	}
	defer store.Close()
	for _, song := range []string{songA, songB, songC} {
		for name, data := range files {
			if _, err := store.Put(context.Background(), song+name, bytes.NewReader(data), blob.PutOptions{}); err != nil {
				return "", err
			}
		}
	}
	if _, err := store.Put(context.Background(), songA+"empty.ogg", strings.NewReader(""), blob.PutOptions{}); err != nil {
		return "", err
	}
	if _, err := store.Put(context.Background(), "originals/3/up.wav", strings.NewReader("secret master"), blob.PutOptions{}); err != nil {
		return "", err
	}
	return root, nil
}

// boxLayout walks the top-level boxes of an MP4 file: the init segment
// (ftyp, moov) ends at initEnd, the sidx is [sidxStart, sidxEnd).
func boxLayout(b []byte) (initEnd, sidxStart, sidxEnd int, err error) {
	for i := 0; i+8 <= len(b); {
		size := int(b[i])<<24 | int(b[i+1])<<16 | int(b[i+2])<<8 | int(b[i+3])
		if size < 8 || i+size > len(b) {
			return 0, 0, 0, fmt.Errorf("bad box at %d", i)
		}
		switch string(b[i+4 : i+8]) {
		case "moov":
			initEnd = i + size
		case "sidx":
			sidxStart, sidxEnd = i, i+size
		}
		i += size
	}
	if initEnd == 0 || sidxEnd == 0 {
		return 0, 0, 0, errors.New("no moov or no sidx")
	}
	return initEnd, sidxStart, sidxEnd, nil
}

// testOrigin is a real origin (package origin) behind a wrapper that
// counts what the edge asks for and can slow down or die.
type testOrigin struct {
	url   string
	srv   *fasthttp.Server
	ln    net.Listener
	delay atomic.Int64 // nanoseconds to sleep before answering

	mu     sync.Mutex
	byPath map[string]int // requests from the edge, by path
	total  int
	ranges []string // Range headers the edge sent, in order
}

const testSecret = "s3cret"

// directHeader marks test requests that go straight to the origin, which
// the counters leave out.
const directHeader = "X-Test-Direct"

func startOrigin(t testing.TB, root string) *testOrigin {
	t.Helper()
	return startOriginObs(t, root, obs.New("origin", slog.New(slog.DiscardHandler)))
}

// startOriginObs is startOrigin with the origin's Obs (tracing, say).
func startOriginObs(t testing.TB, root string, o *obs.Obs) *testOrigin {
	t.Helper()
	store, err := blob.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	osrv := origin.NewServer(o, store, origin.ServerConfig{Secret: testSecret})
	to := &testOrigin{byPath: map[string]int{}}
	to.srv = &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			if len(ctx.Request.Header.Peek(directHeader)) == 0 {
				to.mu.Lock()
				to.byPath[string(ctx.Path())]++
				to.total++
				to.ranges = append(to.ranges, string(ctx.Request.Header.Peek("Range")))
				to.mu.Unlock()
			}
			if d := time.Duration(to.delay.Load()); d > 0 {
				time.Sleep(d)
			}
			osrv.Handler(ctx)
		},
		CloseOnShutdown: true,
	}
	to.ln, err = net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	to.url = "http://" + to.ln.Addr().String()
	go to.srv.Serve(to.ln)
	t.Cleanup(func() { to.srv.Shutdown() })
	return to
}

// kill stops the origin: the port refuses connections from now on.
func (o *testOrigin) kill() {
	o.srv.Shutdown()
	o.ln.Close()
}

func (o *testOrigin) requests() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.total
}

func (o *testOrigin) requestsFor(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.byPath["/"+key]
}

func (o *testOrigin) sentRanges() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.ranges...)
}

// sliceModes are the ways the edge keeps and sends slices: a memfd slab
// lending its pages to the kernel (sendfile; the default where the host
// allows it), the slab copied into the socket (writev), and the Go heap.
var sliceModes = []struct {
	name       string
	heap, copy bool
}{{"slab", false, false}, {"slab-writev", false, true}, {"heap", true, false}}

// harness is an edge on loopback in front of test origins, with a signer
// for its tokens.
type harness struct {
	t       testing.TB
	edge    *Server
	obs     *obs.Obs
	url     string // public base URL
	admin   string // admin base URL
	origins []*testOrigin
	signer  *playtoken.Signer
	// stopTracing flushes the edge's and the origins' spans.
	stopTracing []func(context.Context) error
	priv        ed25519.PrivateKey
	client      *fasthttp.Client
}

type harnessOptions struct {
	root       string // blob folder the origins serve; default testMedia's
	origins    int    // default 1
	sliceBytes int64
	cfg        func(*Config)
	ocfg       func(*OriginConfig)
	diskDir    string // a disk tier in this folder (its budget: diskBytes, default 64 MiB)
	diskBytes  int64
	traces     *testrun.OTLPReceiver // edge and origins export traces here
	traceRatio float64               // of new traces sampled (0: all)
	// For fleets (fleet_test.go): these origins instead of new ones, this
	// signing key instead of a new one, this admin listener.
	shared  []*testOrigin
	priv    ed25519.PrivateKey
	adminLn net.Listener
}

func newHarness(t testing.TB, opts harnessOptions) *harness {
	t.Helper()
	root := opts.root
	if root == "" {
		root = testMedia(t)
	}
	if opts.origins == 0 {
		opts.origins = 1
	}
	if opts.sliceBytes == 0 {
		opts.sliceBytes = 64 << 10
	}
	h := &harness{t: t, client: &fasthttp.Client{
		DisablePathNormalizing: true,
		MaxConnsPerHost:        2000,
		ReadTimeout:            30 * time.Second,
		WriteTimeout:           30 * time.Second,
	}}
	h.obs = obs.New("edge", slog.New(slog.DiscardHandler))
	traced := func(o *obs.Obs) *obs.Obs {
		if opts.traces != nil {
			ratio := opts.traceRatio
			if ratio == 0 {
				ratio = 1
			}
			stop, err := o.StartTracing(context.Background(), obs.Tracing{Endpoint: opts.traces.URL, Ratio: ratio})
			if err != nil {
				t.Fatal(err)
			}
			h.stopTracing = append(h.stopTracing, stop)
			t.Cleanup(func() { stop(context.Background()) }) // a second stop is a no-op
		}
		return o
	}
	traced(h.obs)
	var urls []string
	for range opts.origins {
		if opts.shared != nil {
			break
		}
		o := startOriginObs(t, root, traced(obs.New("origin", slog.New(slog.DiscardHandler))))
		h.origins = append(h.origins, o)
		urls = append(urls, o.url)
	}
	for _, o := range opts.shared {
		h.origins = append(h.origins, o)
		urls = append(urls, o.url)
	}
	priv := opts.priv
	var err error
	if priv == nil {
		if _, priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	h.priv = priv
	h.signer = playtoken.NewSigner("k1", priv, time.Now)
	verifier := playtoken.NewVerifier(h.signer.KeySet(), playtoken.VerifierOptions{})
	ocfg := OriginConfig{URLs: urls, Secret: testSecret, Timeout: 2 * time.Second, BreakerFailures: 2, BreakerCooldown: time.Minute}
	if opts.ocfg != nil {
		opts.ocfg(&ocfg)
	}
	up, err := NewOrigins(h.obs, ocfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{CacheBytes: 64 << 20, SliceBytes: opts.sliceBytes, WaitTimeout: 10 * time.Second}
	if opts.cfg != nil {
		opts.cfg(&cfg)
	}
	if opts.diskDir != "" {
		if opts.diskBytes == 0 {
			opts.diskBytes = 64 << 20
		}
		cfg.Disk, err = disk.Open(disk.Config{Dir: opts.diskDir, MaxBytes: opts.diskBytes, SliceBytes: cfg.SliceBytes})
		if err != nil {
			t.Fatal(err)
		}
	}
	h.edge, err = NewServer(h.obs, verifier, up, cfg, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	aln := opts.adminLn
	if aln == nil {
		if aln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
	}
	h.url, h.admin = "http://"+ln.Addr().String(), "http://"+aln.Addr().String()
	go h.edge.Serve(ln)
	go h.edge.ServeAdmin(aln)
	t.Cleanup(h.stop)
	return h
}

// stop shuts the edge down (and with it its disk tier); it may be called
// more than once.
func (h *harness) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.edge.Shutdown(ctx); err != nil {
		h.t.Errorf("edge shutdown: %v", err)
	}
}

// play mints a playback token for prefix with bitrate ceiling mbr (0: none).
func (h *harness) play(prefix string, mbr int) string {
	h.t.Helper()
	tok, err := h.signer.Mint(playtoken.Claims{Type: playtoken.TypePlay, Subject: "u1", Prefix: prefix, MaxKbps: mbr}, 10*time.Minute)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// purgeToken mints a purge token for prefix.
func (h *harness) purgeToken(prefix string) string {
	h.t.Helper()
	tok, err := h.signer.Mint(playtoken.Claims{Type: playtoken.TypePurge, Subject: "catalogd", Prefix: prefix}, 10*time.Minute)
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

// reply is a response copied out of fasthttp.
type reply struct {
	status int
	header map[string]string
	body   []byte
}

func (r reply) get(name string) string { return r.header[strings.ToLower(name)] }

// do sends one request with the target exactly as given and headers as
// name, value pairs.
func (h *harness) do(method, url string, hdr ...string) reply {
	h.t.Helper()
	r, err := doRequest(h.client, method, url, nil, hdr...)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func doRequest(c *fasthttp.Client, method, url string, body []byte, hdr ...string) (reply, error) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.SetRequestURI(url)
	req.URI().DisablePathNormalizing = true
	req.Header.SetMethod(method)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	if body != nil {
		req.SetBody(body)
	}
	if method == fasthttp.MethodHead {
		resp.SkipBody = true
	}
	if err := c.DoTimeout(req, resp, 30*time.Second); err != nil {
		return reply{}, err
	}
	r := reply{status: resp.StatusCode(), header: map[string]string{}, body: append([]byte(nil), resp.Body()...)}
	for k, v := range resp.Header.All() {
		r.header[strings.ToLower(string(k))] = string(v)
	}
	return r, nil
}

// object is the edge URL of key under token.
func (h *harness) object(token, key string) string {
	return h.url + "/t/" + token + "/" + key
}

// direct asks the first origin itself, not counted.
func (h *harness) direct(method, key string, hdr ...string) reply {
	h.t.Helper()
	return h.do(method, h.origins[0].url+"/"+key, append([]string{directHeader, "1", OriginSecretHeader, testSecret}, hdr...)...)
}

// metric returns the value of one series from the edge's /metrics, or -1.
func (h *harness) metric(series string) float64 {
	h.t.Helper()
	r := h.do("GET", h.admin+"/metrics")
	for line := range strings.SplitSeq(string(r.body), "\n") {
		if name, val, ok := strings.Cut(line, " "); ok && name == series {
			var f float64
			fmt.Sscan(val, &f)
			return f
		}
	}
	return -1
}
