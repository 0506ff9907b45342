package cluster_test

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"strconv"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/internal/pgcluster"
)

// TestReplicasBehindTheBalancer: the whole catalog topology of issue 15 —
// a PostgreSQL primary with two streaming standbys, two catalogd reading
// from both (-db-replicas), HAProxy in front. A writer (a cookie jar, as a
// browser keeps) creates a playlist and adds songs through the balancer,
// and reads it back after every add and then 100 times in a row: never
// stale, whichever instance answers. Reads spread over both replicas. A
// standby stopped mid-run: reads go on, it rejoins when started again.
func TestReplicasBehindTheBalancer(t *testing.T) {
	haproxy(t)
	pg := pgcluster.ForTest(t, pgcluster.Options{Standbys: 2})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	dsn := pg.Primary.DSN("riff")
	st, err := store.Open(ctx, dsn, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Seed(ctx, store.SeedOptions{Songs: 40, Seed: 3, TrendingSongs: -1}); err != nil {
		t.Fatal(err)
	}
	songs, err := st.SampleSongIDs(ctx, 12, 1)
	st.Close()
	if err != nil || len(songs) < 12 {
		t.Fatalf("songs: %v %v", songs, err)
	}
	if err := pg.WaitReplayed(ctx); err != nil {
		t.Fatal(err)
	}
	replicas := pg.Standbys[0].DSN("riff") + "," + pg.Standbys[1].DSN("riff")
	c, err := startOn(t, dsn, 2, "-workers", "0", "-db-replicas", replicas)
	if err != nil {
		t.Fatal(err)
	}
	replicaReads := func(name string) float64 {
		var n float64
		for i := range 2 {
			n += max(0, metric(c, i, `riff_db_reads_total{pool="`+name+`"}`))
		}
		return n
	}
	up := func(i int, name string) bool {
		return metric(c, i, `riff_db_replica_state{replica="`+name+`",state="up"}`) == 1
	}
	waitFor(t, "both instances to see both replicas up", time.Minute, func() bool {
		return up(0, "replica0") && up(0, "replica1") && up(1, "replica0") && up(1, "replica1")
	})

	w := user(t, c.URL, "writer")
	jar, _ := cookiejar.New(nil)
	w.http.Jar = jar // the read-after position rides in a cookie
	var pl struct {
		ID        int64  `json:"id"`
		Name      string `json:"name"`
		ItemCount int    `json:"item_count"`
	}
	w.must("POST", "/playlist", map[string]any{"name": "Road", "is_public": true}, 201, &pl)
	path := "/playlist/" + strconv.FormatInt(pl.ID, 10)
	r0, r1 := replicaReads("replica0"), replicaReads("replica1")
	for i, id := range songs[:10] {
		w.must("PUT", path+"/songs", map[string]any{"songs_id": []int64{id}}, 200, nil)
		w.must("GET", path, nil, 200, &pl)
		if pl.ItemCount != i+1 {
			t.Fatalf("after add %d the writer read %d items through the balancer: stale", i+1, pl.ItemCount)
		}
	}
	for i := range 100 {
		w.must("GET", path, nil, 200, &pl)
		if pl.ItemCount != 10 {
			t.Fatalf("read %d of 100: %d items, want 10: stale", i+1, pl.ItemCount)
		}
	}
	anon := newClient(t, c.URL)
	for i := range 60 {
		anon.must("GET", "/songs/"+strconv.FormatInt(songs[i%len(songs)], 10), nil, 200, nil)
	}
	d0, d1 := replicaReads("replica0")-r0, replicaReads("replica1")-r1
	t.Logf("replica reads: replica0 %v, replica1 %v", d0, d1)
	if d0 == 0 || d1 == 0 {
		t.Errorf("reads did not spread over the replicas: replica0 %v, replica1 %v", d0, d1)
	}

	// A standby stops mid-run: every read still answers, and the
	// instances take it out of rotation; started again, it rejoins.
	if err := pg.Standbys[1].Stop(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		code, b, _, err := anon.do("GET", "/songs/"+strconv.FormatInt(songs[i%len(songs)], 10), nil, nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("read %d with a standby down: %d %v %s", i, code, err, b)
		}
		w.must("GET", path, nil, 200, &pl)
		if pl.ItemCount != 10 {
			t.Fatalf("with a standby down the writer read %d items", pl.ItemCount)
		}
	}
	waitFor(t, "replica1 out of rotation", time.Minute, func() bool { return !up(0, "replica1") && !up(1, "replica1") })
	if err := pg.Standbys[1].Start(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "replica1 back in rotation", 2*time.Minute, func() bool { return up(0, "replica1") && up(1, "replica1") })
	before := replicaReads("replica1")
	waitFor(t, "reads on replica1 again", time.Minute, func() bool {
		anon.must("GET", "/songs/"+strconv.FormatInt(songs[0], 10), nil, 200, nil)
		return replicaReads("replica1") > before
	})
}

// waitFor polls cond every 50 ms until it holds, failing t after limit.
func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
