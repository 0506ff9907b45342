// Package replicate copies published song versions from the home region's
// blob store to every other region's, and deletes collected ones there.
//
// Publishing a version writes a copy row to the replication outbox in the
// publishing transaction, and collecting one (GC after a replacement or a
// takedown) a delete row (see package store, replication.go). A
// Dispatcher applies the rows to each target region in id order, one
// goroutine per region, so a region that is slow or down never holds the
// others back:
//
//   - copy: every object under the version folder in the source store is
//     streamed to the target (blob.Store Get → Put, nothing buffered
//     whole) while its SHA-256 is computed; the copy is then read back
//     from the target and its size and SHA-256 must match, or the row
//     fails and is retried. An object already in the target with the same
//     size and checksum is left alone, so a retried or re-sent row costs
//     reads, not writes. When source and target are buckets of the same
//     S3 service (blob.S3.SameService) the copy is server-side
//     (CopyObject): no bytes pass through catalogd, and the result is
//     verified the same way.
//   - delete: every object under the version folder in the target is
//     deleted.
//
// Applying a row and recording it are one step in the database
// (store.AckReplication): the region's cursor moves to the row and the
// version is marked present in (copy) or absent from (delete) the region,
// which is what catalogd reads to choose playback URLs. A failed row is
// retried after an exponential backoff with jitter (Config.BackoffMin
// doubling up to Config.BackoffMax) and the cursor does not move: a region
// whose store was down catches up, in order, when it returns, and a
// catalogd restart resumes from the cursors. Rows every target applied are
// deleted once older than Config.Retain.
//
// With Config.Lease set (catalogd does on PostgreSQL) only the holder of
// the lease LeaseName among the catalogd instances on one database
// replicates; the others wait to take over. The loop per region, the
// backoff, the pruning and the lease are package outbox's.
//
// # Metrics
//
//	riff_replication_pending{region}              outbox rows the region has not applied
//	riff_replication_lag_seconds{region}          age of the oldest of them (0 when none)
//	riff_replication_outbox_pending               the largest of the regions' pending rows
//	riff_replication_oldest_unapplied_seconds     the largest of the regions' lags
//	riff_replication_applied_total{region,op}     rows applied (op copy or delete)
//	riff_replication_objects_total{region}        objects written to the region (not counting skips)
//	riff_replication_bytes_total{region}          bytes written to the region
//	riff_replication_failures_total{region,kind}  failed attempts: kind source (reading the home store),
//	                                              target (the region's store), verify (a copy that does not
//	                                              match) or store (the database)
//	riff_replication_pruned_total                 rows deleted from the outbox
//	riff_replication_dispatcher                   1 while this instance replicates
//
// Ready fails while a region's oldest unapplied row is older than
// Config.LagThreshold.
//
// The package imports package store for its row type only, package
// outbox, and internal/blob and internal/obs; it knows nothing of HTTP or
// playback.
package replicate
