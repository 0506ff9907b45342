package bench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"riff/edge"
	"riff/internal/blob"
	"riff/internal/obs"
	"riff/internal/playtoken"
	"riff/internal/testrun"
	"riff/origin"
	"riff/packager"
)

// Test content: one 13-second song packaged by the real packager (AAC
// 64/128/320 in CMAF with byte-range HLS playlists), published under
// three song folders.
var songs = []string{
	"artists/1/albums/2/songs/3/v1/",
	"artists/1/albums/2/songs/4/v1/",
	"artists/1/albums/2/songs/5/v1/",
}

// media is the blob folder with the test content (testMedia).
var media testrun.Fixture

func TestMain(m *testing.M) { testrun.Main(m, &media) }

// testMedia returns a blob folder with the test content, made with ffmpeg
// on first use.
func testMedia(t testing.TB) string {
	t.Helper()
	testrun.RequireFFmpeg(t)
	return media.Dir(t, "riff-bench-test-", makeMedia)
}

// makeMedia fills tmp with the test content and returns its blob folder.
func makeMedia(tmp string) (string, error) {
	src := filepath.Join(tmp, "song.flac")
	cmd := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i",
		"anoisesrc=d=13:c=pink:a=0.3:r=44100", "-ac", "2", "-c:a", "flac", src)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", &exec.Error{Name: "ffmpeg: " + string(out), Err: err}
	}
	root := filepath.Join(tmp, "blob")
	store, err := blob.NewFS(root)
	if err != nil {
		return "", err
	}
	defer store.Close()
	ctx := context.Background()
	pk := packager.New(packager.Config{Formats: []string{packager.FormatAAC}, SegmentDuration: 2 * time.Second, TempDir: tmp})
	res, err := pk.Package(ctx, src, store, songs[0], nil)
	if err != nil {
		return "", err
	}
	for _, song := range songs[1:] {
		for _, o := range res.Objects {
			rc, _, err := store.Get(ctx, o.Key, nil)
			if err != nil {
				return "", err
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return "", err
			}
			key := song + o.Key[len(songs[0]):]
			if _, err := store.Put(ctx, key, bytes.NewReader(data), blob.PutOptions{ContentType: o.ContentType}); err != nil {
				return "", err
			}
		}
	}
	return root, nil
}

// stack is a riff origin and a riff edge on loopback, in this process.
type stack struct {
	edgeURL, metricsURL string
	originURL           string
	signer              *playtoken.Signer
}

func startStack(t testing.TB) *stack {
	t.Helper()
	root := testMedia(t)
	store, err := blob.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	quiet := slog.New(slog.DiscardHandler)
	osrv := origin.NewServer(obs.New("origin", quiet), store, origin.ServerConfig{Secret: "s"})
	oln := listen(t)
	go osrv.Serve(oln)
	t.Cleanup(func() { osrv.Shutdown(context.Background()) })

	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	st := &stack{signer: playtoken.NewSigner("k1", priv, time.Now), originURL: "http://" + oln.Addr().String()}
	eo := obs.New("edge", quiet)
	up, err := edge.NewOrigins(eo, edge.OriginConfig{URLs: []string{st.originURL}, Secret: "s", Timeout: 5 * time.Second}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	verifier := playtoken.NewVerifier(st.signer.KeySet(), playtoken.VerifierOptions{})
	esrv, err := edge.NewServer(eo, verifier, up, edge.Config{CacheBytes: 64 << 20, SliceBytes: 256 << 10}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ln, aln := listen(t), listen(t)
	go esrv.Serve(ln)
	go esrv.ServeAdmin(aln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		esrv.Shutdown(ctx)
	})
	st.edgeURL = "http://" + ln.Addr().String()
	st.metricsURL = "http://" + aln.Addr().String() + "/metrics"
	return st
}

func listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// masters returns the edge URLs of the songs' master playlists with
// tokens of bitrate ceiling mbr (0: none).
func (s *stack) masters(t testing.TB, mbr int) []string {
	t.Helper()
	var out []string
	for _, song := range songs {
		tok, err := s.signer.Mint(playtoken.Claims{Type: playtoken.TypePlay, Subject: "bench", Prefix: song, MaxKbps: mbr}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s.edgeURL+"/t/"+tok+"/"+song+"master.m3u8")
	}
	return out
}

// served is the edge's riff_edge_served_bytes_total (hits and misses).
func (s *stack) served(t testing.TB) float64 {
	t.Helper()
	snap := scrape(context.Background(), s.metricsURL, nil, []string{"riff_edge_served_bytes_total"})
	if !snap.ok {
		t.Fatal("edge metrics unreadable")
	}
	return snap.bytes
}

// opts are Options for a short quiet test run.
func opts(scenario string) Options {
	return Options{
		Scenario: scenario, Duration: 2 * time.Second, Timeout: 2 * time.Second, Conns: 8,
		Listeners: 3, Speed: 0, Zipf: 1.1, Seed: 1, Quiet: true,
		MaxErrorRate: -1, MinHitRatio: -1, MaxRebufferRatio: -1,
	}
}
