// Package playtoken mints and verifies Riff's playback and purge tokens, and
// reads and writes their key files. It is a library with no flags: it must
// not import internal/config or any daemon (the `riff keygen` command lives
// in package keygen), so edges and tests link only the key code.
//
// A token is a JWT (RFC 7519) signed with Ed25519 (JWS alg "EdDSA"). Its
// header names the signing key with "kid". Its claims are:
//
//	sub  the user (play) or the operator/service (purge)     required
//	exp  expiry, seconds since the epoch                     required
//	iat  when it was minted                                  set by Mint
//	nbf  not valid before                                    optional
//	typ  "play" or "purge"                                   required
//	pfx  the blob-key prefix the token opens                 required
//	mbr  the highest bitrate the listener may play, in kbps  optional
//
// The typ claim keeps the two kinds apart: a play token handed to a listener
// cannot be replayed against an edge's purge endpoint, and a purge token
// cannot play. Verify takes the type it expects and refuses the other with
// ReasonWrongType.
//
// # Keys
//
// catalogd holds the private key (a Signer); edges hold only public keys (a
// KeySet, several kids at once), so a compromised edge cannot mint tokens.
// The algorithm is pinned: tokens whose header says anything but EdDSA —
// "none", HS256 signed with the public key bytes as an HMAC secret, RS256 —
// are refused before any key is looked at, and a kid that is not in the set
// is refused too (ReasonUnknownKID).
//
// Key files, as written by `riff keygen -dir DIR` (GenerateKey):
//
//   - DIR/signing.key: the Ed25519 private key as a PKCS#8 PEM block ("BEGIN
//     PRIVATE KEY", what `openssl genpkey -algorithm ed25519` writes), mode
//     0600, preceded by one line "kid: ID". Text before a PEM block is
//     ignored by PEM readers (Go's encoding/pem, OpenSSL), so the file stays
//     usable by standard tools; PEM headers inside the block were not used
//     because OpenSSL refuses them on unencrypted keys.
//   - DIR/jwks.json: a JWK Set (RFC 7517) of public keys, {"keys":[{"kty":
//     "OKP","crv":"Ed25519","x":…,"kid":…,"alg":"EdDSA","use":"sig"}]}.
//     catalogd can serve it and edges load it with LoadKeySet.
//
// Rotation: run keygen again. It adds the new public key to jwks.json (old
// keys stay, so unexpired tokens signed by them keep verifying) and replaces
// signing.key. An edge reads its key set (-keys, a jwks.json) once, when it
// starts, so ship the new jwks.json to the edges and restart them first,
// then restart catalogd on the new signing.key. Remove an old kid from
// jwks.json, and restart the edges again, once the longest token TTL has
// passed since the switch. (Verifier.SetKeySet swaps the set of a running
// Verifier, for programs that embed one; the edge does not call it.)
//
// # Verification cost
//
// A token rides in every segment URL, so the edge verifies the same token
// many times per session. Verifier caches successful verifications, keyed by
// the token bytes, for a short time (VerifierOptions.CacheTTL, never past
// exp plus leeway): a hit is a sharded map lookup that does not allocate and
// does not touch the signature, and it still compares exp with the clock.
//
// Failures are not cached (no negative cache). The cheap refusals —
// malformed, wrong algorithm, unknown kid — are decided before the signature
// is checked, so repeating them costs little; the others would only be worth
// caching against a client repeating one bad token, and a cache an attacker
// can fill with garbage at will would evict the good entries that make the
// hot path cheap. Rate limiting belongs to the edge.
package playtoken
