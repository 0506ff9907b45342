package catalogd

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"riff/catalogd/store"
	"riff/catalogd/store/storetest"
	"riff/internal/playtoken"
	"riff/keygen"
)

// TestRunPurgeFanOut: with -purge-edges, Run sends outbox rows to the edge
// with a purge token signed by its key, and /readyz has the purge check; on
// SQLite and on PostgreSQL, where it sends as the holder of the dispatcher
// lease.
func TestRunPurgeFanOut(t *testing.T) {
	for _, dialect := range []string{"sqlite", "postgres"} {
		t.Run(dialect, func(t *testing.T) {
			dir := t.TempDir()
			keys := filepath.Join(dir, "keys")
			if err := keygen.Run(context.Background(), []string{"-dir", keys, "-kid", "k1"}, noEnv, io.Discard, io.Discard); err != nil {
				t.Fatal(err)
			}
			ks, err := playtoken.LoadKeySet(filepath.Join(keys, playtoken.JWKSFile))
			if err != nil {
				t.Fatal(err)
			}
			verifier := playtoken.NewVerifier(ks, playtoken.VerifierOptions{})
			// A stand-in for an edge's admin listener that checks the token as an
			// edge does and records the prefixes.
			var mu sync.Mutex
			var got []string
			edge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
				c, err := verifier.Verify([]byte(tok), playtoken.TypePurge)
				var req struct{ Prefixes []string }
				if r.Method != http.MethodPost || r.URL.Path != "/purge" || err != nil || json.NewDecoder(r.Body).Decode(&req) != nil {
					http.Error(w, "refused", http.StatusForbidden)
					return
				}
				for _, p := range req.Prefixes {
					if own := strings.TrimSuffix(c.Prefix, "/"); p != c.Prefix && !c.Allows(strings.TrimSuffix(p, "/")) && own != "artists" {
						http.Error(w, "prefix not covered", http.StatusForbidden)
						return
					}
				}
				mu.Lock()
				got = append(got, req.Prefixes...)
				mu.Unlock()
				w.Write([]byte(`{"purged":[]}`))
			}))
			t.Cleanup(edge.Close)

			db := "file:" + filepath.Join(dir, "riff.db")
			if dialect == "postgres" {
				db = storetest.PostgresDSN(t)
			}
			addr, _, logs, stop := startRun(t, "-listen", "127.0.0.1:0", "-db", db, "-keys", keys,
				"-argon2-memory", "64KiB", "-argon2-time", "1", "-purge-edges", edge.URL+"/, ")
			// Another writer on the same database (as the upload path would be).
			st, err := store.Open(context.Background(), db, store.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if err := st.EnqueuePurge(context.Background(), "artists/1/albums/2/songs/3/"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				mu.Lock()
				done := slices.Equal(got, []string{"artists/1/albums/2/songs/3/"})
				mu.Unlock()
				if done {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("edge got %q, want the song's folder; logs:\n%s", got, logs)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if code, body := httpGet(t, "http://"+addr+"/readyz"); code != 200 {
				t.Errorf("/readyz = %d %s", code, body)
			}
			// The edge records the prefix before it answers; the dispatcher
			// counts the delivery when the answer arrives.
			eventually(t, "the delivery to "+edge.URL+" in the metrics", func() bool {
				_, body := httpGet(t, "http://"+addr+"/metrics")
				return strings.Contains(body, `riff_purge_delivered_total{edge="`+edge.URL+`"} 1`)
			})
			// On PostgreSQL the dispatcher holds the lease (one catalogd sends).
			if _, body := httpGet(t, "http://"+addr+"/metrics"); !strings.Contains(body, "riff_purge_dispatcher 1") {
				t.Error("metrics do not say this catalogd is the purge dispatcher")
			}
			if err := stop(); err != nil {
				t.Errorf("Run after cancel = %v", err)
			}
		})
	}
}
