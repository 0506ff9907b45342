package catalogd

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"riff/catalogd/store"
	"riff/internal/obs"
)

// Read-your-writes with read replicas (-db-replicas).
//
// After a request whose writes committed, the answer carries the
// primary's WAL position as of then, in the Riff-Read-After header and
// the riff_read_after cookie. A request that brings it back (the header,
// else the cookie) reads from a replica only once that replica has
// replayed that position, else from the primary (store.ReadAfter). The
// position travels with the client, so it holds whichever catalogd
// behind the load balancer serves the next request. As a second guard
// for clients that keep neither, each catalogd remembers the position of
// each user's last write for a while (recentWrites): a request with that
// user's access token gets it too.
//
// Requests that may write (any method but GET and HEAD) read the primary
// throughout: what a handler reads back after its own write is fresh.
// Without replicas none of this runs.

// readAfterHeader and readAfterCookie carry the position.
const (
	readAfterHeader = "Riff-Read-After"
	readAfterCookie = "riff_read_after"
)

// readState is a request's read-your-writes state, in its context.
type readState struct {
	mark   *store.WriteMark
	userID int64 // set by wrap once the caller is known
	lsn    store.LSN
}

type readStateKey struct{}

// readYourWrites is the middleware: it passes the client's position to the
// store, sends writing requests to the primary and, when a request wrote,
// hands the new position back.
func (s *Server) readYourWrites(next http.Handler) http.Handler {
	if !s.store.HasReplicas() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if lsn, ok := clientLSN(r); ok {
			ctx = store.ReadAfter(ctx, lsn)
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			ctx = store.ReadPrimary(ctx)
		}
		ctx, mark := store.TrackWrites(ctx)
		st := &readState{mark: mark}
		ctx = context.WithValue(ctx, readStateKey{}, st)
		next.ServeHTTP(&lsnWriter{ResponseWriter: w, s: s, r: r.WithContext(ctx), st: st}, r.WithContext(ctx))
	})
}

// clientLSN reads the position a request carries (header, else cookie).
func clientLSN(r *http.Request) (store.LSN, bool) {
	v := r.Header.Get(readAfterHeader)
	if v == "" {
		if c, err := r.Cookie(readAfterCookie); err == nil {
			v = c.Value
		}
	}
	if v == "" {
		return 0, false
	}
	lsn, err := store.ParseLSN(v)
	return lsn, err == nil
}

// readAsUser adds the user's remembered position to the request's
// context, and notes the user for the write that may follow.
func (s *Server) readAsUser(r *http.Request, userID int64) *http.Request {
	st, _ := r.Context().Value(readStateKey{}).(*readState)
	if st == nil || userID == 0 {
		return r
	}
	st.userID = userID
	if lsn := s.recent.get(userID); lsn != 0 {
		return r.WithContext(store.ReadAfter(r.Context(), lsn))
	}
	return r
}

// lsnWriter sets the position header and cookie when the response
// starts, if the request wrote.
type lsnWriter struct {
	http.ResponseWriter
	s       *Server
	r       *http.Request
	st      *readState
	started bool
}

func (w *lsnWriter) start() {
	if w.started {
		return
	}
	w.started = true
	if !w.st.mark.Wrote() {
		return
	}
	ctx, cancel := context.WithTimeout(w.r.Context(), 2*time.Second)
	defer cancel()
	lsn, err := w.s.store.WriteLSN(ctx)
	if err != nil {
		// The write committed; the primary went away since. Reads of this
		// client may be stale until a replica catches up.
		w.s.log.WarnContext(w.r.Context(), "read-after position", "err", err)
		return
	}
	w.st.lsn = lsn
	if w.st.userID != 0 {
		w.s.recent.put(w.st.userID, lsn)
	}
	v := lsn.String()
	w.Header().Set(readAfterHeader, v)
	http.SetCookie(w.ResponseWriter, &http.Cookie{
		Name: readAfterCookie, Value: v, Path: "/", MaxAge: int(w.s.recent.ttl / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: w.r.TLS != nil,
	})
}

func (w *lsnWriter) WriteHeader(code int) {
	w.start()
	w.ResponseWriter.WriteHeader(code)
}

func (w *lsnWriter) Write(b []byte) (int, error) {
	w.start()
	return w.ResponseWriter.Write(b)
}

// Flush supports streaming answers (http.Flusher).
func (w *lsnWriter) Flush() {
	w.start()
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *lsnWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// recentWrites remembers the WAL position of each user's last write for
// ttl. It is safe for concurrent use.
type recentWrites struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[int64]recentWrite
}

type recentWrite struct {
	lsn store.LSN
	at  time.Time
}

// recentWritesTTL is how long a position matters: a replica in rotation
// lags at most -replica-max-lag, so a write older than a few of those is
// on every replica in rotation.
func recentWritesTTL(maxLag time.Duration) time.Duration {
	return max(time.Minute, 4*maxLag)
}

func newRecentWrites(ttl time.Duration, now func() time.Time) *recentWrites {
	return &recentWrites{ttl: ttl, now: now, m: map[int64]recentWrite{}}
}

func (rw *recentWrites) put(userID int64, lsn store.LSN) {
	now := rw.now()
	rw.mu.Lock()
	defer rw.mu.Unlock()
	if len(rw.m) >= 4096 {
		for id, e := range rw.m {
			if now.Sub(e.at) > rw.ttl {
				delete(rw.m, id)
			}
		}
	}
	if e, ok := rw.m[userID]; !ok || lsn > e.lsn {
		rw.m[userID] = recentWrite{lsn, now}
	}
}

func (rw *recentWrites) get(userID int64) store.LSN {
	rw.mu.Lock()
	defer rw.mu.Unlock()
	e, ok := rw.m[userID]
	if !ok {
		return 0
	}
	if rw.now().Sub(e.at) > rw.ttl {
		delete(rw.m, userID)
		return 0
	}
	return e.lsn
}

// lagSeconds is a replica's lag in seconds, -1 when unknown.
func lagSeconds(lag time.Duration) float64 {
	if lag < 0 {
		return -1
	}
	return lag.Seconds()
}

// exportReplicas exports the replicas' health (riff_db_replica_*: the
// RiffReplica* alerts) and shows it in /readyz's detail, by name
// (replica0, …), never by address. Without replicas it does nothing.
func exportReplicas(o *obs.Obs, st *store.Store) {
	reps := st.Replicas()
	if len(reps) == 0 {
		return
	}
	find := func(name string) store.ReplicaStatus {
		for _, r := range st.Replicas() {
			if r.Name == name {
				return r
			}
		}
		return store.ReplicaStatus{}
	}
	o.Metrics.NewGauge(`riff_db_primary_up`, func() float64 {
		if st.PrimaryUp() {
			return 1
		}
		return 0
	})
	o.Metrics.NewGauge(`riff_db_reads_total{pool="primary"}`, func() float64 { return float64(st.PrimaryReads()) })
	for _, r := range reps {
		name := r.Name
		o.Metrics.NewGauge(fmt.Sprintf(`riff_db_replica_lag_seconds{replica=%q}`, name), func() float64 {
			return lagSeconds(find(name).Lag)
		})
		o.Metrics.NewGauge(fmt.Sprintf(`riff_db_reads_total{pool=%q}`, name), func() float64 {
			return float64(find(name).Reads)
		})
		for _, state := range []string{store.ReplicaUp, store.ReplicaLagging, store.ReplicaDown} {
			o.Metrics.NewGauge(fmt.Sprintf(`riff_db_replica_state{replica=%q,state=%q}`, name, state), func() float64 {
				if find(name).State == state {
					return 1
				}
				return 0
			})
		}
	}
	o.AddDetail("db", func() any {
		primary := "up"
		if !st.PrimaryUp() {
			primary = "down"
		}
		type rep struct {
			Name       string  `json:"name"`
			State      string  `json:"state"`
			LagSeconds float64 `json:"lag_seconds"`
		}
		var list []rep
		for _, r := range st.Replicas() {
			list = append(list, rep{r.Name, r.State, lagSeconds(r.Lag)})
		}
		return map[string]any{"primary": primary, "replicas": list}
	})
}
