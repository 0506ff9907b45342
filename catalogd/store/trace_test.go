package store

import (
	"context"
	"database/sql"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// recordingTracer is a Tracer over the OpenTelemetry SDK that keeps its
// spans in memory.
type recordingTracer struct {
	on  bool
	t   trace.Tracer
	rec *tracetest.SpanRecorder
}

func newRecordingTracer() *recordingTracer {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	return &recordingTracer{on: true, t: tp.Tracer("test"), rec: rec}
}

func (r *recordingTracer) Tracing() bool { return r.on }

func (r *recordingTracer) StartSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	return r.t.Start(ctx, name, trace.WithAttributes(attrs...))
}

// TestStoreSpans: with a Tracer, each store call from a sampled context is
// a span under the caller's, named after the Store method, with the
// database attributes; a transaction is one span.
func TestStoreSpans(t *testing.T) {
	eachDB(t, func(t *testing.T, s *Store, clock *testClock) {
		c := newCatalog(t, s)
		tr := newRecordingTracer()
		s.traceSQL(tr)
		ctx, parent := tr.t.Start(context.Background(), "request")
		if _, err := s.SongByID(ctx, c.bohemian.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.LikeSong(ctx, c.owner.ID, c.bohemian.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateArtist(ctx, c.owner.ID, NewArtist{Name: "Traced"}); err != nil {
			t.Fatal(err)
		}
		parent.End()

		wantSystem := map[Dialect]string{SQLite: "sqlite", Postgres: "postgresql"}[s.dialect]
		got := map[string]string{} // span name → db.operation.name
		for _, sp := range tr.rec.Ended() {
			if sp.Name() == "request" {
				continue
			}
			attrs := map[attribute.Key]string{}
			for _, kv := range sp.Attributes() {
				attrs[kv.Key] = kv.Value.Emit()
			}
			if sp.Parent().SpanID() != parent.SpanContext().SpanID() {
				t.Errorf("span %q: parent %v, want the request's %v", sp.Name(), sp.Parent().SpanID(), parent.SpanContext().SpanID())
			}
			if attrs["db.system.name"] != wantSystem {
				t.Errorf("span %q: db.system.name %q, want %q", sp.Name(), attrs["db.system.name"], wantSystem)
			}
			got[sp.Name()] = attrs["db.operation.name"]
		}
		for name, op := range map[string]string{"store.SongByID": "SELECT", "store.LikeSong": "INSERT", "store.CreateArtist": "TRANSACTION"} {
			if got[name] != op {
				t.Errorf("span %q: db.operation.name %q, want %q (spans %v)", name, got[name], op, got)
			}
		}

		// Unsampled, or with tracing off, no span.
		n := len(tr.rec.Ended())
		s.SongByID(context.Background(), c.bohemian.ID)
		tr.on = false
		s.SongByID(ctx, c.bohemian.ID)
		if m := len(tr.rec.Ended()); m != n {
			t.Errorf("%d spans from unsampled or untraced calls", m-n)
		}
	})
}

// fakeDB answers every statement with nothing.
type fakeDB struct{}

func (fakeDB) QueryContext(context.Context, string, ...any) (*sql.Rows, error) { return nil, nil }
func (fakeDB) QueryRowContext(context.Context, string, ...any) *sql.Row        { return nil }
func (fakeDB) ExecContext(context.Context, string, ...any) (sql.Result, error) { return nil, nil }

// TestSpansCostNothingUnsampled: the span wrappers allocate nothing for a
// call from an unsampled context, or while the Tracer does not trace.
func TestSpansCostNothingUnsampled(t *testing.T) {
	tr := newRecordingTracer()
	sp := &spanner{t: tr}
	db := tracedDB{tracedQuerier{fakeDB{}, sp}, fakeDB{}}
	sampled, span := tr.t.Start(context.Background(), "request")
	defer span.End()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		on   bool
	}{
		{"unsampled", context.Background(), true},
		{"tracing off", sampled, false},
	} {
		tr.on = tc.on
		n := testing.AllocsPerRun(100, func() {
			db.QueryContext(tc.ctx, "SELECT 1")
			db.ExecContext(tc.ctx, "DELETE FROM t")
			if _, _, ok := sp.start(tc.ctx, ""); ok {
				t.Fatal("span started")
			}
		})
		if n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", tc.name, n)
		}
	}
}
