// Package store is catalogd's SQL layer: accounts and sessions, artists,
// albums, songs and their renditions, search and trending, on database/sql
// with two drivers:
//
//   - SQLite through modernc.org/sqlite (pure Go), the embedded default:
//     DSN "file:data/riff.db". The database runs in WAL mode with a busy
//     timeout and foreign keys on; writes go through one connection (SQLite
//     allows one writer at a time, and queuing in Go is cheaper than
//     spinning on SQLITE_BUSY) and reads through a pool of query-only
//     connections.
//   - PostgreSQL through github.com/jackc/pgx/v5/stdlib: DSN
//     "postgres://…". One pool serves reads and writes; with
//     Options.Replicas, pools on hot standbys serve the reads of the
//     replica-safe methods (replicas.go).
//
// Both run the same SQL wherever they can ($1 placeholders work in both);
// the few statements that differ (full-text search, identity sequences)
// branch on the dialect inside this package and nowhere else.
//
// # Where things are
//
// One Store is what catalogd's handlers hold; its methods are grouped in
// files by aggregate:
//
//	accounts   users.go (users, profiles), sessions.go (refresh tokens)
//	catalog    artists.go, albums.go, songs.go (incl. TakeDown),
//	           uploads.go (songs' uploaded originals), search.go, fold.go
//	library    playlists.go, likes.go, follows.go
//	events     events.go (play events, hourly rollups), trending.go
//	jobs       jobs.go: type JobQueue, the packaging and collection queue
//	outbox     outbox.go: type Outbox, the purge outbox
//	plumbing   store.go (Open, Close, the shared conn), migrate.go,
//	           stmtcache.go, seed.go (bulk demo loads), trace.go (spans),
//	           replicas.go (read replicas: routing, health, read-your-writes)
//
// JobQueue and Outbox serve background workers (the job workers, the purge
// dispatcher), not requests, so they are types of their own that share the
// Store's connections; Store embeds both, so their methods are Store's
// too. Writes that must purge edges (publishing a version, a takedown)
// enqueue into the outbox inside their own transaction (purgeInTx).
//
// # Schema and migrations
//
// Migrations are embedded (migrations/{sqlite,postgres}/NNNN_name.sql), one
// file per version with the same numbers in both folders. Open applies the
// pending ones in a single transaction (under an advisory lock on
// PostgreSQL, so several instances starting together migrate once) and
// refuses to start against a schema newer than it knows. Times are unix
// milliseconds in BIGINT columns in both databases.
//
// # Search
//
// Names are folded (lower case, diacritics and punctuation removed: see
// Fold) into name_key and search_* columns when written, so "acdc", "AC/DC"
// and "ac dc" all find AC/DC and "beyonce" finds Beyoncé on both
// databases. Every query word must match, the last one as a prefix;
// queries of one or two characters match words of names only. Results are
// ranked in tiers — the name is the query, every word is in the name,
// matched elsewhere (credited artists, album title) — and within a tier by
// rank_key: the popularity bucket (four per doubling), then the newer row.
//
// Each tier is read in rank_key order and stops at the end of the page, so
// a word found in half the catalog costs what a rare one does. On SQLite
// the FTS5 tables (external content over views of the listable rows,
// unicode61 remove_diacritics 2, prefix indexes of 1–8 characters) use
// rank_key as their rowid; on PostgreSQL tsvector columns (name words
// weight A) with GIN indexes and btree indexes on rank_key that include
// search_tsv serve the same queries (searchpg.go). Totals are counted up
// to MaxSearchTotal, except on PostgreSQL for a term that a walk of the
// most popular rows estimates at more: it is reported capped without
// being counted. On PostgreSQL a query
// that finds nothing is retried with pg_trgm similarity on names (typo
// tolerance); SQLite has no such fallback.
//
// # Trending
//
// song_plays_hourly is the rollup of plays; triggers fold every increase
// into songs.trend_log (decayed plays, in log2, against a fixed epoch), so
// trending is an ordered index read. See the migration for the formula.
//
// # Tracing
//
// With Options.Tracer (catalogd passes its obs.Obs when tracing is on),
// each store call from a sampled request or job is an OpenTelemetry span
// under the caller's, named store.<Method>, with db.system.name,
// db.operation.name and db.query.text: one per statement outside a
// transaction, one per transaction. Untraced or unsampled calls allocate
// nothing more. See trace.go.
//
// A Store is safe for concurrent use.
package store
