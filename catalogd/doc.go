// Package catalogd is Riff's catalog API (net/http): accounts and
// sessions, profiles, artists, albums and songs, search, trending,
// playlists, likes, follows and play events, uploads and their packaging
// jobs, purge fan-out, and signed playback URLs for the edge. Run starts it
// (`riff catalogd`) and also implements `riff catalogd seed`; NewServer and
// Server.Handler let tests and `riff dev` serve it on any listener.
//
// Where things are: every route is in one table (Server.routes), every
// error kind maps to a status in one function (statusOf), store methods
// live in one file per area of package store (users, sessions, artists,
// albums, songs, playlists, likes, follows, events, uploads, jobs, outbox),
// and migrations are numbered files embedded in it. docs/catalogd.md
// records the design decisions (token lifetimes and rotation, the refresh
// grace window, search and trending, what is public) and docs/openapi.json,
// a copy of openapi.json, describes the API.
//
// Uploads (upload.go, sniff.go) are checked and stored by the API: the
// file is sniffed, probed and decoded once (packager runs every ffprobe
// and ffmpeg; no catalogd package starts one) and the probe is kept with
// the upload. A durable job queue in the database (store/jobs.go) is
// worked by package ingest, which packages uploads with that probe,
// publishes new versions in one transaction and collects superseded ones;
// Server.RunJobs runs its workers (Run starts -workers of them).
//
// Album covers (covers.go) are checked and re-encoded by package
// internal/cover into content-hashed, immutable blob objects that the edge
// serves without a token; an upload's embedded art (packager.ExtractCover)
// becomes the cover of an album that has none, and a replaced cover is
// purged through the outbox (docs/catalogd.md, "Album covers").
//
// The Subsonic API (package subsonic, docs/subsonic.md) is mounted at
// /rest/*; subsonic.go gives it catalogd's rules (its Catalog interface)
// and holds the routes that manage its credentials.
//
// With -db-replicas (PostgreSQL hot standbys) the store sends the reads
// that may be slightly stale to a replica; readafter.go keeps each client
// reading its own writes across instances (the Riff-Read-After header and
// cookie carry the WAL position of its last write) and exports the
// replicas' health (docs/scaling.md, "Read replicas").
//
// Regions (regions.go, regions_run.go; packages regions and replicate):
// with -regions, playback URLs go to the listener's region once it holds
// the song's version, fallback_urls to the next one, every region's edges
// get every purge, and published versions are replicated from the home
// region's store to the others through a replication outbox.
//
// Run (run.go) is parse → build → run: parseFlags checks every flag with
// no side effects, build opens and makes the parts, (*daemon).run starts
// them and shuts them down. Signing keys are loaded by LoadKeys (keys.go).
//
// A Server is safe for concurrent use.
package catalogd
