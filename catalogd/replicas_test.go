package catalogd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/pgcluster"
	"riff/keygen"
)

// replicaClient is an HTTP client of several catalogd instances, as a
// client behind a round-robin load balancer sees them.
type replicaClient struct {
	t     *testing.T
	hc    *http.Client
	token string
}

func newReplicaClient(t *testing.T, withCookies bool) *replicaClient {
	hc := &http.Client{Timeout: 30 * time.Second}
	if withCookies {
		jar, _ := cookiejar.New(nil) // cookies ignore ports: shared by every instance on 127.0.0.1
		hc.Jar = jar
	}
	return &replicaClient{t: t, hc: hc}
}

func (c *replicaClient) do(method, url string, body any) (int, http.Header, []byte) {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func (c *replicaClient) must(status int, method, url string, body, out any) http.Header {
	c.t.Helper()
	got, h, b := c.do(method, url, body)
	if got != status {
		c.t.Fatalf("%s %s = %d %s, want %d", method, url, got, b, status)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			c.t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return h
}

// metric reads one sample from an instance's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	res, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	t.Fatalf("%s/metrics has no %s", base, name)
	return 0
}

func replicaReadsOf(t *testing.T, bases []string, replica string) float64 {
	var n float64
	for _, b := range bases {
		n += metric(t, b, `riff_db_reads_total{pool="`+replica+`"}`)
	}
	return n
}

// readyDB is the "db" detail of an instance's /readyz.
type readyDB struct {
	Primary  string `json:"primary"`
	Replicas []struct {
		Name       string  `json:"name"`
		State      string  `json:"state"`
		LagSeconds float64 `json:"lag_seconds"`
	} `json:"replicas"`
}

func readyz(t *testing.T, base string) (int, readyDB, string) {
	t.Helper()
	res, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var v struct {
		Detail struct {
			DB readyDB `json:"db"`
		} `json:"detail"`
	}
	json.Unmarshal(b, &v)
	return res.StatusCode, v.Detail.DB, string(b)
}

func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestReplicasOverHTTP runs two catalogd on a real primary with two hot
// standbys and talks to them as a round-robin load balancer would: each
// request to the other instance than the last.
func TestReplicasOverHTTP(t *testing.T) {
	c := pgcluster.ForTest(t, pgcluster.Options{Standbys: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	// A small catalog, written on the primary.
	st, err := store.Open(ctx, c.Primary.DSN("riff"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Seed(ctx, store.SeedOptions{Songs: 40, Seed: 7, TrendingSongs: -1}); err != nil {
		t.Fatal(err)
	}
	songs, err := st.SampleSongIDs(ctx, 12, 1)
	st.Close()
	if err != nil || len(songs) < 12 {
		t.Fatalf("songs: %v %v", songs, err)
	}
	if err := c.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}

	// Two catalogd: a paused replica stays in rotation (-replica-max-lag
	// 1h) so that another user's read can be stale.
	keys := filepath.Join(t.TempDir(), "keys")
	if err := keygen.Run(ctx, []string{"-dir", keys, "-kid", "k1"}, noEnv, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	var bases []string
	for range 2 {
		addr, _, _, stop := startRun(t, "-db", c.Primary.DSN("riff"), "-keys", keys,
			"-db-replicas", c.Standbys[0].DSN("riff")+","+c.Standbys[1].DSN("riff"),
			"-replica-max-lag", "1h", "-listen", "127.0.0.1:0", "-workers", "0",
			"-argon2-memory", "8KiB", "-argon2-time", "1")
		t.Cleanup(func() { stop() })
		bases = append(bases, "http://"+addr)
	}
	lb := func(i int) string { return bases[i%len(bases)] }
	for _, b := range bases {
		eventually(t, "both replicas up in "+b, func() bool {
			_, db, _ := readyz(t, b)
			return len(db.Replicas) == 2 && db.Replicas[0].State == "up" && db.Replicas[1].State == "up"
		})
	}

	// The writer keeps cookies, as a browser does, and nothing else.
	writer := newReplicaClient(t, true)
	var reg tokenResponse
	writer.must(http.StatusCreated, "POST", lb(0)+"/auth/register",
		map[string]string{"email": "w@example.com", "password": "writer-password", "display_name": "W"}, &reg)
	writer.token = reg.AccessToken
	var pl struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		ItemCount int    `json:"item_count"`
	}
	h := writer.must(http.StatusCreated, "POST", lb(1)+"/playlist", map[string]any{"name": "Road", "is_public": true}, &pl)
	if h.Get(readAfterHeader) == "" {
		t.Errorf("a write's answer has no %s header", readAfterHeader)
	}
	path := "/playlist/" + strconv.FormatInt(pl.ID, 10)
	// Each add on one instance, read back at once on the other.
	for i, id := range songs[:10] {
		writer.must(http.StatusOK, "PUT", lb(i)+path+"/songs", map[string]any{"songs_id": []int64{id}}, nil)
		writer.must(http.StatusOK, "GET", lb(i+1)+path, nil, &pl)
		if pl.ItemCount != i+1 {
			t.Fatalf("after add %d, the writer read %d items on the other instance: stale", i+1, pl.ItemCount)
		}
	}
	r0, r1 := replicaReadsOf(t, bases, "replica0"), replicaReadsOf(t, bases, "replica1")
	for i := range 100 {
		writer.must(http.StatusOK, "GET", lb(i)+path, nil, &pl)
		if pl.ItemCount != 10 {
			t.Fatalf("read %d of 100: %d items, want 10: stale", i, pl.ItemCount)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Anonymous catalog reads: replica-safe, no position.
	anon := newReplicaClient(t, false)
	for i := range 40 {
		anon.must(http.StatusOK, "GET", lb(i)+"/songs/"+strconv.FormatInt(songs[i%len(songs)], 10), nil, nil)
	}
	d0, d1 := replicaReadsOf(t, bases, "replica0")-r0, replicaReadsOf(t, bases, "replica1")-r1
	t.Logf("replica reads during 100 writer reads and 40 anonymous ones: replica0 %v, replica1 %v, primary %v",
		d0, d1, metric(t, bases[0], `riff_db_reads_total{pool="primary"}`)+metric(t, bases[1], `riff_db_reads_total{pool="primary"}`))
	if d0 == 0 || d1 == 0 {
		t.Errorf("reads did not spread over the replicas: replica0 %v, replica1 %v", d0, d1)
	}

	// Replication paused on both standbys: the writer renames the
	// playlist and reads its new name (from the primary); another user
	// reads the old one from a replica; the lag shows.
	for _, n := range c.Standbys {
		if err := n.PauseReplay(ctx); err != nil {
			t.Fatal(err)
		}
	}
	writer.must(http.StatusOK, "PATCH", lb(0)+path, map[string]any{"name": "Road, renamed"}, nil)
	writer.must(http.StatusOK, "GET", lb(1)+path, nil, &pl)
	if pl.Name != "Road, renamed" {
		t.Errorf("the writer read %q with replay paused, want its own write", pl.Name)
	}
	anon.must(http.StatusOK, "GET", lb(1)+path, nil, &pl)
	if pl.Name != "Road" {
		t.Errorf("another user read %q on paused replicas, want the stale Road (were the replicas read?)", pl.Name)
	}
	eventually(t, "the lag metric to show the paused replicas", func() bool {
		return metric(t, bases[1], `riff_db_replica_lag_seconds{replica="replica0"}`) > 0 &&
			metric(t, bases[1], `riff_db_replica_lag_seconds{replica="replica1"}`) > 0
	})
	for _, n := range c.Standbys {
		if err := n.ResumeReplay(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the replicas to catch up", func() bool {
		anon.must(http.StatusOK, "GET", lb(0)+path, nil, &pl)
		return pl.Name == "Road, renamed"
	})

	// A replica stopped mid-run: reads never fail; restarted, it rejoins.
	var failed atomic.Int64
	var reads atomic.Int64
	var firstFailure atomic.Value // string: what the first failed read got
	stopReads := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		hc := &http.Client{Timeout: 30 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stopReads:
				return
			default:
			}
			res, err := hc.Get(lb(i) + "/songs/" + strconv.FormatInt(songs[i%len(songs)], 10))
			reads.Add(1)
			if err != nil {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, err.Error())
				continue
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != http.StatusOK {
				failed.Add(1)
				firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %s", res.StatusCode, body))
			}
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := c.Standbys[1].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for _, b := range bases {
		eventually(t, "replica1 down in "+b, func() bool {
			_, db, _ := readyz(t, b)
			return len(db.Replicas) == 2 && db.Replicas[1].State == "down"
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := c.Standbys[1].Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, b := range bases {
		eventually(t, "replica1 back in "+b, func() bool {
			_, db, _ := readyz(t, b)
			return len(db.Replicas) == 2 && db.Replicas[1].State == "up"
		})
	}
	back := replicaReadsOf(t, bases, "replica1")
	eventually(t, "replica1 serving reads again", func() bool { return replicaReadsOf(t, bases, "replica1") > back })
	close(stopReads)
	wg.Wait()
	t.Logf("reads while replica1 stopped and restarted: %d, failed %d", reads.Load(), failed.Load())
	if failed.Load() != 0 {
		t.Errorf("%d of %d reads failed while a replica stopped; the first: %v", failed.Load(), reads.Load(), firstFailure.Load())
	}

	// The primary stopped: writes answer 503 database_unavailable with
	// Retry-After; reads go on from the replicas; /readyz stays ready.
	if err := c.Primary.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for i, b := range bases {
		status, h, body := writer.do("POST", b+"/playlist", map[string]any{"name": "Lost"})
		var p problem
		json.Unmarshal(body, &p)
		if status != http.StatusServiceUnavailable || p.Code != "database_unavailable" || h.Get("Retry-After") == "" ||
			h.Get("Content-Type") != "application/problem+json" {
			t.Errorf("instance %d: write with the primary down = %d %s (Retry-After %q), want 503 database_unavailable with Retry-After",
				i, status, body, h.Get("Retry-After"))
		}
		writer.must(http.StatusOK, "GET", b+path, nil, &pl)
		if pl.Name != "Road, renamed" {
			t.Errorf("instance %d: read with the primary down: %q", i, pl.Name)
		}
		anon.must(http.StatusOK, "GET", b+"/songs/"+strconv.FormatInt(songs[0], 10), nil, nil)
	}
	for _, b := range bases {
		eventually(t, "the primary seen down in "+b, func() bool {
			status, db, _ := readyz(t, b)
			return status == http.StatusOK && db.Primary == "down"
		})
		_, _, body := readyz(t, b)
		if strings.Contains(body, "127.0.0.1") || strings.Contains(body, fmt.Sprint(c.Standbys[0].Port)) {
			t.Errorf("/readyz shows replica addresses: %s", body)
		}
	}
}

// TestReplicasRefusedWithSQLite: -db-replicas needs PostgreSQL, and says
// so before anything starts.
func TestReplicasRefusedWithSQLite(t *testing.T) {
	_, err := parseFlags([]string{"-db", "file:x.db", "-db-replicas", "postgres://127.0.0.1:5433/riff"}, noEnv, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "-db-replicas") || !strings.Contains(err.Error(), "SQLite") {
		t.Errorf("parseFlags(SQLite + replicas) = %v, want an error naming -db-replicas and SQLite", err)
	}
	for _, args := range [][]string{
		{"-db", "postgres://127.0.0.1/riff", "-db-replicas", "mysql://x"},
		{"-db", "postgres://127.0.0.1/riff", "-db-replicas", "postgres://127.0.0.1:5433/riff", "-replica-max-lag", "0s"},
	} {
		if _, err := parseFlags(args, noEnv, io.Discard); err == nil {
			t.Errorf("parseFlags(%q) succeeded", args)
		}
	}
	if _, err := parseFlags([]string{"-db", "postgres://127.0.0.1/riff", "-db-replicas", "postgres://a/riff,postgres://b/riff"}, noEnv, io.Discard); err != nil {
		t.Errorf("parseFlags(two replicas): %v", err)
	}
}
