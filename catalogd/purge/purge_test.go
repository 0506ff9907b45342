package purge

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"riff/internal/obs"
	"riff/internal/testrun"
)

func TestPurgeReachesEdge(t *testing.T) {
	signer, e := startSignedEdge(t)
	f := start(t, testConfig(signer, e.admin))
	e.warm(objA, objB)

	id := f.enqueue(songA)
	f.waitAcked(e.admin, id)
	e.wantCache(objA, "MISS", "purged song")
	e.wantCache(objB, "HIT", "neighbour song (only songA was purged)")
	if got := f.metric(fmt.Sprintf(`riff_purge_delivered_total{edge=%q}`, e.admin)); got != "1" {
		t.Errorf("delivered_total = %q, want 1", got)
	}
	waitFor(t, 2*time.Second, func() bool { return f.metric("riff_purge_outbox_pending") == "0" }, "pending gauge to drop to 0")
	if got := f.metric("riff_purge_oldest_undelivered_seconds"); got != "0" {
		t.Errorf("oldest_undelivered_seconds = %q, want 0", got)
	}
	if err := f.d.Ready(context.Background()); err != nil {
		t.Errorf("Ready = %v", err)
	}
	if _, statuses := e.purgeRequests(); len(statuses) != 1 || statuses[0] != http.StatusOK {
		t.Errorf("edge answered %v, want one 200", statuses)
	}

	// A second change is delivered on its own, not with the first again.
	e.warm(objA)
	id = f.enqueue("artists/1/albums/2/")
	f.waitAcked(e.admin, id)
	if a, b := e.cacheStatus(objA), e.cacheStatus(objB); a != "MISS" || b != "MISS" {
		t.Errorf("after album purge: X-Cache %q, %q; want MISS, MISS", a, b)
	}
	e.wantPurgeRequests(2)
}

// TestRestartResumesFromCursor: a new dispatcher on the same database
// (a catalogd restart) sends only what the edge has not acknowledged.
func TestRestartResumesFromCursor(t *testing.T) {
	signer, e := startSignedEdge(t)
	f := start(t, testConfig(signer, e.admin))
	f.waitAcked(e.admin, f.enqueue(songA))
	if got, want := e.lastBody(), `{"prefixes":["`+songA+`"]}`; got != want {
		t.Errorf("first purge body = %s, want %s", got, want)
	}
	f.d.Close()

	d, err := New(f.obs, f.st, testConfig(signer, e.admin))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	defer func() { d.Close(); <-done }()
	f.d = d
	f.waitAcked(e.admin, f.enqueue(songB))
	if got, want := e.lastBody(), `{"prefixes":["`+songB+`"]}`; got != want {
		t.Errorf("after restart: purge body = %s, want only the new row %s", got, want)
	}
	e.wantPurgeRequests(2)
}

func TestEdgeDownGetsPurgeWhenBack(t *testing.T) {
	signer, e := startSignedEdge(t)
	f := start(t, testConfig(signer, e.admin))
	e.warm(objA)

	e.down()
	id := f.enqueue(songA)
	failures := fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind="unavailable"}`, e.admin)
	waitFor(t, 5*time.Second, func() bool { return f.value(failures) >= 2 }, "two failed attempts")
	if c := f.cursor(e.admin); c != 0 {
		t.Fatalf("cursor of a down edge = %d, want 0", c)
	}
	if got := e.cacheStatus(objA); got != "HIT" {
		t.Fatalf("X-Cache %q before the edge got the purge, want HIT", got)
	}

	e.up()
	f.waitAcked(e.admin, id)
	e.wantCache(objA, "MISS", "after the edge came back")
	if !strings.Contains(f.logs.String(), "edge takes purges again") {
		t.Errorf("no recovery log line:\n%s", f.logs)
	}
}

func TestDownEdgeDoesNotHoldOthersBack(t *testing.T) {
	signer := newSigner(t)
	originURL := startOrigin(t)
	a := startEdge(t, originURL, signer.KeySet(), signer)
	b := startEdge(t, originURL, signer.KeySet(), signer)
	f := start(t, testConfig(signer, a.admin, b.admin))
	a.warm(objA)
	b.warm(objA)

	b.down()
	id := f.enqueue(songA)
	f.waitAcked(a.admin, id)
	a.wantCache(objA, "MISS", "edge a")
	b.wantCache(objA, "HIT", "edge b (admin down)")
	if c := f.cursor(b.admin); c != 0 {
		t.Errorf("cursor of the down edge = %d, want 0", c)
	}
	// The outbox keeps the row for b.
	if n, _, err := f.st.PurgeBacklog(context.Background(), 0); err != nil || n != 1 {
		t.Errorf("outbox rows = %d, %v; want 1", n, err)
	}
	waitFor(t, 2*time.Second, func() bool { return f.metric("riff_purge_outbox_pending") == "1" }, "pending gauge 1 while b lags")

	b.up()
	f.waitAcked(b.admin, id)
	b.wantCache(objA, "MISS", "edge b after coming back")
}

// TestRetriesBackOff: failed attempts are spaced by the jittered
// exponential backoff, both for an edge that is unavailable (503) and for
// one that refuses the token (a 4xx, a configuration error: the edge does
// not have catalogd's key), and the cursor never moves.
func TestRetriesBackOff(t *testing.T) {
	signer := newSigner(t)
	originURL := startOrigin(t)
	tests := []struct {
		name string
		kind string
		// edge returns the admin URL to give the dispatcher and a function
		// returning the times of the requests it got.
		edge func(t *testing.T) (string, func() []time.Time)
	}{
		{"unavailable", "unavailable", func(t *testing.T) (string, func() []time.Time) {
			var mu sync.Mutex
			var times []time.Time
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				times = append(times, time.Now())
				mu.Unlock()
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
			}))
			t.Cleanup(srv.Close)
			return srv.URL, func() []time.Time {
				mu.Lock()
				defer mu.Unlock()
				return append([]time.Time(nil), times...)
			}
		}},
		{"refused", "refused", func(t *testing.T) (string, func() []time.Time) {
			other := newSigner(t) // the edge knows another key than catalogd's
			e := startEdge(t, originURL, other.KeySet(), other)
			return e.admin, func() []time.Time {
				times, statuses := e.purgeRequests()
				for _, s := range statuses {
					if s != http.StatusForbidden {
						t.Errorf("edge answered %d, want 403", s)
					}
				}
				return times
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, requests := tt.edge(t)
			cfg := testConfig(signer, url)
			cfg.BackoffMin, cfg.BackoffMax = 20*time.Millisecond, 320*time.Millisecond
			f := start(t, cfg)
			f.enqueue(songA)
			time.Sleep(1500 * time.Millisecond)
			times := requests()
			// Without backoff there would be hundreds of attempts; with it
			// the waits are ≥ 10, 20, 40, 80, 160, 160… ms and ≤ 20, 40,
			// 80, 160, 320, 320… ms: between 6 and 14 attempts in 1.5 s.
			if len(times) < 5 || len(times) > 15 {
				t.Fatalf("%d attempts in 1.5s, want 5 to 15", len(times))
			}
			for i := 1; i < len(times); i++ {
				want := min(cfg.BackoffMax, cfg.BackoffMin<<(i-1)) / 2
				if gap := times[i].Sub(times[i-1]); gap < want-5*time.Millisecond {
					t.Errorf("wait before attempt %d = %v, want at least %v", i+1, gap, want)
				}
			}
			if got := f.value(fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind=%q}`, url, tt.kind)); got < float64(len(times)) {
				t.Errorf("failures_total{kind=%q} = %v, want at least the %d attempts", tt.kind, got, len(times))
			}
			if c := f.cursor(url); c != 0 {
				t.Errorf("cursor after failures = %d, want 0", c)
			}
			if tt.kind == "refused" && !strings.Contains(f.logs.String(), `"level":"ERROR","msg":"edge refused the purge`) {
				t.Errorf("refusal not logged at error level:\n%s", f.logs)
			}
		})
	}
}

func TestReadinessTracksLag(t *testing.T) {
	signer, e := startSignedEdge(t)
	cfg := testConfig(signer, e.admin)
	cfg.LagThreshold = time.Minute
	var skew atomic.Int64 // how far the dispatcher's clock runs ahead
	cfg.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	f := start(t, cfg)
	f.obs.AddCheck("purge", f.d.Ready)
	f.obs.AddDetail("purge", f.d.Detail)
	readyz := httptest.NewServer(f.obs.Handler())
	t.Cleanup(readyz.Close)
	get := func() (int, string) {
		res, err := http.Get(readyz.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}

	e.down()
	id := f.enqueue(songA)
	if err := f.d.Ready(context.Background()); err != nil {
		t.Fatalf("Ready right after the change = %v, want nil (not lagging yet)", err)
	}
	// Once the dispatcher has tried (and so measured the backlog), let two
	// minutes pass.
	waitFor(t, 5*time.Second, func() bool {
		return f.value(fmt.Sprintf(`riff_purge_failures_total{edge=%q,kind="unavailable"}`, e.admin)) >= 1
	}, "a failed attempt")
	skew.Store(int64(2 * time.Minute))
	err := f.d.Ready(context.Background())
	if err == nil {
		t.Fatal("Ready = nil with a purge two minutes old, want an error")
	}
	if msg := err.Error(); !strings.Contains(msg, e.admin) || !strings.Contains(msg, "1 purges pending") || !strings.Contains(msg, "last error") {
		t.Errorf("Ready error %q does not name the edge, its backlog and last error", msg)
	}
	status, body := get()
	if status != http.StatusServiceUnavailable || !strings.Contains(body, `"failed":["purge"]`) || strings.Contains(body, e.addr) ||
		!strings.Contains(body, `"pending":1,`) || !strings.Contains(body, `"edges_lagging":1`) {
		t.Errorf("/readyz = %d %s; want 503 naming check purge and the backlog, not the edge", status, body)
	}
	if lag := f.value(fmt.Sprintf(`riff_purge_edge_lag_seconds{edge=%q}`, e.admin)); lag < 120 {
		t.Errorf("edge_lag_seconds = %v, want ≥ 120", lag)
	}
	if lag := f.value("riff_purge_oldest_undelivered_seconds"); lag < 120 {
		t.Errorf("oldest_undelivered_seconds = %v, want ≥ 120", lag)
	}

	e.up()
	f.waitAcked(e.admin, id)
	waitFor(t, 5*time.Second, func() bool { return f.d.Ready(context.Background()) == nil }, "Ready to recover")
	if status, body := get(); status != http.StatusOK {
		t.Errorf("/readyz after recovery = %d %s", status, body)
	}
}

// TestBatches: a backlog larger than Batch goes out in order in requests
// of at most Batch prefixes.
func TestBatches(t *testing.T) {
	signer, e := startSignedEdge(t)
	cfg := testConfig(signer, e.admin)
	cfg.Batch = 100
	f := start(t, cfg)
	e.down() // let the backlog build up
	var prefixes []string
	for i := range 250 {
		prefixes = append(prefixes, fmt.Sprintf("artists/%d/albums/%d/", i+10, i))
	}
	id := f.enqueue(prefixes...)
	e.up()
	f.waitAcked(e.admin, id)
	_, statuses := e.purgeRequests()
	if len(statuses) != 3 {
		t.Errorf("edge got %d purge requests for 250 prefixes in batches of 100, want 3", len(statuses))
	}
	if got := f.metric(fmt.Sprintf(`riff_purge_delivered_total{edge=%q}`, e.admin)); got != "250" {
		t.Errorf("delivered_total = %q, want 250", got)
	}
}

// TestPrune: rows go once every edge acknowledged them and Retain passed.
func TestPrune(t *testing.T) {
	signer, e := startSignedEdge(t)
	cfg := testConfig(signer, e.admin)
	cfg.Retain = 200 * time.Millisecond
	f := start(t, cfg)
	id := f.enqueue(songA, songB)
	f.waitAcked(e.admin, id)
	waitFor(t, 5*time.Second, func() bool { return f.value("riff_purge_pruned_total") == 2 }, "pruned_total to reach 2")
	if n, _, err := f.st.PurgeBacklog(context.Background(), 0); err != nil || n != 0 {
		t.Errorf("outbox rows after pruning = %d, %v; want 0", n, err)
	}
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	signer, e := startSignedEdge(t)
	st := openStore(t)
	o := obs.New("catalogd", slog.New(slog.DiscardHandler))
	d, err := New(o, st, testConfig(signer, e.admin, "http://127.0.0.1:1")) // the second edge never answers
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(context.Background()) }()
	if err := st.EnqueuePurge(context.Background(), songA); err != nil {
		t.Fatal(err)
	}
	d.Kick()
	waitFor(t, 5*time.Second, func() bool { c, _ := st.PurgeCursor(context.Background(), e.admin); return c > 0 }, "delivery")
	if err := d.Run(context.Background()); err == nil {
		t.Error("second Run while running = nil, want an error")
	}
	d.Close()
	d.Close() // idempotent
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	waitFor(t, 2*time.Second, func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return !strings.Contains(stacks, "catalogd/purge.(*Dispatcher)") && !strings.Contains(stacks, "net/http.(*persistConn)")
	}, "the dispatcher's goroutines and connections to end")

	// Close before Run: Run returns at once.
	d2, err := New(o, st, testConfig(signer, e.admin))
	if err != nil {
		t.Fatal(err)
	}
	d2.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := d2.Run(ctx); err != nil || ctx.Err() != nil {
		t.Errorf("Run after Close = %v (ctx %v), want nil at once", err, ctx.Err())
	}
	var nilD *Dispatcher
	nilD.Kick() // no fan-out configured: a no-op
}

func TestNewRejectsBadConfig(t *testing.T) {
	signer := newSigner(t)
	st := openStore(t)
	o := obs.New("catalogd", slog.New(slog.DiscardHandler))
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no edges", Config{Signer: signer}},
		{"no signer", Config{Edges: []string{"http://e:9082"}}},
		{"not a URL", Config{Signer: signer, Edges: []string{"e:9082"}}},
		{"ftp", Config{Signer: signer, Edges: []string{"ftp://e:9082"}}},
		{"credentials", Config{Signer: signer, Edges: []string{"http://u:p@e:9082"}}},
		{"twice", Config{Signer: signer, Edges: []string{"http://e:9082", "http://e:9082/"}}},
	}
	for _, tt := range tests {
		if _, err := New(o, st, tt.cfg); err == nil {
			t.Errorf("New(%s) = nil error", tt.name)
		}
	}
	d, err := New(o, st, Config{Signer: signer, Edges: []string{" http://e:9082/ "}})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Edges(); len(got) != 1 || got[0] != "http://e:9082" {
		t.Errorf("Edges() = %q, want [http://e:9082]", got)
	}
}

func TestCover(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"artists/1/albums/2/songs/3/"}, "artists/1/albums/2/songs/3/"},
		{[]string{"artists/1/albums/2/songs/3/", "artists/1/albums/2/songs/4/"}, "artists/1/albums/2/"},
		{[]string{"artists/1/albums/2/songs/3/", "artists/1/albums/2/"}, "artists/1/albums/2/"},
		{[]string{"artists/1/albums/2/", "artists/1/albums/22/"}, "artists/1/"},
		{[]string{"artists/1/", "artists/2/"}, "artists/"},
		{[]string{"artists/1/", "artists/"}, "artists/"},
		{[]string{"artists/"}, "artists/"},
		{[]string{"artists/12/", "artists/1/"}, "artists/"},
		{[]string{"artists/1/albums/2/songs/3/", "artists/1/albums/2/songs/34/"}, "artists/1/albums/2/"},
		{nil, "artists/"},
	}
	for _, tt := range tests {
		if got := cover(tt.in); got != tt.want {
			t.Errorf("cover(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// BenchmarkRoundTrip measures one change's purge from the outbox commit to
// the edge's acknowledgement: EnqueuePurge, Kick, POST /purge to a real
// edge on loopback, the cursor write.
func BenchmarkRoundTrip(b *testing.B) {
	signer := newSigner(b)
	e := startEdge(b, startOrigin(b), signer.KeySet(), signer)
	f := start(b, testConfig(signer, e.admin))
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := f.st.EnqueuePurge(ctx, fmt.Sprintf("artists/%d/", i+1)); err != nil {
			b.Fatal(err)
		}
		f.d.Kick()
		for {
			if times, _ := e.purgeRequests(); len(times) > i {
				break
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

// BenchmarkBacklogDrain measures how fast a dispatcher delivers a backlog
// of 10,000 purges (batches of 1000) to an edge: from Run to the last
// cursor write.
func BenchmarkBacklogDrain(b *testing.B) {
	signer := newSigner(b)
	e := startEdge(b, startOrigin(b), signer.KeySet(), signer)
	ctx := context.Background()
	prefixes := make([]string, 10000)
	for j := range prefixes {
		prefixes[j] = fmt.Sprintf("artists/%d/albums/%d/", j, j)
	}
	b.StopTimer()
	for range b.N {
		st := openStore(b)
		if err := st.EnqueuePurge(ctx, prefixes...); err != nil {
			b.Fatal(err)
		}
		rows, err := st.PendingPurges(ctx, 0, len(prefixes))
		if err != nil {
			b.Fatal(err)
		}
		last := rows[len(rows)-1].ID
		d, err := New(obs.New("catalogd", slog.New(slog.DiscardHandler)), st, testConfig(signer, e.admin))
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		go d.Run(ctx)
		for {
			if c, _ := st.PurgeCursor(ctx, e.admin); c >= last {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.StopTimer()
		d.Close()
	}
	b.ReportMetric(float64(len(prefixes)), "purges/op")
}

// TestDeliverySpans: with tracing on, each delivery to an edge is a span
// naming the edge and the outcome (never the purge token), and the edge's
// span for the purge request joins its trace through traceparent.
func TestDeliverySpans(t *testing.T) {
	rcv := testrun.NewOTLPReceiver(t)
	signer, e := startSignedEdge(t)
	f := start(t, testConfig(signer, e.admin))
	var stops []func(context.Context) error
	for _, o := range []*obs.Obs{e.obs, f.obs} {
		stop, err := o.StartTracing(context.Background(), obs.Tracing{Endpoint: rcv.URL, Ratio: 1})
		if err != nil {
			t.Fatal(err)
		}
		stops = append(stops, stop)
	}
	f.waitAcked(e.admin, f.enqueue(songA))
	for _, stop := range stops {
		if err := stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	var delivery, edgeSpan testrun.Span
	for _, s := range rcv.Spans() {
		for k, v := range s.Attrs {
			if strings.Contains(v, "eyJ") {
				t.Errorf("span %q attribute %s holds a token: %q", s.Name, k, v)
			}
		}
		switch {
		case s.Name == "purge delivery":
			delivery = s
		case s.Service == "riff-edge" && s.Name == "POST /purge":
			edgeSpan = s
		}
	}
	if delivery.Attrs["purge.edge"] != e.admin || delivery.Attrs["purge.outcome"] != "delivered" || delivery.Attrs["purge.rows"] != "int_value:1" || delivery.Error {
		t.Errorf("delivery span %+v, want edge %s, outcome delivered, 1 row", delivery, e.admin)
	}
	if edgeSpan.TraceID != delivery.TraceID || edgeSpan.ParentID != delivery.SpanID || edgeSpan.Attrs["http.response.status_code"] != "int_value:200" {
		t.Errorf("edge span %+v, want a 200 under the delivery %s in trace %s", edgeSpan, delivery.SpanID, delivery.TraceID)
	}
}
