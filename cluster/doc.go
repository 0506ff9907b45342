// Package cluster runs the catalog's scale-out topology on one machine:
// several catalogd as real processes (the riff binary) on one database,
// sharing signing keys and a blob folder, behind a real HAProxy rendered
// from configs/haproxy-lb.cfg. Its tests kill instances with SIGKILL under
// load and check what the balancer and the shared database promise
// (docs/operations.md, "Several catalogd"; docs/scaling.md).
//
// Render is the only change made to the committed configuration: the two
// bind addresses and the server lines (one per instance, the first
// server line's options kept). Everything else, health checks, retries,
// timeouts, is the file operators run.
//
// cluster starts programs; it imports no package of Riff's (the catalogd
// it runs is the binary, as in production), and nothing imports it but
// its tests.
package cluster
