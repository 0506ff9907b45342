package catalogd

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// BenchmarkPostEvents posts batches of 500 play events (200 songs, 70%
// counted) to POST /events over loopback on SQLite: the whole path a
// player's batch takes, JSON to rollups. It reports events per second.
//
//	go test -run '^$' -bench PostEvents -benchtime 40x ./catalogd
func BenchmarkPostEvents(b *testing.B) {
	e := newEnv(b)
	f := e.fixture()
	songs := e.librarySongs(f, 200)
	u := e.register("listener@example.com", "L")
	now := e.clock.Now()
	client := &http.Client{}
	seq := 0
	start := time.Now()
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
}
