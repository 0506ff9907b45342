// Package pgcluster runs a real PostgreSQL streaming-replication topology
// on this machine for tests: a fresh primary (initdb in a scratch folder,
// on a free loopback port) and hot standbys cloned from it with
// pg_basebackup -R, each started with pg_ctl on a port of its own. It never
// touches the shared server at 127.0.0.1:5432: tests stop and restart these
// servers, pause their replay and kill the primary.
//
// The server binaries are Debian's (/usr/lib/postgresql/<version>/bin, the
// newest version found) or those on PATH. PostgreSQL refuses to run as
// root: as root, every server command runs as the postgres OS user
// (runuser), in scratch folders that user owns. The clusters are tuned
// for tests, not for data: tiny shared_buffers, fsync off.
//
// ForTest skips the test loudly when the binaries are missing and
// RIFF_TEST_POSTGRES is unset, and fails it when RIFF_TEST_POSTGRES is set
// (CI), where the topology must start. Start and Close serve programs
// (a make target) the same way without a testing.TB.
//
// It imports only the standard library and the pgx database/sql driver;
// nothing in Riff imports it outside tests and dev tooling.
package pgcluster
