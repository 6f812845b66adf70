package main

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/jwksfetch"
)

// apiKeysFile is the format of --api-keys-file:
//
//	keys:
//	  - name: billing-service        # the principal's subject
//	    key: 0123456789abcdef0123    # at least 16 bytes; keep this file private
//	    grants: ["write:collections/invoices/**", "publish:channels/billing.*/messages"]
type apiKeysFile struct {
	Keys []struct {
		Name   string   `yaml:"name"`
		Key    string   `yaml:"key"`
		Grants []string `yaml:"grants"`
	} `yaml:"keys"`
}

// authenticator builds the authenticator from the auth flags; with none
// set, auth is disabled (protected mode keeps the server on loopback).
// With --jwks-url it fetches the key set (the caller runs
// RunJWKSRefresh). Errors (never containing a secret): unreadable or
// invalid key file, invalid grants, a short HS256 secret, an invalid JWKS
// file, --jwks-file with --jwks-url, a --jwks-url that is neither https
// nor http on loopback or whose first fetch fails, a --jwks-refresh below
// 1s.
func (c serveConfig) authenticator(logger *slog.Logger) (*auth.Authenticator, error) {
	if c.JWKSFile != "" && c.JWKSURL != "" {
		return nil, errors.New("--jwks-file and --jwks-url cannot be combined: configure one key source")
	}
	if c.JWKSURL != "" && c.JWKSRefresh < time.Second {
		return nil, fmt.Errorf("--jwks-refresh %v: must be at least 1s", c.JWKSRefresh)
	}
	cfg := auth.Config{
		JWKSFile:    c.JWKSFile,
		JWKSURL:     c.JWKSURL,
		JWKSFetcher: jwksfetch.New(),
		JWKSRefresh: c.JWKSRefresh,
		Audience:    c.JWTAudience,
		Issuer:      c.JWTIssuer,
		Leeway:      c.JWTLeeway,
		Logger:      logger,
	}
	if c.JWTSecret != "" {
		cfg.HS256Secret = []byte(c.JWTSecret)
	}
	if c.APIKeysFile != "" {
		keys, err := loadAPIKeys(c.APIKeysFile)
		if err != nil {
			return nil, err
		}
		cfg.APIKeys = keys
	}
	if c.AnonymousGrants != "" {
		g, err := auth.ParseScope(c.AnonymousGrants)
		if err != nil {
			return nil, fmt.Errorf("--anonymous-grants: %w", err)
		}
		cfg.AnonymousGrants = g
	}
	return auth.New(cfg)
}

// loadAPIKeys reads an API keys file. Errors: unreadable file, invalid
// YAML or grants; messages name the entry, never its key.
func loadAPIKeys(path string) ([]auth.APIKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--api-keys-file: %w", err)
	}
	var f apiKeysFile
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		if d := yamlDuplicateKey(err); d != "" {
			return nil, fmt.Errorf("--api-keys-file %s: duplicate key: %s", path, d)
		}
		// Other yaml errors quote offending lines, which may hold a key.
		return nil, fmt.Errorf("--api-keys-file %s: invalid YAML (expected keys: [{name, key, grants}])", path)
	}
	keys := make([]auth.APIKey, 0, len(f.Keys))
	for i, k := range f.Keys {
		if strings.TrimSpace(k.Name) == "" {
			return nil, fmt.Errorf("--api-keys-file %s: entry %d has no name", path, i+1)
		}
		g, err := auth.ParseGrants(k.Grants)
		if err != nil {
			return nil, fmt.Errorf("--api-keys-file %s: key %q: %w", path, k.Name, err)
		}
		keys = append(keys, auth.APIKey{Name: k.Name, Key: k.Key, Grants: g})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("--api-keys-file %s: no keys", path)
	}
	return keys, nil
}
