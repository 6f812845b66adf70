package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
)

// MinAPIKeyLen is the shortest accepted API key, in bytes.
const MinAPIKeyLen = 16

const redacted = "[REDACTED]"

// APIKey is a statically configured server-to-server credential. Its Name
// is the principal's subject. Key is secret: String, GoString, LogValue and
// MarshalJSON redact it (so a marshalled APIKey does not round-trip).
type APIKey struct {
	Name   string
	Key    string
	Grants Grants
}

// String describes k without its key. It returns no error.
func (k APIKey) String() string {
	return fmt.Sprintf("APIKey{Name:%q Key:%s Grants:%q}", k.Name, redacted, k.Grants.String())
}

// GoString is String, so that %#v does not print the key. It returns no
// error.
func (k APIKey) GoString() string { return k.String() }

// LogValue implements slog.LogValuer with the key redacted. It returns no
// error.
func (k APIKey) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", k.Name),
		slog.String("key", redacted),
		slog.String("grants", k.Grants.String()),
	)
}

// MarshalJSON encodes k with the key redacted. It returns no error.
func (k APIKey) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name   string `json:"name"`
		Key    string `json:"key"`
		Grants Grants `json:"grants"`
	}{k.Name, redacted, k.Grants})
}

// keyring holds API keys by SHA-256 hash only.
type keyring struct {
	hashes [][sha256.Size]byte
	keys   []APIKey // Key field cleared
}

func newKeyring(keys []APIKey) (*keyring, error) {
	kr := &keyring{}
	names := map[string]bool{}
	seen := map[[sha256.Size]byte]string{}
	for i, k := range keys {
		switch {
		case !ValidSegment(k.Name):
			return nil, fmt.Errorf("auth: API key %d: name %s must be one path segment (letters, digits, punctuation; no / * { } %% ? #)", i+1, quote(k.Name))
		case names[k.Name]:
			return nil, fmt.Errorf("auth: API key %q: duplicate name", k.Name)
		case len(k.Key) < MinAPIKeyLen:
			return nil, fmt.Errorf("auth: API key %q: key must be at least %d bytes", k.Name, MinAPIKeyLen)
		}
		if err := k.Grants.Validate(); err != nil {
			return nil, fmt.Errorf("auth: API key %q: %w", k.Name, err)
		}
		h := sha256.Sum256([]byte(k.Key))
		if other, dup := seen[h]; dup {
			return nil, fmt.Errorf("auth: API keys %q and %q have the same key", other, k.Name)
		}
		names[k.Name] = true
		seen[h] = k.Name
		kr.hashes = append(kr.hashes, h)
		k.Key = ""
		kr.keys = append(kr.keys, k)
	}
	return kr, nil
}

// lookup finds the key matching token, comparing hashes in constant time and
// always visiting every key.
func (kr *keyring) lookup(token string) (APIKey, bool) {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range kr.hashes {
		eq := subtle.ConstantTimeCompare(h[:], kr.hashes[i][:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return APIKey{}, false
	}
	return kr.keys[found], true
}
