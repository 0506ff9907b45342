// Package ingest is catalogd's packaging job worker: it claims jobs from
// the durable queue in the database, fetches an upload's original, has
// package packager transcode and package it, publishes the new version,
// collects superseded ones (gc) and records progress and failures.
//
// catalogd imports ingest, never the reverse: ingest must not import
// catalogd or any net/http handler code. It knows the database through the
// narrow Store interface it declares (method names of *store.Store, no
// concrete type), the blob store, a *packager.Packager, a purge kick and a
// clock, all passed to New. It starts no ffmpeg or ffprobe itself: every
// such run is packager's. Spool (spool.go) is catalogd's folder for
// temporary work, swept of what dead processes left when it is opened.
package ingest
