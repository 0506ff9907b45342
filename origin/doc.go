// Package origin is Riff's regional origin (`riff origin`): a fasthttp server
// that serves packaged objects from a blob.Store to the edges of its region.
// It must not import catalogd, edge, packager or any SQL driver: it knows
// the blob store and the published layout, nothing of accounts or jobs.
// run.go holds Run (parseFlags, then build, then run).
//
// # What it serves
//
// GET and HEAD /{blob key}, for keys under the published root (blobkey.Root, "artists/")
// only: packaged songs and album covers (artists/{a}/albums/{b}/covers/…,
// which the edge serves without a token). Everything else — "originals/" (uploaded masters, never served),
// unknown prefixes — is 404, so the origin does not reveal what else the
// store holds. Keys are taken from the request target as sent, percent-
// decoded once and checked with blob.ValidateKey: "..", "." and empty
// segments, backslashes and control characters in any encoding ("%2e%2e",
// "..%2f", "%2F%2F", "%5c") are 400, and so is a '%' left after decoding
// (double encoding such as "%252e"), since published keys never contain one.
// Other methods are 405 with "Allow: GET, HEAD".
//
// Responses follow RFC 9110 (see internal/httprange): one byte range per
// request (206 with Content-Range; several ranges are answered 200 whole),
// 416 with "Content-Range: bytes */size", If-Range (strong ETag or exact
// date), If-None-Match (weak comparison, "*", lists) and, without it,
// If-Modified-Since, both answered 304. Every object answer carries
// Accept-Ranges, ETag, Last-Modified, Content-Length and a Content-Type
// chosen by extension (application/vnd.apple.mpegurl, application/dash+xml,
// audio/mp4, audio/ogg, falling back to the stored type). Objects below a
// version folder ("…/v{N}/…") never change, so they are sent with
// "Cache-Control: public, max-age=31536000, immutable"; other objects get
// "public, max-age=60". Error answers are "no-store": a 404 for a version
// not yet published must not stick in an edge.
//
// # Streaming
//
// A request costs one store call in the common case: the Range header is
// parsed before the object's size is known and turned into a ranged Get, so
// a 1 MiB slice of a 100 MiB object reads 1 MiB. A suffix range ("bytes=-N"),
// HEAD, and the rare paths (If-Range mismatch, a range that starts past the
// end) add a Stat or a second Get. The body is streamed from the store's
// reader with RequestCtx.SetBodyStream and closed when sent (or when the
// client goes away); a whole object from the folder store goes out with
// sendfile. Nothing is buffered whole.
//
// # Access
//
// Origins sit behind edges, not in front of players. When ServerConfig.Secret
// is set every request must carry it in the X-Riff-Origin-Secret header
// (compared in constant time), else 403; the health and metrics endpoints
// are exempt so that probes and scrapers need no secret. They can move to
// their own listener with -admin-listen.
//
// # Fallback to another region
//
// With ServerConfig.Fallback (-fallback URL) a GET or HEAD for a published
// key that the store does not have (replication lag) or cannot serve (the
// store is down) is answered from another region's origin, marked with
// X-Riff-Origin-Fallback, within a bounded wait, never for originals and
// never twice (fallback.go; riff_origin_fallback_total{result}).
//
// # Errors and metrics
//
// Store errors map to statuses in one place (Server.storeError): not found
// 404, invalid key 400, timeout 504, anything else 503 (edges fail over on
// 5xx), and the last two are counted in riff_errors_total{kind="store_timeout"|
// "store_unavailable"} and logged with the request id. Besides the request
// metrics of internal/obs, the origin exports riff_origin_sent_bytes_total
// and riff_origin_store_duration_seconds{op="get"|"stat"}.
package origin
