package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwksServer serves a JWK set holding one Ed25519 key with the given kid
// on a loopback httptest server, counting requests.
func jwksServer(t *testing.T, kid string, pub ed25519.PublicKey) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

// TestJWKSURLServe runs the server with --jwks-url pointing at a JWKS
// endpoint: a token signed with the published key is accepted on REST, a
// token signed with another key is answered 401.
func TestJWKSURLServe(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, fetches := jwksServer(t, "k1", pub)
	s := startServer(t, "--jwks-url", jwks.URL+"/.well-known/jwks.json", "--jwt-audience", testAudience)
	if n := fetches.Load(); n != 1 {
		t.Errorf("startup fetched the JWKS %d times, want 1", n)
	}
	token := func(key ed25519.PrivateKey) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"sub": "alice", "aud": testAudience, "exp": time.Now().Add(time.Hour).Unix(), "scope": "read:collections",
		})
		tok.Header["kid"] = "k1"
		signed, err := tok.SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	resp, p := s.do(t, "GET", "/v1/collections", "", "", "Authorization", "Bearer "+token(priv))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("published key: %d %v", resp.StatusCode, p)
	}
	resp, p = s.do(t, "GET", "/v1/collections", "", "", "Authorization", "Bearer "+token(otherPriv))
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
		t.Fatalf("other key: %d %v %q", resp.StatusCode, p, resp.Header.Get("WWW-Authenticate"))
	}
	resp, _ = s.do(t, "GET", "/v1/collections", "", "", "Authorization", "Bearer "+token(priv))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("published key again: %d", resp.StatusCode)
	}
}

// TestJWKSURLConfig: --jwks-url settings that cannot work stop the server
// before it listens, with a message naming the problem.
func TestJWKSURLConfig(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := jwksServer(t, "k1", pub)
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	t.Cleanup(failing.Close)
	file := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(file, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"PlainHTTPElsewhere", []string{"--jwks-url", "http://idp.example/jwks.json"}, nil, "plain http is only allowed on a loopback host"},
		{"PlainHTTPElsewhereEnv", nil, map[string]string{"TANDEM_JWKS_URL": "http://10.0.0.1/jwks.json"}, "plain http is only allowed on a loopback host"},
		{"OtherScheme", []string{"--jwks-url", "file:///etc/jwks.json"}, nil, `scheme "file" not supported`},
		{"WithFile", []string{"--jwks-url", jwks.URL, "--jwks-file", file}, nil, "--jwks-file and --jwks-url cannot be combined"},
		{"ShortRefresh", []string{"--jwks-url", jwks.URL, "--jwks-refresh", "10ms"}, nil, "--jwks-refresh 10ms: must be at least 1s"},
		{"FirstFetchFails", []string{"--jwks-url", failing.URL}, nil, "status 503 Service Unavailable, want 200 OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir()}, tc.args...)
			getenv := func(k string) string { return tc.env[k] }
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			err := run(ctx, args, getenv, &bytes.Buffer{}, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run: %v, want an error containing %q\n%s", err, tc.want, stderr.String())
			}
		})
	}
}
