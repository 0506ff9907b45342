// Package subsonic serves the Subsonic API (version 1.16.1) with the
// OpenSubsonic extensions at /rest/* of catalogd, so that the many
// existing Subsonic apps play Riff. docs/subsonic.md lists the endpoints,
// how each maps onto Riff and what is deliberately missing.
//
// The package holds the protocol only: the envelope in JSON (f=json) and
// XML (the default), error codes, parameters and authentication. The
// catalog's rules stay in catalogd: which songs and playlists a user may
// see, playback URLs and tiers, the checks of playlist names and search
// text come through the Catalog interface (catalogd implements it with the
// functions its JSON API calls), and data comes from package store, the
// same queries, so both APIs show the same catalog. Play events go through
// store.RecordEvents and its plausibility rules.
//
// Authentication, per request (Subsonic has no sessions):
//
//   - apiKey (the OpenSubsonic apiKeyAuthentication extension): keys a user
//     creates and revokes through catalogd (/users/me/subsonic/api-keys and
//     the web player's profile); only their SHA-256 is stored.
//   - u + t + s (the classic token scheme, t = md5(password + salt)): the
//     password is an app password the user generates (never the account
//     password, which is stored only as an Argon2id hash). The scheme needs
//     the password itself, so app passwords are stored sealed with
//     AES-256-GCM under a key derived from catalogd's signing key
//     (DeriveKey); they rotate with it.
//   - u + p (plain or enc:hex app password) only when Config.AllowPlain is
//     set and the request came over TLS.
//
// Failed attempts spend catalogd's login rate limits (per client address
// and per account); while a limit is spent, every attempt from that
// address or for that account is refused (HTTP 429 with Retry-After),
// good credentials included, so guessing cannot go on behind the limit.
//
// A Handler is safe for concurrent use.
package subsonic
