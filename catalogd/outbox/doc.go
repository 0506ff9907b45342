// Package outbox delivers one of catalogd's outboxes to its targets.
//
// An outbox is a table of rows that a change writes in its own
// transaction (see package store): purges for the edges (package purge),
// copies and deletes for the other regions (package replicate). Each
// target has a cursor in the database, the id of the last row it has. A
// Dispatcher runs, for every target, a loop of its own that hands the rows
// after the target's cursor to the user (Rows.Deliver) in id order, so
// that a target that is slow or down never holds the others back:
//
//   - nothing pending: the loop waits for Kick or Schedule.PollInterval;
//   - a failure: the loop counts it (Rows.Failed), waits an exponential
//     backoff with jitter (Schedule.BackoffMin doubling up to
//     Schedule.BackoffMax, drawn between half and all of it) and tries
//     again from the cursor it had, so a target that was down catches up
//     in order when it returns, and a restart resumes from the cursors.
//
// Every Schedule.PruneInterval it deletes the rows every target has that
// are older than Schedule.Retain (Rows.Prune).
//
// # One dispatcher per database
//
// With Schedule.Lease set (catalogd does on PostgreSQL), several catalogd
// instances on one database run a Dispatcher each, but only the holder of
// the lease works: each tries to take it every Schedule.LeaseTTL/3 and the
// holder renews it at that pace. The holder stops when the lease is
// another's, or when a whole term passed since the start of its last
// successful renewal (the database unreachable: the lease may have expired
// and been taken over); a clean stop releases it, so another instance
// takes over at once, and a holder killed without cleanup is replaced
// within a term and a try. Rows are therefore delivered at least once: at
// a handover some are delivered twice, which the users make harmless
// (purges are idempotent, copies are skipped when the target has them).
//
// # Metrics and readiness
//
// The Dispatcher registers, under the names its user gives (Metrics):
// per target the rows pending and the age of the oldest, the largest of
// both over the targets, the rows pruned, and whether this instance is the
// one working. Ready fails while some target's oldest pending row is older
// than Schedule.LagThreshold. The users count what delivering means
// (requests, objects, failures by kind) themselves.
//
// The package imports internal/obs only; it knows nothing of what the rows
// hold or where they go.
package outbox
