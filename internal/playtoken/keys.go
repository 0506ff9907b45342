package playtoken

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// KeySet is a set of Ed25519 public keys by key id: the keys a Verifier
// accepts. A KeySet is immutable (With and Without return new sets) and so
// safe for concurrent use.
type KeySet struct {
	keys map[string]ed25519.PublicKey
	kids []string // in the order of the JWKS, for MarshalJSON
}

// jwk is one JSON Web Key (RFC 7517, RFC 8037 for OKP keys).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv,omitempty"`
	X   string `json:"x,omitempty"`
	D   string `json:"d,omitempty"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

type jwks struct {
	Keys []json.RawMessage `json:"keys"`
}

// ParseKeySet parses a JWK Set (RFC 7517 §5). Keys with kty "OKP" and crv
// "Ed25519" are used; keys of other types, or marked for another use ("use"
// other than "sig") or another algorithm ("alg" other than "EdDSA"), are
// skipped as RFC 7517 recommends. A usable key without a kid, with a bad "x",
// with a kid seen before, or carrying private key material ("d") is an error,
// and so is a set with no usable key.
func ParseKeySet(data []byte) (*KeySet, error) {
	var set jwks
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("playtoken: jwks: %w", err)
	}
	if set.Keys == nil {
		return nil, errors.New(`playtoken: jwks: no "keys" member`)
	}
	ks := &KeySet{keys: map[string]ed25519.PublicKey{}}
	for i, raw := range set.Keys {
		var k jwk
		if err := json.Unmarshal(raw, &k); err != nil {
			return nil, fmt.Errorf("playtoken: jwks: key %d: %w", i, err)
		}
		if k.Kty != "OKP" || k.Crv != "Ed25519" || (k.Use != "" && k.Use != "sig") || (k.Alg != "" && k.Alg != "EdDSA") {
			continue
		}
		if k.D != "" {
			return nil, fmt.Errorf("playtoken: jwks: key %d (%q) holds a private key; publish public keys only", i, k.Kid)
		}
		x, err := base64.RawURLEncoding.Strict().DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("playtoken: jwks: key %d (%q): x is not a base64url Ed25519 public key", i, k.Kid)
		}
		if err := ks.add(k.Kid, ed25519.PublicKey(x)); err != nil {
			return nil, fmt.Errorf("playtoken: jwks: key %d: %w", i, err)
		}
	}
	if len(ks.kids) == 0 {
		return nil, errors.New("playtoken: jwks: no Ed25519 signing key")
	}
	return ks, nil
}

// LoadKeySet reads a JWK Set file (see ParseKeySet).
func LoadKeySet(path string) (*KeySet, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("playtoken: %w", err)
	}
	ks, err := ParseKeySet(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return ks, nil
}

// add puts a key in a set under construction.
func (ks *KeySet) add(kid string, pub ed25519.PublicKey) error {
	if err := validKID(kid); err != nil {
		return err
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("key %q: %d-byte public key, want %d", kid, len(pub), ed25519.PublicKeySize)
	}
	if _, dup := ks.keys[kid]; dup {
		return fmt.Errorf("duplicate kid %q", kid)
	}
	ks.keys[kid] = slices.Clone(pub)
	ks.kids = append(ks.kids, kid)
	return nil
}

// With returns a copy of ks with pub added under kid. ks may be nil.
func (ks *KeySet) With(kid string, pub ed25519.PublicKey) (*KeySet, error) {
	out := &KeySet{keys: map[string]ed25519.PublicKey{}}
	for _, k := range ks.KIDs() {
		out.keys[k] = ks.keys[k]
		out.kids = append(out.kids, k)
	}
	if err := out.add(kid, pub); err != nil {
		return nil, fmt.Errorf("playtoken: %w", err)
	}
	return out, nil
}

// Without returns a copy of ks without kid: tokens signed with that key no
// longer verify against it.
func (ks *KeySet) Without(kid string) *KeySet {
	out := &KeySet{keys: map[string]ed25519.PublicKey{}}
	for _, k := range ks.KIDs() {
		if k != kid {
			out.keys[k] = ks.keys[k]
			out.kids = append(out.kids, k)
		}
	}
	return out
}

// KIDs returns the key ids in the set, in JWKS order.
func (ks *KeySet) KIDs() []string {
	if ks == nil {
		return nil
	}
	return slices.Clone(ks.kids)
}

// Key returns the public key named kid.
func (ks *KeySet) Key(kid string) (ed25519.PublicKey, bool) {
	if ks == nil {
		return nil, false
	}
	k, ok := ks.keys[kid]
	return k, ok
}

// MarshalJSON returns the set as a JWK Set that ParseKeySet reads back.
func (ks *KeySet) MarshalJSON() ([]byte, error) {
	keys := make([]jwk, 0, len(ks.KIDs()))
	for _, kid := range ks.KIDs() {
		keys = append(keys, publicJWK(kid, ks.keys[kid]))
	}
	return json.Marshal(struct {
		Keys []jwk `json:"keys"`
	}{keys})
}

func publicJWK(kid string, pub ed25519.PublicKey) jwk {
	return jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: kid, Alg: "EdDSA", Use: "sig"}
}

// Thumbprint returns the RFC 7638 JWK thumbprint of an Ed25519 public key
// (base64url SHA-256 of its canonical JWK), a stable name for the key.
func Thumbprint(pub ed25519.PublicKey) string {
	canon := `{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// ValidateKID checks a key id as keys and keygen require it: 1 to 64 of
// [A-Za-z0-9._-].
func ValidateKID(kid string) error { return validKID(kid) }

// validKID restricts key ids to what is safe in a header, a file and a log
// line: 1 to 64 of [A-Za-z0-9._-].
func validKID(kid string) error {
	if kid == "" || len(kid) > 64 {
		return fmt.Errorf("kid %q: want 1 to 64 characters", kid)
	}
	for _, c := range []byte(kid) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '_', c == '-':
		default:
			return fmt.Errorf("kid %q: only letters, digits, '.', '_' and '-' are allowed", kid)
		}
	}
	return nil
}

// kidLine starts the line that records the kid above the PEM block.
const kidLine = "kid: "

// MarshalSigningKey encodes a private key as keygen writes it: a "kid: ID"
// line followed by a PKCS#8 PEM block.
func MarshalSigningKey(kid string, key ed25519.PrivateKey) ([]byte, error) {
	if err := validKID(kid); err != nil {
		return nil, fmt.Errorf("playtoken: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("playtoken: %w", err)
	}
	var b bytes.Buffer
	b.WriteString(kidLine + kid + "\n")
	if err := pem.Encode(&b, &pem.Block{Type: "PRIVATE KEY", Bytes: der}); err != nil {
		return nil, fmt.Errorf("playtoken: %w", err)
	}
	return b.Bytes(), nil
}

// ParseSigningKey decodes what MarshalSigningKey encodes.
func ParseSigningKey(data []byte) (kid string, key ed25519.PrivateKey, err error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return "", nil, errors.New("playtoken: signing key: no PKCS#8 PEM block (BEGIN PRIVATE KEY)")
	}
	preamble, _, _ := bytes.Cut(data, []byte("-----BEGIN"))
	sc := bufio.NewScanner(bytes.NewReader(preamble))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), kidLine); ok {
			kid = strings.TrimSpace(v)
		}
	}
	if err := validKID(kid); err != nil {
		return "", nil, fmt.Errorf("playtoken: signing key: no valid %q line before the PEM block: %w", strings.TrimSpace(kidLine), err)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return "", nil, fmt.Errorf("playtoken: signing key: %w", err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return "", nil, fmt.Errorf("playtoken: signing key: %T, want an Ed25519 key", k)
	}
	return kid, key, nil
}

// LoadSigner reads a signing key file written by keygen (see
// MarshalSigningKey) and returns a Signer for it. now is the Signer's clock;
// nil means time.Now.
func LoadSigner(path string, now func() time.Time) (*Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("playtoken: %w", err)
	}
	kid, key, err := ParseSigningKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return NewSigner(kid, key, now), nil
}

// KeyDir is a key folder as `riff keygen -dir DIR` writes it.
type KeyDir struct {
	KID    string             // from DIR/signing.key
	Key    ed25519.PrivateKey // DIR/signing.key
	Public *KeySet            // DIR/jwks.json; nil when the folder has none
}

// LoadKeyDir reads a key folder: the signing key DIR/signing.key and, when
// the folder has one, the published key set DIR/jwks.json. Its errors carry
// no "playtoken:" prefix of their own; the caller names the command.
func LoadKeyDir(dir string) (KeyDir, error) {
	data, err := os.ReadFile(filepath.Join(dir, SigningKeyFile))
	if err != nil {
		return KeyDir{}, fmt.Errorf("signing key: %w (make one with `riff keygen -dir %s`)", err, dir)
	}
	var k KeyDir
	if k.KID, k.Key, err = ParseSigningKey(data); err != nil {
		return KeyDir{}, err
	}
	k.Public, err = LoadKeySet(filepath.Join(dir, JWKSFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return KeyDir{}, err
	}
	return k, nil
}
