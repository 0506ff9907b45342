package bench

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"io"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

const base = "http://edge:8082/t/tok.en/artists/1/albums/2/songs/3/v1/master.m3u8"

func TestParseMaster(t *testing.T) {
	text := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-STREAM-INF:BANDWIDTH=66640,AVERAGE-BANDWIDTH=66051,CODECS="mp4a.40.2"
aac_64.m3u8
#EXT-X-STREAM-INF:CODECS="mp4a.40.2, x",BANDWIDTH=130505
/abs/aac_128.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=323810
https://other/x/high.m3u8
`
	got, err := ParseMaster([]byte(text), base)
	if err != nil {
		t.Fatal(err)
	}
	want := []Variant{
		{URL: "http://edge:8082/t/tok.en/artists/1/albums/2/songs/3/v1/aac_64.m3u8", Kbps: 64, Bandwidth: 66640},
		{URL: "http://edge:8082/abs/aac_128.m3u8", Kbps: 128, Bandwidth: 130505},
		{URL: "https://other/x/high.m3u8", Kbps: 324, Bandwidth: 323810},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseMaster = %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"", "#EXTM3U\n", "#EXTM3U\n#EXT-X-STREAM-INF:CODECS=\"x\"\na.m3u8\n", "hello"} {
		if _, err := ParseMaster([]byte(bad), base); err == nil {
			t.Errorf("ParseMaster(%q) = nil error", bad)
		}
	}
}

func TestParseMedia(t *testing.T) {
	text := `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-MAP:URI="aac_128.mp4",BYTERANGE="659@0"
#EXT-X-TARGETDURATION:9
#EXT-X-BYTERANGE:97416@727
#EXTINF:5.991,
aac_128.mp4
#EXT-X-BYTERANGE:100
#EXTINF:6,
aac_128.mp4
#EXTINF:2.5,
whole.mp4
#EXT-X-ENDLIST
`
	got, err := ParseMedia([]byte(text), base)
	if err != nil {
		t.Fatal(err)
	}
	dir := "http://edge:8082/t/tok.en/artists/1/albums/2/songs/3/v1/"
	want := &MediaPlaylist{
		Init: &Segment{URL: dir + "aac_128.mp4", Range: Range{0, 658}},
		Segments: []Segment{
			{URL: dir + "aac_128.mp4", Range: Range{727, 98142}, Duration: 5.991},
			{URL: dir + "aac_128.mp4", Range: Range{98143, 98242}, Duration: 6},
			{URL: dir + "whole.mp4", Range: Range{0, -1}, Duration: 2.5},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseMedia = %+v\nwant %+v", got, want)
	}
	if d := got.Duration(); d != 14.491 {
		t.Errorf("Duration = %v", d)
	}
	for _, bad := range []string{
		"#EXTM3U\n",                                // no segments
		"#EXTM3U\n#EXTINF:x,\na.mp4\n",             // bad duration
		"#EXTM3U\n#EXT-X-BYTERANGE:0@0\na.mp4\n",   // empty range
		"#EXTM3U\n#EXT-X-BYTERANGE:10\na.mp4\n",    // no offset, no previous range
		"#EXTM3U\n#EXT-X-MAP:BYTERANGE=\"1@0\"\n",  // map without URI
		"#EXTM3U\n#EXT-X-BYTERANGE:5@-1\na.mp4\n",  // negative offset
		"#EXTM3U\n#EXT-X-BYTERANGE:abc@1\na.mp4\n", // not a number
		"aac_128.mp4\n",                            // no #EXTM3U
		"#EXTM3U\n#EXT-X-BYTERANGE:1@99999999999999999999\na\n",
	} {
		if _, err := ParseMedia([]byte(bad), base); err == nil {
			t.Errorf("ParseMedia(%q) = nil error", bad)
		}
	}
}

func FuzzParseMedia(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-MAP:URI=\"a.mp4\",BYTERANGE=\"659@0\"\n#EXT-X-BYTERANGE:97416@727\n#EXTINF:5.991,\na.mp4\n#EXT-X-BYTERANGE:10\n#EXTINF:1,\na.mp4\n"))
	f.Add([]byte("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\naac_64.m3u8\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if pl, err := ParseMedia(data, base); err == nil {
			for _, s := range pl.Segments {
				if s.Range.Last >= 0 && (s.Range.First < 0 || s.Range.Last < s.Range.First) {
					t.Fatalf("bad range %+v from %q", s.Range, data)
				}
				if s.Duration < 0 {
					t.Fatalf("negative duration from %q", data)
				}
			}
		}
		if vs, err := ParseMaster(data, base); err == nil {
			for _, v := range vs {
				if v.Bandwidth <= 0 || v.Kbps <= 0 || v.URL == "" {
					t.Fatalf("bad variant %+v from %q", v, data)
				}
			}
		}
	})
}

func TestRungOfAndResolve(t *testing.T) {
	for in, want := range map[string]int{"aac_128.m3u8": 128, "x/aac_320.mp4?a=1": 320, "master.m3u8": 0, "ogg_x.ogg": 0} {
		if got := rungOf(in); got != want {
			t.Errorf("rungOf(%q) = %d, want %d", in, got, want)
		}
	}
	for _, tc := range [][3]string{
		{"http://h/a/b.m3u8?x=1", "c.mp4", "http://h/a/c.mp4"},
		{"http://h/a/b.m3u8", "/c.mp4", "http://h/c.mp4"},
		{"http://h/a/b.m3u8", "https://o/c.mp4", "https://o/c.mp4"},
	} {
		if got := resolve(tc[0], tc[1]); got != tc[2] {
			t.Errorf("resolve(%q, %q) = %q, want %q", tc[0], tc[1], got, tc[2])
		}
	}
}

// TestPlayback drives the buffer model with made-up times.
func TestPlayback(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	p := playback{speed: 2}
	if _, re := p.add(at(0), 4); re { // starts playing with 4 s buffered
		t.Fatal("first segment counted as a rebuffer")
	}
	if _, re := p.add(at(1), 4); re { // 2 s played at 2x: 2 + 4 left
		t.Fatal("rebuffer with media in the buffer")
	}
	if p.level != 6 {
		t.Errorf("level %v, want 6", p.level)
	}
	// 6 s at 2x runs dry at t=4; the next segment arrives at t=5.5.
	stall, re := p.add(at(5.5), 4)
	if !re || stall != 1500*time.Millisecond {
		t.Errorf("stall %v %v, want a 1.5s rebuffer", stall, re)
	}
	if p.level != 4 || !p.playing {
		t.Errorf("after the stall: level %v playing %v", p.level, p.playing)
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP x
riff_edge_origin_fetches_total{origin="http://a"} 3
riff_edge_origin_fetches_total{origin="http://b"} 4
riff_edge_origin_bytes_total{origin="http://a"} 1e3
riff_edge_origin_fetches_totally 100
riff_http_requests_total{component="origin",code="200"} 7
riff_http_requests_total{component="origin",code="206"} 8
riff_http_requests_total{component="edge",code="200"} 1000
`
	s, err := parseMetrics(bufio.NewScanner(strings.NewReader(text)), edgeFetchSeries, edgeBytesSeries)
	if err != nil || !s.ok || s.fetches != 7 || s.bytes != 1000 {
		t.Errorf("edge series: %+v %v", s, err)
	}
	s, _ = parseMetrics(bufio.NewScanner(strings.NewReader(text)), originFetchSeries, originBytesSeries)
	if s.fetches != 15 || s.bytes != 0 {
		t.Errorf("origin series: %+v", s)
	}
}

// TestHTMLReport parses the HTML report as XML (it is written well-formed)
// and finds the charts with their lines.
func TestHTMLReport(t *testing.T) {
	rec := NewRecorder()
	rep := &Report{Scenario: "flat", Target: "http://e/<x>&y", StartedAt: time.Now(), Settings: "test",
		Thresholds: []Check{{Name: "max-p99", Limit: 50, Value: 80}}}
	for i := range 5 {
		rec.Request(KindSegment, CacheHit, 1000, time.Duration(i+1)*time.Millisecond)
		rec.Request(KindPlaylist, CacheMiss, 100, 3*time.Millisecond)
		rep.Series = append(rep.Series, rec.Tick(time.Duration(i+1)*time.Second, time.Second))
	}
	rec.summarize(rep, 5*time.Second)
	page := rep.HTML()

	dec := xml.NewDecoder(bytes.NewReader(page))
	dec.Strict = true
	charts := map[string]int{} // id → polylines with points
	var chart string
	var title bool
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("HTML report is not well-formed: %v\n%s", err, page)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			attr := func(name string) string {
				for _, a := range e.Attr {
					if a.Name.Local == name {
						return a.Value
					}
				}
				return ""
			}
			switch e.Name.Local {
			case "svg":
				if attr("class") == "chart" {
					chart = attr("id")
					charts[chart] = 0
				}
			case "polyline":
				pts := strings.Fields(attr("points"))
				if chart != "" && len(pts) > 0 {
					charts[chart]++
				}
				for _, p := range pts {
					if !strings.Contains(p, ",") || strings.Contains(p, "NaN") {
						t.Errorf("chart %s: bad point %q", chart, p)
					}
				}
			case "title":
				title = true
			}
		case xml.EndElement:
			if e.Name.Local == "svg" {
				chart = ""
			}
		}
	}
	want := map[string]int{"latency-over-time": 3, "requests-over-time": 1, "bytes-over-time": 1, "latency-percentiles": 2}
	if !reflect.DeepEqual(charts, want) {
		t.Errorf("charts (id → lines) = %v, want %v", charts, want)
	}
	if !title || !bytes.Contains(page, []byte("http://e/&lt;x&gt;&amp;y")) || !bytes.Contains(page, []byte("FAILED")) {
		t.Errorf("page lacks title, escaped target or failed threshold")
	}
}

// BenchmarkConnGet measures a warm 64 KiB range request through Conn,
// client side and server side together (the server is a fasthttp handler
// answering from memory on loopback). The client allocates nothing per
// request once warm.
func BenchmarkConnGet(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 64<<10)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("X-Cache", "HIT")
		ctx.Response.Header.Set("Content-Range", "bytes 0-65535/1000000")
		ctx.SetStatusCode(fasthttp.StatusPartialContent)
		ctx.SetBody(body)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	c := NewClient(5*time.Second, 4)
	defer c.Close()
	conn := c.NewConn()
	url := "http://" + ln.Addr().String() + "/t/x/a.mp4"
	rec := NewRecorder()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if res := conn.fetch(rec, KindSegment, url, Range{0, 65535}, "", time.Now()); res.Err != "" {
			b.Fatal(res.Err)
		}
	}
}

// TestConnGetAllocs checks that a warm request allocates nothing.
// AllocsPerRun counts the whole process, the server included; this
// fasthttp handler allocates nothing either, so any allocation is the
// client's.
func TestConnGetAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	body := bytes.Repeat([]byte("x"), 64<<10)
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		ctx.Response.Header.Set("Content-Range", "bytes 0-65535/1000000")
		ctx.SetStatusCode(fasthttp.StatusPartialContent)
		ctx.Response.SetBodyRaw(body)
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()
	c := NewClient(5*time.Second, 1)
	defer c.Close()
	conn := c.NewConn()
	url := "http://" + ln.Addr().String() + "/t/x/a.mp4"
	rec := NewRecorder()
	for range 100 { // warm the pools and buffers
		conn.fetch(rec, KindSegment, url, Range{0, 65535}, "", time.Now())
	}
	allocs := testing.AllocsPerRun(500, func() {
		if res := conn.fetch(rec, KindSegment, url, Range{0, 65535}, "", time.Now()); res.Err != "" {
			t.Fatal(res.Err)
		}
	})
	if allocs > 0.5 {
		t.Errorf("%.2f allocations per request, want none", allocs)
	}
}

// TestCacheStatuses: riff edge's X-Cache values each get their own tally,
// and the hit ratio counts the edge's own cache (RAM and disk), not a
// peer's answer nor a miss.
func TestCacheStatuses(t *testing.T) {
	for v, want := range map[string]CacheStatus{"": CacheNone, "HIT": CacheHit, "DISK": CacheDisk, "PEER": CachePeer,
		"MISS": CacheMiss, "EXPIRED": CacheMiss, "STALE": CacheHit} {
		if got := cacheStatus([]byte(v)); got != want {
			t.Errorf("cacheStatus(%q) = %s, want %s", v, got, want)
		}
	}
	rec := NewRecorder()
	rep := &Report{}
	for _, c := range []CacheStatus{CacheHit, CacheDisk, CachePeer, CacheMiss} {
		rec.Request(KindSegment, c, 100, time.Millisecond)
	}
	if s := rec.Tick(time.Second, time.Second); s.HitRatio != 0.5 {
		t.Errorf("window hit ratio %v, want 0.5 (HIT and DISK of four)", s.HitRatio)
	}
	rec.summarize(rep, time.Second)
	if rep.HitRatio != 0.5 {
		t.Errorf("hit ratio %v, want 0.5", rep.HitRatio)
	}
	var seen []string
	for _, kr := range rep.ByKind {
		for _, c := range kr.ByCache {
			seen = append(seen, c.Cache)
		}
	}
	if strings.Join(seen, ",") != "HIT,DISK,PEER,MISS" {
		t.Errorf("tallies %v, want HIT,DISK,PEER,MISS", seen)
	}
}
