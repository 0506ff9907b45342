package catalogd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"testing"
	"time"

	"riff/catalogd/store/storetest"
)

// libraryBenchEnv is the server the library benchmarks run on: SQLite,
// or with RIFF_BENCH_DB set (catalogd/bench_test.go) PostgreSQL, in a
// fresh schema of RIFF_TEST_POSTGRES's database (these benchmarks make
// their own songs; the 1M-song catalog is the store benchmarks' concern).
func libraryBenchEnv(b *testing.B) *env {
	if os.Getenv("RIFF_BENCH_DB") != "" {
		return newEnvDB(b, storetest.PostgresDSN(b))
	}
	return newEnv(b)
}

// BenchmarkPostEvents posts batches of 500 play events (200 songs, 70%
// counted) to POST /events over loopback on SQLite (PostgreSQL: see
// libraryBenchEnv): the whole path a player's batch takes, JSON to
// rollups. It reports events per second and per CPU-second of the process
// (server and client).
//
//	go test -run '^$' -bench PostEvents -benchtime 40x ./catalogd
func BenchmarkPostEvents(b *testing.B) {
	e := libraryBenchEnv(b)
	f := e.fixture()
	songs := e.librarySongs(f, 200)
	u := e.register("listener@example.com", "L")
	now := e.clock.Now()
	client := &http.Client{}
	seq := 0
	start, cpu0 := time.Now(), processCPU()
	for b.Loop() {
		evs := make([]map[string]any, 500)
		for j := range evs {
			seq++
			ms := int64(10_000 + seq*7919%200_000)
			evs[j] = event(fmt.Sprintf("ev-%d", seq), songs[seq%len(songs)], now.Add(-time.Duration(seq%86400)*time.Second), ms)
		}
		body, _ := json.Marshal(map[string]any{"events": evs})
		req, _ := http.NewRequest("POST", e.url+"/events", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+u.AccessToken)
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
	b.ReportMetric(float64(seq)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64(seq)/(float64(processCPU()-cpu0)/1e9), "events/cpu-s")
}

// BenchmarkPlaylistAPI10k times PUT /playlists/{id}/songs (one song at a
// random position) and DELETE /playlists/{id}/items/{item_id} over
// loopback on a SQLite playlist of 10,000 items (9,999 between calls).
//
//	go test -run '^$' -bench PlaylistAPI10k -benchtime 300x ./catalogd
func BenchmarkPlaylistAPI10k(b *testing.B) {
	e := libraryBenchEnv(b)
	f := e.fixture()
	songs := e.librarySongs(f, 100)
	u := e.register("listener@example.com", "L")
	r := e.do(request{method: "POST", path: "/playlists", token: u.AccessToken, body: map[string]any{"name": "Big"}})
	var pl playlistDetailView
	r.decode(b, &pl)
	path := "/playlists/" + itoa(pl.ID)
	for left := 9_999; left > 0; left -= 100 {
		wantStatus(b, e.do(request{method: "PUT", path: path + "/songs", token: u.AccessToken,
			body: map[string]any{"songs_id": songs[:min(100, left)]}}), http.StatusOK, "")
	}
	var add, remove time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		r := e.do(request{method: "PUT", path: path + "/songs", token: u.AccessToken,
			body: map[string]any{"songs_id": []int64{songs[i%100]}, "position": (i * 7919) % 10_000}})
		t1 := time.Now()
		var ev playlistEditView
		r.decode(b, &ev)
		if r.StatusCode != http.StatusOK || ev.ItemCount != 10_000 {
			b.Fatalf("add: %d %s", r.StatusCode, r.body)
		}
		r = e.do(request{method: "DELETE", path: path + "/items/" + itoa(ev.Added[0].ItemID), token: u.AccessToken})
		remove += time.Since(t1)
		add += t1.Sub(t0)
		if r.StatusCode != http.StatusOK {
			b.Fatalf("remove: %d %s", r.StatusCode, r.body)
		}
	}
	b.ReportMetric(float64(add.Microseconds())/float64(b.N), "add-µs/op")
	b.ReportMetric(float64(remove.Microseconds())/float64(b.N), "remove-µs/op")
}
