package auth

import (
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"

	"github.com/tandemhq/tandem/internal/ijson"
)

// Algorithms accepted for JWTs.
const (
	AlgHS256 = "HS256"
	AlgRS256 = "RS256"
	AlgEdDSA = "EdDSA"
)

// MinRSABits is the smallest RSA modulus accepted from a JWKS file.
const MinRSABits = 2048

// maxJWKSFileSize bounds the JWKS file read at startup.
const maxJWKSFileSize = 1 << 20

// jwk is one verification key, bound to exactly one algorithm.
type jwk struct {
	alg string // AlgRS256 or AlgEdDSA
	key any    // *rsa.PublicKey or ed25519.PublicKey
}

// jwkJSON is the subset of RFC 7517/8037 fields Tandem reads.
type jwkJSON struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	D   string `json:"d"`
}

// loadJWKS reads a JWKS file: {"keys":[...]}. RSA keys (RS256) and OKP
// Ed25519 keys (EdDSA) with use "sig" or no use are loaded; other keys are
// skipped. Errors if the file is unreadable, malformed, not I-JSON (a
// duplicate member, named by its pointer), has a duplicate kid, an invalid
// or weak supported key, or no usable key.
func loadJWKS(path string) (map[string]jwk, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxJWKSFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file: %w", err)
	}
	if len(data) > maxJWKSFileSize {
		return nil, fmt.Errorf("auth: JWKS file %s: larger than %d bytes", path, maxJWKSFileSize)
	}
	// Duplicate members would let two readers of the file see different
	// keys (encoding/json keeps the last): refuse them, and numbers beyond
	// the double range (RFC 7493).
	if err := ijson.Check(data); err != nil {
		var e *ijson.Error
		if errors.As(err, &e) && e.Reason != ijson.Syntax && e.Pointer != "" {
			return nil, fmt.Errorf("auth: JWKS file %s: %s: %w", path, e.Pointer, err)
		}
		return nil, fmt.Errorf("auth: JWKS file %s: %w", path, err)
	}
	var doc struct {
		Keys []jwkJSON `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", path, err)
	}
	keys, err := parseJWKS(doc.Keys)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS file %s: %w", path, err)
	}
	return keys, nil
}

func parseJWKS(in []jwkJSON) (map[string]jwk, error) {
	keys := map[string]jwk{}
	for i, k := range in {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.D != "" {
			return nil, fmt.Errorf("key %d (kid %q) contains private key material; publish only public keys", i+1, k.Kid)
		}
		var (
			key jwk
			err error
			ok  bool
		)
		switch {
		case k.Kty == "RSA" && (k.Alg == "" || k.Alg == AlgRS256):
			key, err = parseRSA(k)
			ok = true
		case k.Kty == "OKP" && k.Crv == "Ed25519" && (k.Alg == "" || k.Alg == AlgEdDSA || k.Alg == "Ed25519"):
			key, err = parseEd25519(k)
			ok = true
		}
		if !ok {
			continue // unsupported key type or algorithm
		}
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i+1, k.Kid, err)
		}
		if _, dup := keys[k.Kid]; dup {
			return nil, fmt.Errorf("duplicate kid %q", k.Kid)
		}
		keys[k.Kid] = key
	}
	if len(keys) == 0 {
		return nil, errors.New("no usable RS256 or EdDSA signing keys")
	}
	return keys, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func parseRSA(k jwkJSON) (jwk, error) {
	n, err := b64(k.N)
	if err != nil || len(n) == 0 {
		return jwk{}, errors.New("bad RSA modulus \"n\"")
	}
	e, err := b64(k.E)
	if err != nil || len(e) == 0 || len(e) > 4 {
		return jwk{}, errors.New("bad RSA exponent \"e\"")
	}
	var exp int
	for _, b := range e {
		exp = exp<<8 | int(b)
	}
	if exp < 3 || exp%2 == 0 {
		return jwk{}, errors.New("bad RSA exponent \"e\"")
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	if pub.N.BitLen() < MinRSABits {
		return jwk{}, fmt.Errorf("RSA key has %d bits, want at least %d", pub.N.BitLen(), MinRSABits)
	}
	return jwk{alg: AlgRS256, key: pub}, nil
}

func parseEd25519(k jwkJSON) (jwk, error) {
	x, err := b64(k.X)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return jwk{}, errors.New("bad Ed25519 public key \"x\"")
	}
	return jwk{alg: AlgEdDSA, key: ed25519.PublicKey(x)}, nil
}
