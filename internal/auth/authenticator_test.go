package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const (
	key1 = "tk_live_1111111111111111aaaa"
	key2 = "tk_live_2222222222222222bbbb"
)

func testAPIKeys() []APIKey {
	return []APIKey{
		{Name: "billing", Key: key1, Grants: Grants{MustParseGrant("write:collections/invoices/**")}},
		{Name: "ingest", Key: key2, Grants: Grants{MustParseGrant("publish:channels/*/messages"), MustParseGrant("read:channels/{sub}/**")}},
	}
}

func TestAPIKeys(t *testing.T) {
	a := newTestAuth(t, Config{APIKeys: testAPIKeys()})
	if !a.Enabled() {
		t.Fatal("not enabled")
	}
	p, err := a.Authenticate(key2)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != KindAPIKey || p.Subject != "ingest" || !p.ExpiresAt.IsZero() {
		t.Fatalf("principal = %+v", p)
	}
	if !p.Can(ActionPublish, "channels/room.1/messages") || !p.Can(ActionRead, "channels/ingest/messages") || p.Can(ActionRead, "channels/billing/messages") {
		t.Fatalf("grants: %v", p.Grants)
	}
	// The returned grants are a copy.
	p.Grants[0] = MustParseGrant("admin:**")
	if p2, _ := a.Authenticate(key2); p2.Can(ActionAdmin, "collections") {
		t.Fatal("principal grants alias the configuration")
	}
	p, err = a.Authenticate(key1)
	if err != nil || p.Subject != "billing" {
		t.Fatalf("key1: %+v %v", p, err)
	}

	for _, tok := range []string{key1 + "x", key1[:len(key1)-1], strings.ToUpper(key1), " " + key1, "x"} {
		_, err := a.Authenticate(tok)
		var te *TokenError
		if !errors.As(err, &te) || te.Reason != ReasonUnknownAPIKey {
			t.Errorf("%q: got %v, want %s", tok, err, ReasonUnknownAPIKey)
		}
		if strings.Contains(err.Error(), tok) {
			t.Errorf("error contains the token")
		}
	}
	// API keys only: JWT-shaped tokens are rejected cleanly.
	if _, err := a.Authenticate("a.b.c"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("jwt on api-key-only: %v", err)
	}
	if _, err := a.Authenticate(""); !errors.Is(err, ErrNoToken) {
		t.Fatalf("empty: %v", err)
	}
}

func TestAnonymous(t *testing.T) {
	a := newTestAuth(t, Config{APIKeys: testAPIKeys(), AnonymousGrants: Grants{MustParseGrant("read:channels/lobby/**")}})
	p, err := a.Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != KindAnonymous || !p.Anonymous() || p.Subject != "" {
		t.Fatalf("principal = %+v", p)
	}
	if !p.Can(ActionRead, "channels/lobby/messages") || p.Can(ActionRead, "channels/other/messages") {
		t.Fatal("anonymous grants")
	}
	if err := p.Check(ActionWrite, "collections/x/resources"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("Check: %v", err)
	}
	if p, err := a.Resolve(key1); err != nil || p.Subject != "billing" {
		t.Fatalf("Resolve(key): %+v %v", p, err)
	}
	if _, err := a.Resolve("bogus"); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("Resolve(bogus): %v", err)
	}
}

func TestDisabled(t *testing.T) {
	a := newTestAuth(t, Config{AnonymousGrants: Grants{MustParseGrant("read:x")}})
	if a.Enabled() {
		t.Fatal("enabled without credentials")
	}
	for _, tok := range []string{"", "anything", "a.b.c"} {
		p, err := a.Authenticate(tok)
		if err != nil {
			t.Fatalf("%q: %v", tok, err)
		}
		if p.Kind != KindAnonymous {
			t.Fatalf("kind %s", p.Kind)
		}
		for _, act := range Actions {
			if !p.Can(act, "collections/orders/resources/42") || !p.Can(act, "collections") {
				t.Fatalf("disabled auth denies %s", act)
			}
		}
	}
}

func TestNewErrors(t *testing.T) {
	tests := map[string]struct {
		cfg  Config
		want string
	}{
		"short secret":    {Config{HS256Secret: []byte("short")}, "at least 32 bytes"},
		"short key":       {Config{APIKeys: []APIKey{{Name: "a", Key: "shortkey"}}}, "at least 16 bytes"},
		"empty name":      {Config{APIKeys: []APIKey{{Name: "", Key: key1}}}, "name"},
		"name with slash": {Config{APIKeys: []APIKey{{Name: "a/b", Key: key1}}}, "one path segment"},
		"duplicate name":  {Config{APIKeys: []APIKey{{Name: "a", Key: key1}, {Name: "a", Key: key2}}}, "duplicate name"},
		"duplicate key":   {Config{APIKeys: []APIKey{{Name: "a", Key: key1}, {Name: "b", Key: key1}}}, "same key"},
		"bad key grant":   {Config{APIKeys: []APIKey{{Name: "a", Key: key1, Grants: Grants{{ActionRead, "a//b"}}}}}, "empty segment"},
		"bad anon grant":  {Config{AnonymousGrants: Grants{{"steal", "x"}}}, "unknown action"},
		"negative leeway": {Config{Leeway: -time.Second}, "leeway"},
		"huge leeway":     {Config{Leeway: time.Hour}, "leeway"},
		"missing jwks":    {Config{JWKSFile: "/nonexistent/jwks.json"}, "JWKS"},
	}
	for name, tt := range tests {
		_, err := New(tt.cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want error containing %q", name, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), key1) || strings.Contains(err.Error(), key2) || strings.Contains(err.Error(), "shortkey") {
			t.Errorf("%s: error leaks a key: %v", name, err)
		}
	}
}

func TestRedaction(t *testing.T) {
	secret := "hs256-secret-hs256-secret-hs256-secret"
	cfg := Config{APIKeys: testAPIKeys(), HS256Secret: []byte(secret), Audience: "tandem", AnonymousGrants: Grants{MustParseGrant("read:x")}}
	a := newTestAuth(t, cfg)
	secrets := []string{key1, key2, secret}
	secretB64 := []string{}
	for _, s := range secrets {
		b, _ := json.Marshal([]byte(s))
		secretB64 = append(secretB64, strings.Trim(string(b), `"`))
	}

	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		log := slog.New(h)
		log.Info("config", "cfg", cfg)
		log.Info("config ptr", "cfg", &cfg)
		log.Info("key", "key", cfg.APIKeys[0])
		log.Info("keys", "keys", cfg.APIKeys)
		log.Info("auth", "auth", a)
		p, _ := a.Authenticate(key1)
		log.Info("principal", "principal", p)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		fmt.Fprintf(&buf, verb+"\n", cfg)
		fmt.Fprintf(&buf, verb+"\n", &cfg)
		fmt.Fprintf(&buf, verb+"\n", cfg.APIKeys)
		fmt.Fprintf(&buf, verb+"\n", cfg.APIKeys[0])
		fmt.Fprintf(&buf, verb+"\n", a)
	}
	for _, v := range []any{cfg, cfg.APIKeys, cfg.APIKeys[0]} {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
	}
	out := buf.String()
	for _, s := range append(secrets, secretB64...) {
		if strings.Contains(out, s) {
			t.Errorf("output contains secret %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "billing") || !strings.Contains(out, redacted) {
		t.Errorf("output lacks the key name or the redaction marker:\n%s", out)
	}
}
