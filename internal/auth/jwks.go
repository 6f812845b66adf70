package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tandemhq/tandem/internal/ijson"
)

// Algorithms accepted for JWTs.
const (
	AlgHS256 = "HS256"
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// MinRSABits is the smallest RSA modulus accepted from a JWK set.
const MinRSABits = 2048

// MaxJWKSSize bounds a JWK set document, read from a file or fetched from a
// URL, in bytes.
const MaxJWKSSize = 1 << 20

// jwk is one verification key, bound to exactly one algorithm.
type jwk struct {
	alg string // AlgRS256 or AlgEdDSA
	key any    // *rsa.PublicKey or ed25519.PublicKey
}

// loadJWKSFile reads a JWKS file and parses it with parseJWKS. Errors: an
// unreadable file, one larger than MaxJWKSSize, or those of parseJWKS; all
// name the file.
func loadJWKSFile(path string) (map[string]jwk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxJWKSSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("auth: JWKS file %s: larger than %d bytes", path, MaxJWKSSize)
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", path, err)
	}
	return keys, nil
}

// parseJWKS reads a JWK set, {"keys":[...]}, decoding each key with
// github.com/go-jose/go-jose/v4 (which, unlike the libraries that also
// fetch sets, pulls in no HTTP: the packages below app know nothing of
// it), and applies Tandem's policy on top: RSA keys (RS256, at least
// MinRSABits, an odd exponent of at least 3) and OKP Ed25519 keys (EdDSA)
// with use "sig" or no use are loaded, each bound to its one algorithm;
// other keys are skipped. Errors: malformed JSON, not I-JSON (a duplicate
// member or an out-of-range number, named by its JSON pointer), private
// or symmetric key material in any key, a duplicate kid, a supported key
// the library refuses or that is too weak, no usable key.
func parseJWKS(data []byte) (map[string]jwk, error) {
	// Duplicate members would let two readers of the document see
	// different keys (encoding/json keeps the last): refuse them, and
	// numbers beyond the double range (RFC 7493).
	if err := ijson.Check(data); err != nil {
		var e *ijson.Error
		if errors.As(err, &e) && e.Reason != ijson.Syntax && e.Pointer != "" {
			return nil, fmt.Errorf("%s: %w", e.Pointer, err)
		}
		return nil, err
	}
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	keys := map[string]jwk{}
	for i, raw := range doc.Keys {
		var m jwkMembers
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if m.secret() {
			return nil, fmt.Errorf("key %d (kid %q) contains private key material; publish only public keys", i+1, m.Kid)
		}
		alg, ok := m.supportedAlg()
		if !ok {
			continue // unsupported key type, algorithm or use
		}
		k, err := parseKey(raw, alg)
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i+1, m.Kid, err)
		}
		if _, dup := keys[m.Kid]; dup {
			return nil, fmt.Errorf("duplicate kid %q", m.Kid)
		}
		keys[m.Kid] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable RS256 or EdDSA signing keys")
	}
	return keys, nil
}

// jwkMembers are the members of a JWK (RFC 7517, 7518, 8037) the policy
// looks at before the library decodes the key.
type jwkMembers struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	// Private (RSA, EC, OKP) and symmetric ("oct") key material.
	D   string          `json:"d"`
	P   string          `json:"p"`
	Q   string          `json:"q"`
	DP  string          `json:"dp"`
	DQ  string          `json:"dq"`
	QI  string          `json:"qi"`
	Oth json.RawMessage `json:"oth"`
	K   string          `json:"k"`
}

// secret reports whether m carries private or symmetric key material.
func (m jwkMembers) secret() bool {
	return m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || len(m.Oth) > 0 || m.K != ""
}

// supportedAlg returns the one algorithm a signing key verifies, if Tandem
// supports it: RS256 for RSA, EdDSA for Ed25519 (whose "alg" may also be
// spelt "Ed25519").
func (m jwkMembers) supportedAlg() (string, bool) {
	if m.Use != "" && m.Use != "sig" {
		return "", false
	}
	switch {
	case m.Kty == "RSA" && (m.Alg == "" || m.Alg == AlgRS256):
		return AlgRS256, true
	case m.Kty == "OKP" && m.Crv == "Ed25519" && (m.Alg == "" || m.Alg == AlgEdDSA || m.Alg == "Ed25519"):
		return AlgEdDSA, true
	}
	return "", false
}

// parseKey decodes and validates one supported key with the library, then
// checks its strength. Errors name the problem (the library's message,
// or the RSA size or exponent).
func parseKey(raw json.RawMessage, alg string) (jwk, error) {
	what := "RSA"
	if alg == AlgEdDSA {
		what = "Ed25519"
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		msg := strings.TrimPrefix(err.Error(), "go-jose/go-jose: ")
		msg = strings.TrimPrefix(msg, "invalid "+what+" key, ") // said once is enough
		return jwk{}, fmt.Errorf("invalid %s public key: %s", what, msg)
	}
	if !k.IsPublic() {
		return jwk{}, errors.New("contains private key material; publish only public keys")
	}
	switch pub := k.Key.(type) {
	case *rsa.PublicKey:
		if alg != AlgRS256 {
			break
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return jwk{}, fmt.Errorf("bad RSA exponent \"e\" %d: want an odd number of at least 3", pub.E)
		}
		if pub.N.BitLen() < MinRSABits {
			return jwk{}, fmt.Errorf("RSA key has %d bits, want at least %d", pub.N.BitLen(), MinRSABits)
		}
		return jwk{alg: AlgRS256, key: pub}, nil
	case ed25519.PublicKey:
		if alg != AlgEdDSA {
			break
		}
		if len(pub) != ed25519.PublicKeySize {
			return jwk{}, fmt.Errorf("invalid Ed25519 public key: %d bytes, want %d", len(pub), ed25519.PublicKeySize)
		}
		return jwk{alg: AlgEdDSA, key: pub}, nil
	}
	return jwk{}, fmt.Errorf("invalid %s public key: unexpected key type %T", what, k.Key)
}
