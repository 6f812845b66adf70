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

	"github.com/MicahParks/jwkset"

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

// parseJWKS reads a JWK set, {"keys":[...]}, with github.com/MicahParks/jwkset
// and applies Tandem's policy on top: RSA keys (RS256, at least MinRSABits,
// an odd exponent of at least 3) and OKP Ed25519 keys (EdDSA) with use
// "sig" or no use are loaded, each bound to its one algorithm; other keys
// are skipped. Errors: malformed JSON, not I-JSON (a duplicate member or an
// out-of-range number, named by its JSON pointer), private or symmetric key
// material in any key, a duplicate kid, a supported key the library refuses
// or that is too weak, no usable key.
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
	var doc jwkset.JWKSMarshal
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	keys := map[string]jwk{}
	for i, m := range doc.Keys {
		if hasSecret(m) {
			return nil, fmt.Errorf("key %d (kid %q) contains private key material; publish only public keys", i+1, m.KID)
		}
		alg, ok := supportedAlg(m)
		if !ok {
			continue // unsupported key type, algorithm or use
		}
		k, err := parseKey(m, alg)
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i+1, m.KID, err)
		}
		if _, dup := keys[m.KID]; dup {
			return nil, fmt.Errorf("duplicate kid %q", m.KID)
		}
		keys[m.KID] = k
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable RS256 or EdDSA signing keys")
	}
	return keys, nil
}

// hasSecret reports whether m carries private (RSA, EC, OKP) or symmetric
// ("oct") key material.
func hasSecret(m jwkset.JWKMarshal) bool {
	return m.D != "" || m.P != "" || m.Q != "" || m.DP != "" || m.DQ != "" || m.QI != "" || len(m.OTH) > 0 || m.K != ""
}

// supportedAlg returns the one algorithm a signing key verifies, if Tandem
// supports it: RS256 for RSA, EdDSA for Ed25519 (whose "alg" may also be
// spelt "Ed25519").
func supportedAlg(m jwkset.JWKMarshal) (string, bool) {
	if m.USE != "" && m.USE != jwkset.UseSig {
		return "", false
	}
	switch {
	case m.KTY == jwkset.KtyRSA && (m.ALG == "" || m.ALG == jwkset.AlgRS256):
		return AlgRS256, true
	case m.KTY == jwkset.KtyOKP && m.CRV == jwkset.CrvEd25519 && (m.ALG == "" || m.ALG == jwkset.AlgEdDSA || m.ALG == "Ed25519"):
		return AlgEdDSA, true
	}
	return "", false
}

// parseKey decodes and validates one supported key with the library, then
// checks its strength. Errors name the problem (the library's message,
// or the RSA size or exponent).
func parseKey(m jwkset.JWKMarshal, alg string) (jwk, error) {
	if m.ALG == "Ed25519" {
		m.ALG = jwkset.AlgEdDSA // the library validates "alg" against its registry
	}
	j, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
	if err != nil {
		what := "RSA"
		if alg == AlgEdDSA {
			what = "Ed25519"
		}
		return jwk{}, fmt.Errorf("invalid %s public key: %w", what, oneLine{err})
	}
	switch pub := j.Key().(type) {
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
		return jwk{alg: AlgEdDSA, key: pub}, nil
	}
	return jwk{}, fmt.Errorf("unexpected key type %T for %s", j.Key(), alg)
}

// oneLine shows a library error (which may join several with newlines) on
// one line, keeping it for errors.Is and errors.As.
type oneLine struct{ err error }

func (e oneLine) Error() string { return strings.ReplaceAll(e.err.Error(), "\n", ": ") }
func (e oneLine) Unwrap() error { return e.err }
