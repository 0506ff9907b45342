// Package purge fans catalogd's purge outbox out to every edge.
//
// A change that makes objects cached at the edges wrong (a replaced song
// version, a takedown) writes its blob-key prefixes to the purge outbox in
// the same transaction as the change (see package store). A Dispatcher
// sends them to each configured edge's admin listener as
//
//	POST {edge}/purge
//	Authorization: Bearer <purge token>
//	{"prefixes": [...]}
//
// and records, per edge, the highest outbox id the edge acknowledged (its
// cursor, in the database). The loop per edge, the backoff after a
// failure, the pruning and the one-dispatcher lease are package outbox's:
// an edge that is slow or down never holds the others back, and one that
// was down during a change gets the purge when it returns, up to
// Config.Batch prefixes per request. A refusal (4xx: a purge token the
// edge does not accept, usually because its jwks.json lacks catalogd's
// signing key) is a configuration error: it is logged at error level,
// counted, and retried with the same backoff, never in a tight loop.
//
// Purges are idempotent at the edge (a purge bumps a generation), so
// sending a row twice is harmless; the dispatcher relies on that: after a
// crash between an edge's answer and the cursor write, and at a handover
// between instances, some rows are sent more than once.
//
// # One dispatcher per database
//
// With Config.Lease set (catalogd does on PostgreSQL), several catalogd
// instances on one database run a Dispatcher each but only the holder of
// the lease LeaseName sends and prunes (see package outbox). The
// riff_purge_dispatcher gauge is 1 while this instance sends.
//
// An edge that appears in the configuration for the first time has cursor
// 0: it receives every row still in the outbox. Rows are deleted only when
// every configured edge has acknowledged them and they are older than
// Config.Retain (default one hour), so a new edge, or one renamed in the
// configuration (another URL for the same cache), also gets the purges of
// the last hour: a cache that started serving before catalogd knew about
// it cannot keep content that was purged meanwhile. Starting at the head
// instead would rely on new edges having empty caches; re-sending an hour
// of purges costs an edge nothing but a few generation bumps.
//
// The purge token is minted per request (Config.TokenTTL, default one
// minute) with subject "catalogd" and the narrowest artist, album or song
// folder covering the whole batch ("artists/" when the batch spans
// artists).
//
// # Tracing
//
// With tracing on, each request to an edge is a "purge delivery" span, the
// root of a trace of its own drawn at the trace ratio (obs.StartTrace),
// with the edge's URL, the rows, the prefixes and the outcome (delivered,
// refused, unavailable), never the token; the request carries its
// traceparent, so the edge's POST /purge span joins the trace.
//
// # Metrics and readiness
//
// On the obs metrics set:
//
//	riff_purge_outbox_pending                      rows some configured edge has not acknowledged
//	riff_purge_oldest_undelivered_seconds          age of the oldest of them (0 when none)
//	riff_purge_edge_pending{edge}                  rows the edge has not acknowledged
//	riff_purge_edge_lag_seconds{edge}              age of the oldest of them
//	riff_purge_delivered_total{edge}               rows the edge acknowledged
//	riff_purge_failures_total{edge,kind}           failed attempts: kind unavailable (network, timeout, 5xx),
//	                                               refused (4xx) or store (database)
//	riff_purge_pruned_total                        rows deleted from the outbox
//	riff_purge_dispatcher                          1 while this instance sends the outbox (holds the lease), else 0
//
// Ready, registered as a readiness check, fails while some edge's oldest
// unacknowledged purge is older than Config.LagThreshold; its error names
// the lagging edges (obs logs it; /readyz shows only the check's name).
package purge
