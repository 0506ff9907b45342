package store

import (
	"context"
	"database/sql"
	"runtime"
	"strings"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing.
//
// With Options.Tracer set and tracing on, every store call that reaches
// the database from a sampled request (or job) makes a client span, a
// child of the caller's span: one per statement run outside a
// transaction, one per transaction (inTx). A span is named after the
// exported Store method that made it ("store.LikedSongs") and carries the
// OpenTelemetry database attributes: db.system.name (sqlite or
// postgresql), db.operation.name (the statement's verb, e.g. SELECT, or
// TRANSACTION) and db.query.text (the SQL with its $n placeholders, never
// the values). A query's span covers running it, not reading its rows.
//
// Without a Tracer nothing is wrapped: the store runs exactly as
// untraced (catalogd passes none when tracing is off). With one, a call
// from an unsampled context, or while the Tracer does not trace, costs two
// checks and allocates nothing (TestSpansCostNothingUnsampled).

// Tracer starts spans; *obs.Obs is one. Tracing reports whether spans
// are exported at all; StartSpan returns a no-op span unless ctx carries a
// sampled span.
type Tracer interface {
	Tracing() bool
	StartSpan(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span)
}

// sqlDB runs statements outside a transaction: *sql.DB, or tracedDB
// around it.
type sqlDB interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// traceSQL wraps the store's statement runners in spans made by t (nil:
// it leaves them alone).
func (s *Store) traceSQL(t Tracer) {
	if t == nil {
		return
	}
	system := semconv.DBSystemNameSQLite
	if s.dialect == Postgres {
		system = semconv.DBSystemNamePostgreSQL
	}
	s.spans = &spanner{t: t, system: system}
	s.read = tracedQuerier{s.read, s.spans}
	s.write = tracedDB{tracedQuerier{s.write, s.spans}, s.write}
}

// spanner starts the store's spans; nil when tracing is off.
type spanner struct {
	t      Tracer
	system attribute.KeyValue
}

// start starts the span of a statement (query) or of a transaction
// (query ""), when ctx is sampled; ok false otherwise (nothing started,
// nothing allocated).
func (sp *spanner) start(ctx context.Context, query string) (_ context.Context, _ trace.Span, ok bool) {
	if sp == nil || !trace.SpanContextFromContext(ctx).IsSampled() || !sp.t.Tracing() {
		return ctx, nil, false
	}
	op, text := "TRANSACTION", []attribute.KeyValue{}
	if query != "" {
		op, text = sqlVerb(query), []attribute.KeyValue{semconv.DBQueryText(query)}
	}
	ctx, span := sp.t.StartSpan(ctx, "store."+storeMethod(),
		append(text, sp.system, semconv.DBOperationName(op))...)
	return ctx, span, true
}

// end ends span, marking it failed for an error other than "no rows".
func end(span trace.Span, err error) {
	if err != nil && err != sql.ErrNoRows {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// sqlVerb is a statement's first word in upper case (SELECT, INSERT, WITH…).
func sqlVerb(q string) string {
	q = strings.TrimSpace(q)
	if i := strings.IndexFunc(q, unicode.IsSpace); i > 0 {
		q = q[:i]
	}
	return strings.ToUpper(q)
}

// storeMethod names the exported Store (or JobQueue, Outbox) method on
// the call stack that is running the statement: what the caller asked
// for, e.g. "LikedSongs". Only sampled calls pay for the stack walk.
func storeMethod() string {
	var pcs [16]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	for {
		f, more := frames.Next()
		pkg, name, ok := strings.Cut(f.Function, ".(")
		if ok && strings.HasSuffix(pkg, "/catalogd/store") {
			if _, method, ok := strings.Cut(name, ")."); ok && method != "" && unicode.IsUpper(rune(method[0])) && !strings.Contains(method, ".") {
				return method
			}
		}
		if !more {
			return "call"
		}
	}
}

// tracedQuerier runs queries in spans.
type tracedQuerier struct {
	q  querier
	sp *spanner
}

func (t tracedQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx, span, ok := t.sp.start(ctx, query)
	rows, err := t.q.QueryContext(ctx, query, args...)
	if ok {
		end(span, err)
	}
	return rows, err
}

func (t tracedQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx, span, ok := t.sp.start(ctx, query)
	row := t.q.QueryRowContext(ctx, query, args...)
	if ok {
		end(span, row.Err())
	}
	return row
}

// tracedDB runs statements in spans.
type tracedDB struct {
	tracedQuerier
	db sqlDB
}

func (t tracedDB) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, span, ok := t.sp.start(ctx, query)
	res, err := t.db.ExecContext(ctx, query, args...)
	if ok {
		end(span, err)
	}
	return res, err
}
