package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/jwksfetch"
)

// TestMain fails the package if a test leaves a goroutine behind (the
// JWKS refresher, an HTTP connection).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// jwksEndpoint is a loopback JWKS server whose answer can be changed and
// whose requests are counted.
type jwksEndpoint struct {
	*httptest.Server
	status   atomic.Int64
	body     atomic.Pointer[[]byte]
	requests atomic.Int64
}

func newJWKSEndpoint(t *testing.T, keys ...map[string]string) *jwksEndpoint {
	t.Helper()
	e := &jwksEndpoint{}
	e.set(t, keys...)
	e.status.Store(http.StatusOK)
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.requests.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		w.WriteHeader(int(e.status.Load()))
		_, _ = w.Write(*e.body.Load())
	}))
	t.Cleanup(e.Close)
	return e
}

// set makes the endpoint publish keys.
func (e *jwksEndpoint) set(t *testing.T, keys ...map[string]string) {
	t.Helper()
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	e.setRaw(b)
}

func (e *jwksEndpoint) setRaw(b []byte) { e.body.Store(&b) }

// logBuffer is a goroutine-safe slog sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func wantReason(t *testing.T, err error, reason string) {
	t.Helper()
	var te *TokenError
	if !errors.As(err, &te) || te.Reason != reason {
		t.Fatalf("err = %v, want reason %q", err, reason)
	}
}

// TestJWKSURLRotation: the provider replaces k1 by k2. A k2 token is
// accepted after the refetch its unknown kid triggers, a k1 token is then
// refused, and further unknown kids within the rate limit cause no fetch,
// however many arrive at once.
func TestJWKSURLRotation(t *testing.T) {
	testKeys(t)
	e := newJWKSEndpoint(t, edJWK("k1", edPub))
	a := newTestAuth(t, Config{JWKSURL: e.URL})
	if n := e.requests.Load(); n != 1 {
		t.Fatalf("New fetched %d times, want 1", n)
	}
	c := baseClaims()
	tok1 := sign(t, jwt.SigningMethodEdDSA, "k1", edKey, c)
	tok2 := sign(t, jwt.SigningMethodEdDSA, "k2", edOtherKey, c)
	if _, err := a.Authenticate(tok1); err != nil {
		t.Fatalf("k1 before rotation: %v", err)
	}

	e.set(t, edJWK("k2", edOtherPub))
	if _, err := a.Authenticate(tok2); err != nil {
		t.Fatalf("k2 after rotation: %v", err)
	}
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("%d fetches after the unknown kid k2, want 2", n)
	}
	_, err := a.Authenticate(tok1)
	wantReason(t, err, ReasonUnknownKey)
	if _, err := a.Authenticate(tok2); err != nil {
		t.Fatalf("k2 again: %v", err)
	}

	// A flood of unknown kids within the rate limit: no fetch at all.
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kid := "unknown-" + string(rune('a'+i%26))
			_, err := a.Authenticate(sign(t, jwt.SigningMethodEdDSA, kid, edKey, c))
			var te *TokenError
			if !errors.As(err, &te) || te.Reason != ReasonUnknownKey {
				t.Errorf("kid %s: %v", kid, err)
			}
		}()
	}
	wg.Wait()
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("%d fetches after the flood, want still 2", n)
	}
}

// TestJWKSURLRefetchRateLimited: many tokens with unknown kids arriving
// together cause exactly one fetch; those arriving while it runs wait for
// it, so a key the provider just added is found by all of them.
func TestJWKSURLRefetchRateLimited(t *testing.T) {
	testKeys(t)
	e := newJWKSEndpoint(t, edJWK("k1", edPub))
	a := newTestAuth(t, Config{JWKSURL: e.URL})
	e.set(t, edJWK("k1", edPub), edJWK("k2", edOtherPub))
	tok2 := sign(t, jwt.SigningMethodEdDSA, "k2", edOtherKey, baseClaims())
	tokX := sign(t, jwt.SigningMethodEdDSA, "nope", edKey, baseClaims())
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok := tokX
			if i%2 == 0 {
				tok = tok2
			}
			_, err := a.Authenticate(tok)
			switch {
			case tok == tok2 && err == nil:
				accepted.Add(1)
			case tok == tokX:
				var te *TokenError
				if !errors.As(err, &te) || te.Reason != ReasonUnknownKey {
					t.Errorf("unknown kid: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	if n := e.requests.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (New and one refetch)", n)
	}
	if accepted.Load() == 0 {
		t.Fatal("no k2 token was accepted after the refetch")
	}
	if _, err := a.Authenticate(tok2); err != nil {
		t.Fatalf("k2 after the refetch: %v", err)
	}
}

// TestJWKSURLRefresh: RunJWKSRefresh picks up a rotation by itself, keeps
// the last good keys (with a warning) while the endpoint fails, and
// returns when its context ends (goleak checks nothing stays behind).
func TestJWKSURLRefresh(t *testing.T) {
	testKeys(t)
	e := newJWKSEndpoint(t, edJWK("k1", edPub))
	logs := &logBuffer{}
	a := newTestAuth(t, Config{JWKSURL: e.URL, JWKSRefresh: 10 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	a.remote.minGap = time.Hour // only the periodic refresh may fetch
	a.remote.last = time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.RunJWKSRefresh(ctx)
	}()
	defer func() {
		cancel()
		<-done
	}()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	c := baseClaims()
	tok1 := sign(t, jwt.SigningMethodEdDSA, "k1", edKey, c)
	tok2 := sign(t, jwt.SigningMethodEdDSA, "k2", edOtherKey, c)

	e.set(t, edJWK("k2", edOtherPub))
	waitFor("the refresh to bring k2", func() bool { _, err := a.Authenticate(tok2); return err == nil })
	_, err := a.Authenticate(tok1)
	wantReason(t, err, ReasonUnknownKey)
	if !strings.Contains(logs.String(), `msg="JWKS keys changed"`) || !strings.Contains(logs.String(), "kids=[k2] previous=[k1]") {
		t.Errorf("rotation not logged:\n%s", logs)
	}

	e.status.Store(http.StatusInternalServerError)
	n := e.requests.Load()
	waitFor("two failed refreshes", func() bool { return e.requests.Load() >= n+2 && strings.Contains(logs.String(), "JWKS refresh failed") })
	if _, err := a.Authenticate(tok2); err != nil {
		t.Fatalf("k2 while the endpoint fails: %v", err)
	}
	if !strings.Contains(logs.String(), "status 500 Internal Server Error") {
		t.Errorf("warning does not say why:\n%s", logs)
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("RunJWKSRefresh did not return after cancel")
	}
	n = e.requests.Load()
	time.Sleep(50 * time.Millisecond)
	if m := e.requests.Load(); m != n {
		t.Fatalf("%d fetches after RunJWKSRefresh returned", m-n)
	}
}

// TestJWKSURLReloadKeepsKeys: a failed fetch (bad status, invalid or
// oversized set) leaves the previous keys in use.
func TestJWKSURLReloadKeepsKeys(t *testing.T) {
	testKeys(t)
	e := newJWKSEndpoint(t, edJWK("k1", edPub))
	a := newTestAuth(t, Config{JWKSURL: e.URL})
	tok1 := sign(t, jwt.SigningMethodEdDSA, "k1", edKey, baseClaims())
	for name, breakIt := range map[string]func(){
		"status": func() { e.status.Store(http.StatusNotFound) },
		"body":   func() { e.setRaw([]byte(`{"keys":`)) },
		"size":   func() { e.setRaw(append([]byte(`{"keys":[]}`), bytes.Repeat([]byte(" "), MaxJWKSSize)...)) },
		"empty":  func() { e.set(t) },
	} {
		e.status.Store(http.StatusOK)
		e.set(t, edJWK("k1", edPub))
		breakIt()
		if err := a.ReloadJWKS(); err == nil {
			t.Errorf("%s: ReloadJWKS succeeded", name)
		}
		if _, err := a.Authenticate(tok1); err != nil {
			t.Errorf("%s: k1 after a failed reload: %v", name, err)
		}
	}
}

// TestJWKSURLErrors: URLs and fetched sets New refuses, with a message
// naming the problem; a password in the URL never appears.
func TestJWKSURLErrors(t *testing.T) {
	testKeys(t)
	small := `{"kty":"RSA","kid":"w","n":"` + b64u(bytes.Repeat([]byte{0xff}, 128)) + `","e":"AQAB"}`
	priv := edJWK("p", edPub)
	priv["d"] = b64u(edKey.Seed())
	rsaPriv := rsaJWK("r", &rsaKey.PublicKey)
	rsaPriv["d"] = b64u(rsaKey.D.Bytes())
	oct := map[string]string{"kty": "oct", "kid": "s", "k": b64u(testSecret)}
	marshal := func(keys ...map[string]string) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	redirect := httptest.NewServer(http.RedirectHandler("http://idp.example/jwks.json", http.StatusFound))
	t.Cleanup(redirect.Close)

	tests := []struct {
		name   string
		status int
		body   []byte
		url    string // instead of the endpoint's
		file   bool   // also set JWKSFile
		want   string
	}{
		{name: "not found", status: 404, body: []byte("nope"), want: "status 404 Not Found, want 200 OK"},
		{name: "too large", body: append([]byte(`{"keys":[]}`), bytes.Repeat([]byte(" "), MaxJWKSSize)...), want: "body larger than 1048576 bytes"},
		{name: "private Ed25519", body: marshal(priv), want: `key 1 (kid "p") contains private key material`},
		{name: "private RSA d only", body: marshal(rsaPriv), want: `key 1 (kid "r") contains private key material`},
		{name: "symmetric key", body: marshal(oct), want: `key 1 (kid "s") contains private key material`},
		{name: "duplicate member", body: []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"` + b64u(edPub) + `","x":"` + b64u(edOtherPub) + `"}]}`), want: `/keys/0/x: duplicate member "x"`},
		{name: "duplicate kid", body: marshal(edJWK("a", edPub), edJWK("a", edOtherPub)), want: `duplicate kid "a"`},
		{name: "weak RSA", body: []byte(`{"keys":[` + small + `]}`), want: "RSA key has 1024 bits, want at least 2048"},
		{name: "no usable key", body: []byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`), want: "no usable RS256 or EdDSA signing keys"},
		{name: "not json", body: []byte(`{`), want: "JWKS URL"},
		{name: "http elsewhere", url: "http://idp.example/jwks.json", want: "plain http is only allowed on a loopback host"},
		{name: "other scheme", url: "ftp://127.0.0.1/jwks.json", want: `scheme "ftp" not supported`},
		{name: "no host", url: "https:///jwks.json", want: "no host"},
		{name: "redirect to http elsewhere", url: redirect.URL, want: "plain http is only allowed on a loopback host"},
		{name: "with file", file: true, want: "a JWKS file and a JWKS URL cannot be combined"},
		{name: "password redacted", status: 500, url: "userinfo", want: "status 500"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newJWKSEndpoint(t, edJWK("k1", edPub))
			if tt.body != nil {
				e.setRaw(tt.body)
			}
			if tt.status != 0 {
				e.status.Store(int64(tt.status))
			}
			cfg := Config{JWKSURL: e.URL, JWKSFetcher: jwksfetch.New()}
			switch {
			case tt.url == "userinfo":
				cfg.JWKSURL = strings.Replace(e.URL, "http://", "http://user:hunter2@", 1)
			case tt.url != "":
				cfg.JWKSURL = tt.url
			}
			if tt.file {
				cfg.JWKSFile = writeJWKS(t, edJWK("k1", edPub))
			}
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error leaks the password or spans lines: %q", err)
			}
		})
	}
}

// TestJWKSURLRedacted: the password of a JWKS URL never appears in the
// Config's String, GoString, slog or JSON output.
func TestJWKSURLRedacted(t *testing.T) {
	cfg := Config{JWKSURL: "https://user:hunter2@idp.example/jwks.json", JWKSRefresh: time.Minute}
	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "auth", cfg)
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"String": cfg.String(), "GoString": cfg.GoString(), "slog": logs.String(), "JSON": string(j)} {
		if strings.Contains(out, "hunter2") || !strings.Contains(out, "idp.example/jwks.json") {
			t.Errorf("%s: %s", name, out)
		}
	}
}
