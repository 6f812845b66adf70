package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tandemhq/tandem/internal/jwksfetch"
)

var (
	testSecret = []byte("0123456789abcdef0123456789abcdef") // 32 bytes
	testNow    = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

	rsaOnce            sync.Once
	rsaKey, rsaOtherKy *rsa.PrivateKey
	edPub, edOtherPub  ed25519.PublicKey
	edKey, edOtherKey  ed25519.PrivateKey
)

// testKeys generates the asymmetric keys once per test binary.
func testKeys(t testing.TB) {
	t.Helper()
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaOtherKy, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if edPub, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		if edOtherPub, edOtherKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey) map[string]string {
	return map[string]string{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n": b64u(pub.N.Bytes()), "e": b64u(big.NewInt(int64(pub.E)).Bytes())}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]string {
	return map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64u(pub)}
}

func writeJWKS(t *testing.T, keys ...map[string]string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func sign(t *testing.T, method jwt.SigningMethod, kid string, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"sub":   "alice",
		"aud":   "tandem",
		"iss":   "https://issuer.example",
		"iat":   testNow.Add(-time.Minute).Unix(),
		"exp":   testNow.Add(time.Hour).Unix(),
		"scope": "read:channels/user.{sub}/** publish:channels/*/messages",
	}
}

func with(c jwt.MapClaims, kv ...any) jwt.MapClaims {
	out := jwt.MapClaims{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func newTestAuth(t *testing.T, cfg Config) *Authenticator {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return testNow }
	}
	if cfg.JWKSURL != "" && cfg.JWKSFetcher == nil {
		cfg.JWKSFetcher = jwksfetch.New()
	}
	a, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// unsigned builds a token with the given header and claims and an empty
// (or given) signature, bypassing the library.
func unsigned(header, claims any, sig string) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return b64u(h) + "." + b64u(c) + "." + sig
}

func TestJWTMatrix(t *testing.T) {
	testKeys(t)
	jwks := writeJWKS(t, rsaJWK("rsa1", &rsaKey.PublicKey), edJWK("ed1", edPub),
		map[string]string{"kty": "EC", "kid": "ec1", "crv": "P-256", "x": "AA", "y": "AA"},  // skipped
		map[string]string{"kty": "RSA", "kid": "enc", "use": "enc", "n": "AA", "e": "AQAB"}, // skipped
	)
	full := newTestAuth(t, Config{HS256Secret: testSecret, JWKSFile: jwks, Audience: "tandem", Issuer: "https://issuer.example", Leeway: 10 * time.Second})
	jwksOnly := newTestAuth(t, Config{JWKSFile: jwks})
	hsOnly := newTestAuth(t, Config{HS256Secret: testSecret})

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	hs := func(c jwt.MapClaims) string { return sign(t, jwt.SigningMethodHS256, "", testSecret, c) }
	rs := func(kid string, c jwt.MapClaims) string { return sign(t, jwt.SigningMethodRS256, kid, rsaKey, c) }
	ed := func(kid string, c jwt.MapClaims) string { return sign(t, jwt.SigningMethodEdDSA, kid, edKey, c) }
	base := baseClaims()

	tests := []struct {
		name   string
		a      *Authenticator
		token  string
		reason string // "" means valid
	}{
		{"hs256 valid", full, hs(base), ""},
		{"rs256 valid", full, rs("rsa1", base), ""},
		{"eddsa valid", full, ed("ed1", base), ""},
		{"rs256 valid jwks only, no aud/iss configured", jwksOnly, rs("rsa1", with(base, "aud", nil, "iss", nil)), ""},
		{"scp array", full, hs(with(base, "scope", nil, "scp", []string{"read:channels/user.{sub}/**", "publish:channels/*/messages"})), ""},
		{"scope array", full, hs(with(base, "scope", []string{"read:channels/user.{sub}/**", "publish:channels/*/messages"})), ""},
		{"foreign OIDC scopes ignored", full, hs(with(base, "scope", "openid profile read:channels/user.{sub}/** email publish:channels/*/messages offline_access")), ""},
		{"aud array containing ours", full, hs(with(base, "aud", []string{"other", "tandem"})), ""},
		{"expired within leeway", full, hs(with(base, "exp", testNow.Add(-5*time.Second).Unix())), ""},
		{"nbf within leeway", full, hs(with(base, "nbf", testNow.Add(5*time.Second).Unix())), ""},

		{"expired", full, hs(with(base, "exp", testNow.Add(-time.Minute).Unix())), ReasonExpired},
		{"expired rs256", full, rs("rsa1", with(base, "exp", testNow.Add(-time.Minute).Unix())), ReasonExpired},
		{"no exp", full, hs(with(base, "exp", nil)), ReasonMissingExpiry},
		{"nbf in future", full, hs(with(base, "nbf", testNow.Add(time.Minute).Unix())), ReasonNotYetValid},
		{"wrong aud", full, hs(with(base, "aud", "other")), ReasonWrongAudience},
		{"missing aud", full, hs(with(base, "aud", nil)), ReasonWrongAudience},
		{"wrong iss", full, hs(with(base, "iss", "https://evil.example")), ReasonWrongIssuer},
		{"missing iss", full, hs(with(base, "iss", nil)), ReasonWrongIssuer},
		{"missing sub", full, hs(with(base, "sub", nil)), ReasonMissingSubject},
		{"malformed scope grant", full, hs(with(base, "scope", "read:channels//x")), ReasonInvalidScope},
		{"scope wrong type", full, hs(with(base, "scope", 42)), ReasonInvalidScope},
		{"exp wrong type", full, hs(with(base, "exp", "tomorrow")), ReasonMalformed},

		{"hs256 bad signature", full, sign(t, jwt.SigningMethodHS256, "", []byte("another-secret-another-secret-!!"), base), ReasonBadSignature},
		{"rs256 bad signature", full, sign(t, jwt.SigningMethodRS256, "rsa1", rsaOtherKy, base), ReasonBadSignature},
		{"eddsa bad signature", full, sign(t, jwt.SigningMethodEdDSA, "ed1", edOtherKey, base), ReasonBadSignature},
		{"tampered payload", full, tamper(hs(base)), ReasonBadSignature},

		{"alg none", full, unsigned(map[string]string{"alg": "none", "typ": "JWT"}, base, ""), ReasonUnsupportedAlg},
		{"alg None", full, unsigned(map[string]string{"alg": "None"}, base, ""), ReasonUnsupportedAlg},
		{"alg HS512", full, sign(t, jwt.SigningMethodHS512, "", testSecret, base), ReasonUnsupportedAlg},
		{"alg missing", full, unsigned(map[string]string{"typ": "JWT"}, base, "c2ln"), ReasonUnsupportedAlg},
		// Alg confusion: HMAC keyed with the RSA public key must not verify.
		{"hs256 signed with RSA public key PEM, kid rsa1", full, sign(t, jwt.SigningMethodHS256, "rsa1", pubPEM, base), ReasonBadSignature},
		{"hs256 signed with RSA public key DER, jwks only", jwksOnly, sign(t, jwt.SigningMethodHS256, "rsa1", pubDER, base), ReasonUnsupportedAlg},
		{"hs256 signed with RSA modulus, jwks only", jwksOnly, sign(t, jwt.SigningMethodHS256, "rsa1", rsaKey.PublicKey.N.Bytes(), base), ReasonUnsupportedAlg},
		{"hs256 signed with Ed25519 public key, jwks only", jwksOnly, sign(t, jwt.SigningMethodHS256, "ed1", []byte(edPub), base), ReasonUnsupportedAlg},
		{"rs256 on hs-only", hsOnly, rs("rsa1", base), ReasonUnsupportedAlg},
		{"EdDSA token claiming RSA kid", full, ed("rsa1", base), ReasonUnsupportedAlg},
		{"RS256 token claiming Ed25519 kid", full, rs("ed1", base), ReasonUnsupportedAlg},

		{"unknown kid", full, rs("nope", base), ReasonUnknownKey},
		{"missing kid", full, rs("", base), ReasonUnknownKey},
		{"skipped EC kid", full, rs("ec1", base), ReasonUnknownKey},
		{"skipped enc kid", full, rs("enc", base), ReasonUnknownKey},

		{"garbage with dots", full, "a.b.c", ReasonMalformed},
		{"not a jwt, not a key", full, "some-random-token", ReasonUnknownAPIKey},
		{"too large", full, strings.Repeat("a", MaxTokenLen+1), ReasonTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := tt.a.Authenticate(tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if p.Kind != KindJWT || p.Subject != "alice" {
					t.Fatalf("principal = %+v", p)
				}
				if tt.a != jwksOnly {
					if !p.Can(ActionRead, "channels/user.alice/messages") || !p.Can(ActionPublish, "channels/room.1/messages") {
						t.Errorf("grants not applied: %v", p.Grants)
					}
					if p.Can(ActionRead, "channels/user.bob/messages") || len(p.Grants) != 2 {
						t.Errorf("unexpected grants: %v", p.Grants)
					}
				}
				if !p.ExpiresAt.After(testNow.Add(-time.Minute)) {
					t.Errorf("ExpiresAt = %v", p.ExpiresAt)
				}
				return
			}
			if err == nil {
				t.Fatalf("Authenticate accepted the token: %+v", p)
			}
			if !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("error %v does not match ErrInvalidToken", err)
			}
			var te *TokenError
			if !errors.As(err, &te) || te.Reason != tt.reason {
				t.Fatalf("reason = %q, want %q (err %v)", te.Reason, tt.reason, err)
			}
			if strings.Contains(err.Error(), tt.token) && len(tt.token) > 3 {
				t.Errorf("error contains the token")
			}
		})
	}
}

func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	var c map[string]any
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	_ = json.Unmarshal(b, &c)
	c["scope"] = "admin:**"
	nb, _ := json.Marshal(c)
	return parts[0] + "." + b64u(nb) + "." + parts[2]
}

func TestMint(t *testing.T) {
	tok, err := Mint(testSecret, "bob", []string{"read:collections/**", "admin:collections"}, time.Hour, "tandem", "tandem-dev")
	if err != nil {
		t.Fatal(err)
	}
	a := newTestAuth(t, Config{HS256Secret: testSecret, Audience: "tandem", Issuer: "tandem-dev", Now: time.Now})
	p, err := a.Authenticate(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "bob" || p.Kind != KindJWT || p.Grants.String() != "read:collections/** admin:collections" {
		t.Fatalf("principal = %+v", p)
	}
	if d := time.Until(p.ExpiresAt); d < 59*time.Minute || d > time.Hour {
		t.Fatalf("ExpiresAt = %v", p.ExpiresAt)
	}
	if p.Expired(time.Now()) || !p.Expired(p.ExpiresAt) {
		t.Fatal("Expired")
	}

	for name, f := range map[string]func() (string, error){
		"short secret": func() (string, error) { return Mint([]byte("short"), "bob", nil, time.Hour, "", "") },
		"no subject":   func() (string, error) { return Mint(testSecret, "", nil, time.Hour, "", "") },
		"zero ttl":     func() (string, error) { return Mint(testSecret, "bob", nil, 0, "", "") },
		"bad grant":    func() (string, error) { return Mint(testSecret, "bob", []string{"read:a//b"}, time.Hour, "", "") },
	} {
		if _, err := f(); err == nil {
			t.Errorf("%s: want error", name)
		} else if strings.Contains(err.Error(), string(testSecret)) {
			t.Errorf("%s: error leaks secret", name)
		}
	}
}

func TestJWKSErrors(t *testing.T) {
	testKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jsonOf := func(keys ...map[string]string) string {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return string(b)
	}
	priv := edJWK("p", edPub)
	priv["d"] = b64u(edKey.Seed())
	evenE := rsaJWK("even", &rsaKey.PublicKey)
	evenE["e"] = b64u(big.NewInt(65536).Bytes())
	hugeE := rsaJWK("huge", &rsaKey.PublicKey)
	hugeE["e"] = b64u(append([]byte{1, 0, 0, 0, 0, 0, 0, 0}, 3)) // 2^64+3 would wrap to 3
	encPriv := edJWK("encp", edPub)
	encPriv["use"], encPriv["d"] = "enc", b64u(edKey.Seed())
	tests := map[string]struct{ path, want string }{
		"missing":                       {filepath.Join(dir, "nope.json"), "no such file"},
		"not json":                      {write("bad.json", "{"), "unexpected end"},
		"empty":                         {write("empty.json", `{"keys":[]}`), "no usable"},
		"only EC":                       {write("ec.json", `{"keys":[{"kty":"EC","crv":"P-256"}]}`), "no usable"},
		"duplicate kid":                 {write("dup.json", jsonOf(edJWK("a", edPub), edJWK("a", edOtherPub))), "duplicate kid"},
		"weak rsa":                      {write("weak.json", jsonOf(rsaJWK("w", &small.PublicKey))), "at least 2048"},
		"bad ed x":                      {write("badx.json", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`), "invalid Ed25519 public key"},
		"bad rsa e":                     {write("bade.json", `{"keys":[{"kty":"RSA","n":"AAAA","e":"AAAAAAAA"}]}`), `invalid RSA public key: bad e value`},
		"private key":                   {write("priv.json", jsonOf(priv)), "private key material"},
		"even rsa e":                    {write("even.json", jsonOf(evenE)), `bad RSA exponent "e" 65536`},
		"rsa e beyond 64 bits":          {write("hugee.json", jsonOf(hugeE)), "invalid RSA public key"},
		"enc key with private material": {write("encpriv.json", jsonOf(encPriv)), "private key material"},
	}
	for name, tt := range tests {
		_, err := New(Config{JWKSFile: tt.path})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want error containing %q", name, err, tt.want)
		}
	}
}

func TestReloadJWKS(t *testing.T) {
	testKeys(t)
	path := writeJWKS(t, edJWK("k1", edPub))
	a := newTestAuth(t, Config{JWKSFile: path})
	c := baseClaims()
	tok2 := sign(t, jwt.SigningMethodEdDSA, "k2", edOtherKey, c)
	if _, err := a.Authenticate(tok2); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("before rotation: %v", err)
	}
	b, _ := json.Marshal(map[string]any{"keys": []any{edJWK("k1", edPub), edJWK("k2", edOtherPub)}})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadJWKS(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(tok2); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	// A broken file keeps the old keys.
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.ReloadJWKS(); err == nil {
		t.Fatal("want reload error")
	}
	if _, err := a.Authenticate(tok2); err != nil {
		t.Fatalf("after failed reload: %v", err)
	}
}
