// Package edge is Riff's streaming edge (`riff edge`): a fasthttp server
// that checks signed playback tokens and serves HLS/DASH playlists
// (filtered to the listener's tier) and byte ranges of audio from a
// ristretto cache of fixed-size slices, with an optional disk tier below
// it, filled from an ordered list of origins with coalescing, timeouts,
// failover and circuit breakers. An admin listener serves /metrics,
// /healthz, /readyz and the purge RPC.
//
// Run is the command; NewServer builds the same thing from explicit parts
// (obs, a Verifier, an Upstream such as *Origins, a Config and a clock) for
// tests and `riff dev`. edge must not import catalogd, origin, packager, SQL
// drivers or anything that starts ffmpeg (`go list -deps ./edge` shows it):
// it holds public keys only and reaches the origin over HTTP.
//
// # Requests
//
// GET, HEAD and OPTIONS of /t/{token}/{blob key}. In order, before any
// cache or origin work: the token is verified (playtoken, type play;
// results are cached per token, so a session pays one signature check);
// the key is cleaned (see path.go: read from the original request target,
// percent-decoded exactly once, unreserved characters only, no empty, "."
// or dot-leading segments, under artists/, blobkey.Validate); the token's
// prefix must open the key (playtoken.Claims.Allows); a rendition whose
// name carries a rung above the token's mbr (aac_320.mp4 for mbr=128) is
// refused too, so tiers are enforced, not only hidden. Refusals are 403
// with a body that says nothing, counted in
// riff_edge_token_refusals_total{reason}; a malformed key is 400. OPTIONS
// answers the CORS preflight (204) without a token.
//
// Album covers are public: GET and HEAD of
// /covers/{artist}/{album}/{hash}/{size}.jpg need no token. That path is
// parsed by blobkey.CoverKeyOfPath alone, which maps it onto the album's
// cover folder (artists/{a}/albums/{b}/covers/{hash}/{size}.jpg) and
// accepts nothing else, so no other object is reachable without a token;
// covers are then served like media (slices, coalescing, purges by their
// cover folder) with Cache-Control "public, max-age=31536000, immutable"
// (a new cover has a new hash, so a name never changes content).
//
// Answers follow RFC 9110 exactly as the origin does (both use
// internal/httprange, and the tests compare them header for header): 200,
// 206 with Content-Range, 416 with "bytes */size", If-Range, If-None-Match
// and If-Modified-Since (304), HEAD. Headers: Accept-Ranges, ETag,
// Last-Modified, Content-Length, Content-Type, Cache-Control (media and
// media playlists "public, max-age=31536000, immutable"; master.m3u8 and
// MPDs, which differ per tier, "private, max-age=60"), X-Cache:
// HIT|DISK|PEER|MISS (from RAM, the disk tier, the slice's owner among the
// region's edges, the origin; an answer from several is named after the
// farthest),
// and CORS (Access-Control-Allow-Origin: *, exposing Content-Range,
// Content-Length, ETag and X-Cache).
//
// # Cache
//
// Package cache, with a byte budget (-cache-bytes), cost = bytes, in two
// ristretto caches: slices, and everything else in max(budget/16, 1 MiB)
// of its own, so that slice churn never evicts metadata or playlists
// (like nginx's keys_zone beside its cache; docs/performance.md).
// Media (.mp4, .ogg, anything not a playlist) is cached as slices of
// Config.SliceBytes (1 MiB) named by (key, generation, slice index);
// playlists and MPDs whole; object metadata (size, ETag, type,
// Last-Modified, from the origin's Content-Range and headers) separately.
// Names are two maphash hashes of the key plus generation, kind and index:
// no allocation, and never the token.
//
// On Linux the slices live in a cache.Slab: fixed-size slots of one memfd,
// mapped into the process, outside the Go heap, reference counted so that a
// slot is never reused under a response that still reads it.
//
// A range is answered from the slices it covers. Warm, the handler looks up
// the metadata and the slices and hands a pooled body (a
// fasthttp.BodyWriterTo holding slot references) to fasthttp, or to the
// event loop, which sends the response head with it (body.go). Slab parts
// of 32 KiB or more go with sendfile from the slab's memory file: the
// kernel takes references to the pages instead of copying the bytes, which
// on loopback and for segment-sized answers is most of what an answer
// costs. A socket may hold those pages after the body is closed, so the
// slab never writes a lent slot in place: it punches the slot's pages out
// of the file before reusing it, and the socket keeps the old ones
// (cache.Slab, "Lending pages to the kernel"; TestPausedHitKeepsItsBytes…
// and the soak test fail without that). The punch frees whole folios only,
// so the slab lends only when the host's huge page settings keep every
// folio inside one slot: 4 KiB pages by default, 64 KiB folios with
// hugepages-64kB/shmem_enabled = advise (docs/operations.md). Smaller
// parts, and every part where the slab does not lend or with
// -slab-sendfile=false, are copied with the head in one writev: one system
// call and one trip through the TCP stack per response. Over TLS or a
// per-IP limited connection the body
// writes through fasthttp's writer. The benchmark shows 0 allocations in
// the handler. Cold, the
// missing slices are fetched with one origin Range request per contiguous
// missing run, aligned to slice boundaries (the last slice of an object may
// be short). When the size is not known yet, the slices the Range header
// names are fetched (an open range: up to 8 MiB from its start; none: from
// the start), and the origin's Content-Range tells the size.
//
// # Disk tier
//
// With Config.Disk (`-disk-cache DIR -disk-cache-bytes N`, package disk)
// the slices have a second home: every slice fetched from the origin is
// queued for the disk tier's writer (never written on the request path;
// dropped when the queue is full), and a flight (see Coalescing) first
// reads the leading slices of its run that the disk tier holds, checks
// them (key, generation, index, CRC-32C), promotes them into the cache,
// and asks the origin only for the rest. So a disk read is coalesced like
// an origin fetch, and a hit in RAM never touches the disk. Slices only
// go to disk when filled from the origin (write-through), not when RAM
// evicts them: they are on disk already unless their write was dropped.
// The disk tier keeps its own byte budget with least-recently-used
// eviction (ristretto's admission suits RAM, where a one-hit wonder costs
// scarce memory; on disk every fill is written once anyway).
//
// The warm path uses the disk tier too: when the metadata is in RAM but a
// slice is not, and the disk tier holds that slice in a file checked since
// the start, the answer takes the file's pages by reference: head and RAM
// parts go out with sendmsg(MSG_MORE), file parts with sendfile (body.go),
// X-Cache: DISK, no promotion. That is safe where the slab is not because a
// slice file is written once and never modified, and eviction only
// unlinks it (package disk; TestPausedDiskAnswerKeepsItsBytesWhileTheDiskEvicts).
// Config.DiskCopy sends such answers as copies instead (the flight's read
// and promotion), for measurements; docs/performance.md has them.
//
// The purge generations are persisted by the disk tier: NewServer restores
// cache.Generations from its log and loads its index, and a purge is
// recorded (fsynced) before it is acknowledged. A slice's file name
// includes its generation, so a purged slice is never found after a
// restart.
//
// # Peer fill
//
// With Config.Peers (`-peers URL,… -peer-secret S`, package peer) the
// region's edges act as one cache: a flight's slices that neither RAM nor
// the disk tier hold go to their owner (rendezvous hashing on key and
// slice index) instead of the origin, one Range request per run of slices
// with one owner, carrying the object's generation; the owner answers
// from its own tiers or its origin through its own coalescing group, on
// its admin listener (servePeer), and never forwards (one hop). A peer
// that fails or whose breaker is open sends the run to the next edge in
// the slice's ranking; this edge's own place in it means the origin, and
// so do a 409 (the generations differ: a purge reached one edge and not
// yet the other; no purged version crosses the fleet), a 502 (the owner's
// origins failed) or anything unexpected. Peer slices stay in RAM here,
// only owners write them to disk. See peerfill.go.
//
// # Prefetch
//
// With Config.Prefetch > 0 (`-prefetch N`, 16 by default in Run), a
// media answer that ends on a segment boundary of a packaged rendition
// (segment boundaries come from the rendition's sidx, read through the
// cache once per object and generation) starts a background fill of the
// next segment's missing slices, through the same coalescing group and
// tiers; at most N run at once, and prefetches are dropped, not queued,
// beyond that or when many slices are in flight. The handler's cost when
// nothing is to be done is a few comparisons. See prefetch.go.
//
// # Coalescing
//
// cache.Group keeps the fetches in flight apart from ristretto (whose Set
// may drop or refuse entries). Concurrent misses for the same slices join
// one fetch; a run that is partly in flight is split around it. The fetch
// runs in its own goroutine and context: a waiter that gives up does not
// cancel it for the others; when the last waiter leaves, it is cancelled
// and forgotten; every waiter gets the bytes or the real error. A fetch
// stores its slices and waits for ristretto to apply them before it leaves
// the table, and Claim re-checks the cache under the table's lock, so a
// request arriving as a fetch ends finds the slices instead of fetching
// them again.
//
// # Origins
//
// Origins holds one fasthttp.HostClient per origin (primary first, then
// fallbacks) with a per-attempt timeout, sending the shared secret. A
// connection error, a timeout or a 5xx moves on to the next origin; a 404
// or another 4xx is the answer. Each origin has a Breaker: Threshold
// consecutive failures open it, an open breaker refuses at once (a dead
// origin costs nothing), after the cool-down one probe is let through and
// its outcome closes or reopens it. /readyz probes every origin (a HEAD of a
// key that is never published, with the secret: a healthy origin answers
// 404) and is ready while at least one answers so; a refused secret, a 5xx
// or a dead origin is named in the answer. A cache hit never waits on an
// origin.
//
// An origin's 404 is remembered for Config.NegativeTTL (10 s) under the
// object's generation, so a token holder asking for missing keys in its
// prefix reaches the origin once per key and TTL, and a purge forgets at
// once.
//
// # Tiers
//
// master.m3u8 and MPDs are filtered to the token's mbr (see playlist.go for
// the rule: a variant's nominal rung from its rendition name, aac_320 →
// 320 kbps, kept when rung <= mbr; without a rung, the advertised bitrate
// within 20%). The filters cut text and never rewrite it, so what is kept is
// byte-for-byte the origin's and stays valid; the result is cached per mbr
// with its own ETag ("…-mbr128"). If nothing is left, 403.
//
// # Purge
//
// POST /purge on the admin listener (see AdminHandler) bumps the
// generation of artist, album or song folders: O(1) per prefix, effective
// for every request that starts after the answer, and a fetch that started
// before cannot fill the new generation (see package cache). With a disk
// tier the purge is durable: it is in the tier's purge log before the
// answer, and an answer of 500 means it could not be made so (catalogd's
// outbox retries).
//
// # Metrics
//
// Besides obs's request counters and latency: riff_edge_cache_requests_total
// and riff_edge_served_bytes_total by hit/disk/miss;
// riff_edge_direct_responses_total (answers written head and body in one
// writev); riff_edge_negative_hits_total (404s answered from negative
// caching); riff_edge_slab_slots and riff_edge_slab_used_slots;
// riff_edge_slab_lend_folio_bytes (the folio size, while the slab lends);
// riff_edge_origin_fetches_total,
// _bytes_total, _fetch_duration_seconds, _errors_total{kind} and
// _breaker_state per origin; riff_edge_coalesced_waiters_total;
// riff_edge_inflight_slices; riff_edge_cache_items, _used_bytes, _max_bytes,
// _evictions_total, _evicted_bytes_total, _sets_dropped_total and
// _sets_rejected_total (from ristretto's metrics); riff_edge_token_refusals_total
// {reason}; riff_edge_purges_total and riff_edge_purged_prefixes_total.
// With a disk tier: riff_edge_disk_files, _used_bytes, _max_bytes,
// _writes_total, _errors_total{op}, _corrupt_total, _dropped_total,
// _reads_total{result}, _evictions_total, _evicted_bytes_total and
// _degraded (docs/operations.md says what they mean to an operator). With
// peers: riff_edge_cache_requests_total and riff_edge_served_bytes_total
// for peer, riff_edge_peer_fills_total, _failovers_total, _refusals_total,
// _requests_total{result}, _fetches_total{peer}, _errors_total{peer,kind}
// and _breaker_state{peer}. With prefetch:
// riff_edge_prefetches_total{result}. With an access log: riff_edge_access_log_lines_total, _dropped_total and
// _errors_total.
//
// # Access log
//
// Config.AccessLog (`-access-log PATH|-`, off by default) gets one JSON line
// per public request; see AccessLog for the fields. The line is formatted
// when the handler returns and finished when the body has been sent (on the
// body's Close), appended to a pending buffer under a mutex and written in
// batches by one goroutine; a full buffer drops lines (counted), so a stuck
// log never holds a request. The token never appears in it. SIGHUP reopens
// the file (Run).
//
// # Serving limits
//
// HTTP/1.1 keep-alive, optional TLS; read, write and idle timeouts and a
// connection cap (fasthttp's Concurrency, and optionally MaxConnsPerIP) so
// slow or abusive clients cannot exhaust the edge; request bodies are capped
// at 4 KiB. Shutdown lets in-flight responses finish (ShutdownWithContext),
// waits for running fetches, then frees the cache.
//
// Plain-HTTP connections are served by an event loop of the edge's own
// (loop.go; `-event-loop`, on by default): one goroutine in epoll_wait,
// requests parsed by fasthttp and answered by the same handler, RAM hits
// synchronously with one read and one writev (or sendmsg and sendfile)
// each; a fill or a slow reader
// is handed to a goroutine and the connection comes back after, and an
// unusual request (a body, a malformed head) goes to fasthttp for good. The
// same timeouts and connection cap apply (a sweep once a second);
// riff_edge_loop_connections and riff_edge_loop_handoffs_total{reason}
// count them. TLS and MaxConnsPerIP use fasthttp's goroutine per
// connection.
//
// # Files
//
// run.go: Run (parseFlags, then build, then run). server.go: Config, Server,
// its metrics, listeners and shutdown. handler.go: the public handler,
// RFC 9110 planning, response heads and error answers. media.go: media
// ranges from slices, warm and cold (and from disk-tier files). fill.go:
// fills of slices (disk tier, then origin) and whole playlists through the
// coalescing group, negative caching. peerfill.go: the peer tier (asking
// owners, answering peers). prefetch.go: next-segment prefetch.
// disktier.go: the disk tier's
// boundary (metadata, restored generations, durable purges). accesslog.go:
// the access log. playlist.go: playlists and MPDs, tier filtering. body.go
// and conn.go: sending a cached answer (pooled body, held head, one writev;
// sendfile for lent slab slots and disk-tier files). loop.go: the event loop of plain-HTTP
// connections. origin.go and breaker.go: the upstream
// (origin clients, failover, breakers, readiness probes). purge.go: the
// admin handler (purge, pprof). path.go: the path rules. Package cache: the
// slice cache, its slab, generations and the coalescing group. Package
// disk: the disk tier (slice files, purge log). Package peer: owners, the
// peer client and the secret.
package edge
