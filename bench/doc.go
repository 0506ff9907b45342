// Package bench is `riff bench`: a load generator that behaves like real
// players, for an edge (riff's or anyone's) and, in the listen scenario,
// catalogd. It talks to them over HTTP only and must not import the daemons
// (catalogd, edge, origin) or packager; run.go holds Run (parseFlags, then
// Execute, then the reports).
//
// # Scenarios
//
// listen runs virtual listeners, as closed sessions (-listeners) or as
// arrivals of a Poisson process (-rate). A listener picks a song by Zipf
// popularity over the source's order, asks catalogd for its playback URL
// (GET /songs/{id}) or takes a pre-minted one, fetches the master
// playlist, picks a variant (throughput-based ABR: the highest whose
// BANDWIDTH fits 70% of a moving average of segment download rates; or
// pinned with -variant), fetches the media playlist, the init section and
// the segments' byte ranges. With -speed > 0 a simulated buffer paces the
// segments like playback: the next one is fetched when it fits in -buffer,
// playback drains the buffer at -speed, and a buffer that runs dry is a
// rebuffer. At the song's end the listener listens it out and starts the
// next.
//
// flat sends requests at a constant -rate (an open model) over a URL list
// or the segments of playlists. Every request has a scheduled send time and
// its latency counts from there, so a server that stalls is charged for the
// requests that should have been sent meanwhile (the coordinated-omission
// correction of wrk2) — unless the worker was idle, waiting for that time:
// then it counts from when its timer fired, because an idle Go process
// wakes timers with millisecond granularity, and that lateness would
// otherwise be most of a fast server's latency. With -rate 0 it is a closed
// loop of -conns workers.
//
// # Measurements
//
// A Recorder keeps one HDR histogram (hdrhistogram-go: microseconds, 3
// significant digits, constant memory) per request kind (playlist, init,
// segment, object, api) and X-Cache status, counters of requests and body
// bytes, errors by kind (http_NNN, timeout, connection, content_range,
// length), listener QoE (time to first audio, rebuffers, stalled time,
// average bitrate, switches), and a one-second window for the progress
// line and the time series. Origin offload comes from the edge's /metrics
// (or the origin's) read before and after the measured time. bench's own
// CPU time (getrusage) is reported, with a warning when it used nearly all
// its cores.
//
// # Efficiency
//
// Requests go through fasthttp.HostClient keep-alive pools, one per host,
// without retries. Each goroutine reuses one Request and Response, and a
// warm request allocates nothing: the body lands in the Response's reused
// buffer, is counted and checked (the status, Content-Range against the
// range asked for, the length against Content-Length and the range), and
// dropped.
//
// Run is the command; Execute runs a benchmark from Options and returns a
// Report (for tools such as bench/compare).
package bench
