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
//     "postgres://…". One pool serves reads and writes.
//
// Both run the same SQL wherever they can ($1 placeholders work in both);
// the few statements that differ (full-text search, identity sequences)
// branch on the dialect inside this package and nowhere else.
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
// databases. Queries of three or more characters use the full-text index
// (SQLite FTS5 external-content tables with the unicode61 tokenizer and
// prefix indexes; PostgreSQL tsvector columns with GIN indexes), every word
// required and the last one matched as a prefix. Shorter queries match the
// start of the folded name through a btree range. Results are ranked by
// text relevance tier (exact name, name prefix, every word in the name,
// matched elsewhere), then popularity, then id: the same order on both
// databases. On PostgreSQL a query that finds nothing is retried with
// pg_trgm similarity on names (typo tolerance); SQLite has no such
// fallback.
//
// A Store is safe for concurrent use.
package store
