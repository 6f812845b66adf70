package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
)

const (
	testJWTSecret = "s3cret-s3cret-s3cret-s3cret-0123456789"
	testAudience  = "tandem-test"
	testAdminKey  = "adminkey-0123456789abcdef"
	testReaderKey = "readerkey-0123456789abcdef"
)

// mintTest makes an HS256 JWT with the given claims tweaks.
func mintTest(t *testing.T, sub string, scope string, exp time.Time, aud string) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "exp": exp.Unix(), "iat": time.Now().Add(-time.Minute).Unix(), "scope": scope}
	if aud != "" {
		claims["aud"] = aud
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startAuthServer runs a server with JWT (HS256, audience) and API keys.
func startAuthServer(t *testing.T, extra ...string) *testServer {
	t.Helper()
	keys := filepath.Join(t.TempDir(), "keys.yaml")
	err := os.WriteFile(keys, []byte(`keys:
  - name: admin
    key: `+testAdminKey+`
    grants: ["admin:**", "write:**", "read:**", "publish:**"]
  - name: reader
    key: `+testReaderKey+`
    grants: ["read:collections/**"]
`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--jwt-secret", testJWTSecret, "--jwt-audience", testAudience, "--jwt-leeway", "0s", "--api-keys-file", keys}, extra...)
	return startServer(t, args...)
}

// credential is one column of the matrix.
type credential struct {
	name   string
	header func(grant string) http.Header
	status int    // expected HTTP status when not allowed
	ptype  string // expected problem type slug
}

func credentials(t *testing.T) []credential {
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	return []credential{
		{"NoToken", func(string) http.Header { return http.Header{} }, 401, "unauthenticated"},
		{"Expired", func(g string) http.Header {
			return bearer(mintTest(t, "alice", g, time.Now().Add(-time.Minute), testAudience))
		}, 401, "invalid-token"},
		{"WrongAudience", func(g string) http.Header {
			return bearer(mintTest(t, "alice", g, time.Now().Add(time.Hour), "someone-else"))
		}, 401, "invalid-token"},
		{"MissingGrant", func(string) http.Header {
			return bearer(mintTest(t, "alice", "read:channels/elsewhere/messages", time.Now().Add(time.Hour), testAudience))
		}, 403, "insufficient-scope"},
		{"RightGrant", func(g string) http.Header {
			return bearer(mintTest(t, "alice", g, time.Now().Add(time.Hour), testAudience))
		}, 0, ""},
	}
}

// TestAuthMatrix checks every REST endpoint and WebSocket frame kind
// against no token, an expired token, a wrong audience, a token lacking
// the grant and one holding exactly the needed grant.
func TestAuthMatrix(t *testing.T) {
	s := startAuthServer(t)
	admin := []string{"X-API-Key", testAdminKey}
	mustDo := func(method, path, ct, body string, want int) {
		t.Helper()
		resp, p := s.do(t, method, path, ct, body, admin...)
		if resp.StatusCode != want {
			t.Fatalf("setup %s %s: %d %v", method, path, resp.StatusCode, p)
		}
	}
	mustDo("POST", "/v1/collections", "application/json", `{"name":"base"}`, 201)
	mustDo("PUT", "/v1/collections/base/resources/r1", "application/json", `{"data":{"n":1}}`, 201)

	type endpoint struct {
		name, method, path, ct, body, grant string
		ok                                  int
		setup                               func(cred string)
	}
	endpoints := []endpoint{
		{"listCollections", "GET", "/v1/collections", "", "", "read:collections", 200, nil},
		{"createCollection", "POST", "/v1/collections", "application/json", `{"name":"made-%s"}`, "admin:collections", 201, nil},
		{"getCollection", "GET", "/v1/collections/base", "", "", "read:collections/base", 200, nil},
		{"deleteCollection", "DELETE", "/v1/collections/tmp-%s", "", "", "admin:collections/*", 204, func(c string) {
			mustDo("POST", "/v1/collections", "application/json", `{"name":"tmp-`+c+`"}`, 201)
		}},
		{"listResources", "GET", "/v1/collections/base/resources", "", "", "read:collections/base/resources", 200, nil},
		{"createResource", "POST", "/v1/collections/base/resources", "application/json", `{"data":{}}`, "write:collections/base/resources", 201, nil},
		{"getResource", "GET", "/v1/collections/base/resources/r1", "", "", "read:collections/base/resources/r1", 200, nil},
		{"replaceResource", "PUT", "/v1/collections/base/resources/put-%s", "application/json", `{"data":{}}`, "write:collections/base/resources/*", 201, nil},
		{"patchResource", "PATCH", "/v1/collections/base/resources/r1", "application/merge-patch+json", `{"data":{"n":2}}`, "write:collections/base/resources/r1", 200, nil},
		{"deleteResource", "DELETE", "/v1/collections/base/resources/del-%s", "", "", "write:collections/base/**", 204, func(c string) {
			mustDo("PUT", "/v1/collections/base/resources/del-"+c, "application/json", `{"data":{}}`, 201)
		}},
		{"publishMessage", "POST", "/v1/channels/room/messages", "application/json", `{"data":{"text":"hi"}}`, "publish:channels/room/messages", 201, nil},
		{"channelHistory", "GET", "/v1/channels/room/messages", "", "", "read:channels/room/messages", 200, nil},
		{"channelPresence", "GET", "/v1/channels/room/presence", "", "", "read:channels/room/presence", 200, nil},
		{"pollChanges", "GET", "/v1/changes?topic=collections/base/resources&wait=0s", "", "", "read:collections/base/resources", 200, nil},
	}
	for _, cred := range credentials(t) {
		for _, ep := range endpoints {
			t.Run(ep.name+"/"+cred.name, func(t *testing.T) {
				if ep.setup != nil {
					ep.setup(strings.ToLower(cred.name))
				}
				path, body := ep.path, ep.body
				if strings.Contains(path, "%s") {
					path = fmt.Sprintf(path, strings.ToLower(cred.name))
				}
				if strings.Contains(body, "%s") {
					body = fmt.Sprintf(body, strings.ToLower(cred.name))
				}
				var hdr []string
				for k, v := range cred.header(ep.grant) {
					hdr = append(hdr, k, v[0])
				}
				resp, p := s.do(t, ep.method, path, ep.ct, body, hdr...)
				if cred.status == 0 {
					if resp.StatusCode != ep.ok {
						t.Fatalf("status %d, want %d: %v", resp.StatusCode, ep.ok, p)
					}
					return
				}
				checkAuthProblem(t, resp, p, cred.status, cred.ptype)
			})
		}
		t.Run("streamEvents/"+cred.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/events?topic=collections/base/resources", nil)
			req.Header = cred.header("read:collections/base/resources")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if cred.status == 0 {
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
					t.Fatalf("SSE: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
				}
				return
			}
			raw, _ := io.ReadAll(resp.Body)
			var p map[string]any
			_ = json.Unmarshal(raw, &p)
			checkAuthProblem(t, resp, p, cred.status, cred.ptype)
		})
		// WebSocket: credentials on the upgrade request.
		t.Run("ws-upgrade/"+cred.name, func(t *testing.T) {
			h := cred.header("read:collections/base/resources publish:channels/room/messages")
			if cred.ptype == "invalid-token" {
				c, resp, err := websocket.DefaultDialer.Dial(wsURL(s), h)
				if err == nil {
					c.Close()
					t.Fatal("upgrade with a rejected token succeeded")
				}
				if resp == nil || resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "invalid_token") {
					t.Fatalf("upgrade refusal: %v %v", err, resp)
				}
				return
			}
			ws := s.dialHeader(t, h)
			checkFrames(t, ws, cred)
		})
		// WebSocket: the same credentials in a first auth frame.
		if cred.name != "NoToken" {
			t.Run("ws-auth-frame/"+cred.name, func(t *testing.T) {
				tok := strings.TrimPrefix(cred.header("read:collections/base/resources publish:channels/room/messages").Get("Authorization"), "Bearer ")
				ws := s.dial(t)
				r := ws.request(map[string]any{"type": "auth", "token": tok})
				if cred.ptype == "invalid-token" {
					checkReplyProblem(t, r, 401, "invalid-token")
					return
				}
				if r["ok"] != true || r["body"].(map[string]any)["subject"] != "alice" {
					t.Fatalf("auth reply = %v", r)
				}
				checkFrames(t, ws, cred)
			})
		}
	}
}

// checkFrames sends a subscribe and a publish (which need grants) and an
// unsubscribe of nothing and a ping (which do not).
func checkFrames(t *testing.T, ws *wsClient, cred credential) {
	t.Helper()
	sub := ws.request(map[string]any{"type": "subscribe", "topic": "collections/base/resources"})
	pub := ws.request(map[string]any{"type": "publish", "topic": "channels/room/messages", "data": map[string]any{"x": 1}})
	if cred.status == 0 {
		if sub["ok"] != true || pub["ok"] != true {
			t.Fatalf("with the grant: subscribe %v / publish %v", sub, pub)
		}
	} else {
		checkReplyProblem(t, sub, cred.status, cred.ptype)
		checkReplyProblem(t, pub, cred.status, cred.ptype)
	}
	if r := ws.request(map[string]any{"type": "ping"}); r["ok"] != true {
		t.Fatalf("ping = %v", r)
	}
}

func checkReplyProblem(t *testing.T, r map[string]any, status int, slug string) {
	t.Helper()
	p, _ := r["problem"].(map[string]any)
	if r["ok"] != false || p == nil || p["status"] != float64(status) || p["type"] != "https://tandem.dev/problems/"+slug {
		t.Fatalf("want a %d %s problem, got %v", status, slug, r)
	}
}

func checkAuthProblem(t *testing.T, resp *http.Response, p map[string]any, status int, slug string) {
	t.Helper()
	if resp.StatusCode != status || p["type"] != "https://tandem.dev/problems/"+slug {
		t.Fatalf("status %d, want %d %s: %v", resp.StatusCode, status, slug, p)
	}
	wa := resp.Header.Get("WWW-Authenticate")
	want := map[string]string{"unauthenticated": `Bearer realm="tandem"`, "invalid-token": `error="invalid_token"`, "insufficient-scope": `error="insufficient_scope"`}[slug]
	if !strings.Contains(wa, want) {
		t.Fatalf("WWW-Authenticate = %q, want it to contain %q", wa, want)
	}
}

func wsURL(s *testServer) string { return "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/ws" }

// TestAuthWebSocketLifecycle: subprotocol auth, in-band refresh that
// narrows grants (the lost subscription ends, nothing more is delivered),
// refusal of a subject change, expiry close 4001 and the auth deadline 4010.
func TestAuthWebSocketLifecycle(t *testing.T) {
	s := startAuthServer(t, "--auth-timeout", "300ms")
	admin := []string{"X-API-Key", testAdminKey}
	s.do(t, "POST", "/v1/collections", "application/json", `{"name":"a"}`, admin...)
	s.do(t, "POST", "/v1/collections", "application/json", `{"name":"b"}`, admin...)
	write := func(coll, id string) {
		t.Helper()
		if resp, p := s.do(t, "PUT", "/v1/collections/"+coll+"/resources/"+id, "application/json", `{"data":{}}`, admin...); resp.StatusCode >= 300 {
			t.Fatalf("write: %d %v", resp.StatusCode, p)
		}
	}

	t.Run("Subprotocol", func(t *testing.T) {
		tok := mintTest(t, "alice", "read:collections/**", time.Now().Add(time.Hour), testAudience)
		d := websocket.Dialer{Subprotocols: []string{"tandem.v1", "bearer." + tok}}
		c, resp, err := d.Dial(wsURL(s), nil)
		if err != nil {
			t.Fatalf("dial: %v %v", err, resp)
		}
		defer c.Close()
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "tandem.v1" {
			t.Fatalf("selected subprotocol %q (the token must never be echoed)", got)
		}
		var welcome map[string]any
		_ = c.ReadJSON(&welcome)
		_ = c.WriteJSON(map[string]any{"type": "subscribe", "ref": "1", "topic": "collections/a/resources"})
		var reply map[string]any
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := c.ReadJSON(&reply); err != nil || reply["ok"] != true {
			t.Fatalf("subscribe with subprotocol auth: %v %v", reply, err)
		}
	})

	t.Run("RefreshNarrowsGrants", func(t *testing.T) {
		ws := s.dial(t)
		wide := mintTest(t, "bob", "read:collections/**", time.Now().Add(time.Hour), testAudience)
		if r := ws.request(map[string]any{"type": "auth", "token": wide}); r["ok"] != true {
			t.Fatalf("auth: %v", r)
		}
		ws.subscribe("collections/a/resources", nil)
		ws.subscribe("collections/b/resources", nil)
		write("a", "1")
		if ev := ws.nextOfType("event", 5*time.Second); ev["topic"] != "collections/a/resources" {
			t.Fatalf("event = %v", ev)
		}
		narrow := mintTest(t, "bob", "read:collections/b/**", time.Now().Add(time.Hour), testAudience)
		r := ws.request(map[string]any{"type": "auth", "token": narrow})
		if r["ok"] != true {
			t.Fatalf("refresh: %v", r)
		}
		// The pending frames: the subscription to a ends with a 403.
		var ended map[string]any
		for _, f := range ws.pending {
			if f["type"] == "error" {
				ended = f
			}
		}
		if ended == nil {
			ended = ws.nextOfType("error", 5*time.Second)
		} else {
			ws.pending = nil
		}
		if ended["topic"] != "collections/a/resources" || ended["problem"].(map[string]any)["status"] != float64(403) {
			t.Fatalf("revocation frame = %v", ended)
		}
		write("a", "2")
		write("b", "1")
		ev := ws.nextOfType("event", 5*time.Second)
		if ev["topic"] != "collections/b/resources" {
			t.Fatalf("after losing the grant, got %v", ev)
		}
		// A token of someone else cannot take over the connection.
		other := mintTest(t, "mallory", "read:**", time.Now().Add(time.Hour), testAudience)
		checkReplyProblem(t, ws.request(map[string]any{"type": "auth", "token": other}), 403, "insufficient-scope")
	})

	t.Run("ExpiryCloses4001", func(t *testing.T) {
		tok := mintTest(t, "carol", "read:collections/**", time.Now().Add(2*time.Second), testAudience)
		ws := s.dialHeader(t, http.Header{"Authorization": {"Bearer " + tok}})
		ws.subscribe("collections/a/resources", nil)
		if code := closeCode(ws.closeErr(10 * time.Second)); code != 4001 {
			t.Fatalf("close code %d, want 4001", code)
		}
	})

	t.Run("RefreshPostponesExpiry", func(t *testing.T) {
		tok := mintTest(t, "dave", "read:collections/**", time.Now().Add(2*time.Second), testAudience)
		ws := s.dialHeader(t, http.Header{"Authorization": {"Bearer " + tok}})
		fresh := mintTest(t, "dave", "read:collections/**", time.Now().Add(time.Hour), testAudience)
		if r := ws.request(map[string]any{"type": "auth", "token": fresh}); r["ok"] != true {
			t.Fatalf("refresh: %v", r)
		}
		ws.subscribe("collections/a/resources", nil)
		time.Sleep(3 * time.Second) // past the first token's expiry
		if r := ws.request(map[string]any{"type": "ping"}); r["ok"] != true {
			t.Fatalf("connection did not survive the refresh: %v", r)
		}
	})

	t.Run("AuthDeadline4010", func(t *testing.T) {
		ws := s.dial(t)
		if code := closeCode(ws.closeErr(10 * time.Second)); code != 4010 {
			t.Fatalf("close code %d, want 4010", code)
		}
	})
}

// TestAuthAnonymousGrantsAndCookie: anonymous callers get exactly the
// configured grants; EventSource can authenticate with the cookie.
func TestAuthAnonymousGrantsAndCookie(t *testing.T) {
	s := startAuthServer(t, "--anonymous-grants", "read:channels/public.news/messages", "--auth-cookie", "tandem_token")
	if resp, p := s.do(t, "GET", "/v1/channels/public.news/messages", "", ""); resp.StatusCode != 200 {
		t.Fatalf("anonymous read of a public channel: %d %v", resp.StatusCode, p)
	}
	resp, p := s.do(t, "POST", "/v1/channels/public.news/messages", "application/json", `{"data":1}`)
	checkAuthProblem(t, resp, p, 401, "unauthenticated")
	// The cookie works for the event stream, never for mutations.
	tok := mintTest(t, "erin", "read:** publish:**", time.Now().Add(time.Hour), testAudience)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/events?topic="+url.QueryEscape("channels/private/messages"), nil)
	req.AddCookie(&http.Cookie{Name: "tandem_token", Value: tok})
	sresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	sresp.Body.Close()
	if sresp.StatusCode != 200 {
		t.Fatalf("SSE with cookie: %d", sresp.StatusCode)
	}
	preq, _ := http.NewRequest("POST", s.URL+"/v1/channels/private/messages", strings.NewReader(`{"data":1}`))
	preq.Header.Set("Content-Type", "application/json")
	preq.AddCookie(&http.Cookie{Name: "tandem_token", Value: tok})
	presp, err := s.HTTP.Do(preq)
	if err != nil {
		t.Fatal(err)
	}
	presp.Body.Close()
	if presp.StatusCode != 401 {
		t.Fatalf("cookie accepted for a mutation: %d", presp.StatusCode)
	}
}

// TestCrossOriginWebSocketRefused: a browser on another origin cannot open
// a WebSocket unless its origin is allowed.
func TestCrossOriginWebSocketRefused(t *testing.T) {
	s := startServer(t, "--allowed-origins", "https://app.example")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"https://evil.example", false},
		{"null", false},
		{"https://app.example", true},
		{s.URL, true}, // same origin
		{"", true},    // not a browser
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, resp, err := websocket.DefaultDialer.Dial(wsURL(s), h)
		if c != nil {
			c.Close()
		}
		if tc.ok != (err == nil) {
			t.Errorf("origin %q: err=%v resp=%v", tc.origin, err, resp)
		}
		if !tc.ok && resp != nil && resp.StatusCode != 403 {
			t.Errorf("origin %q: status %d, want 403", tc.origin, resp.StatusCode)
		}
	}
}

// TestSecretsNeverLogged: secrets, keys and tokens never reach the log,
// even at debug level and on failures.
func TestSecretsNeverLogged(t *testing.T) {
	s := startAuthServer(t, "--log-level", "debug")
	tok := mintTest(t, "alice", "read:**", time.Now().Add(time.Hour), testAudience)
	bad := mintTest(t, "alice", "read:**", time.Now().Add(-time.Hour), testAudience)
	s.do(t, "GET", "/v1/collections", "", "", "Authorization", "Bearer "+tok)
	s.do(t, "GET", "/v1/collections", "", "", "Authorization", "Bearer "+bad)
	s.do(t, "GET", "/v1/collections", "", "", "X-API-Key", testAdminKey)
	s.do(t, "GET", "/v1/collections", "", "", "X-API-Key", "wrong-key-0123456789")
	ws := s.dial(t)
	ws.request(map[string]any{"type": "auth", "token": bad})
	ws.request(map[string]any{"type": "auth", "token": tok})
	s.stop()
	logs := s.Logs.String()
	for _, secret := range []string{testJWTSecret, testAdminKey, testReaderKey, tok, bad, "wrong-key-0123456789"} {
		if strings.Contains(logs, secret) {
			t.Errorf("log contains a secret %q…", secret[:8])
		}
	}
	// A bad keys file is reported without the keys it holds.
	keys := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(keys, []byte("keys:\n  - name: x\n    key: "+testAdminKey+"\n    grants: [\"nonsense\"]\n  - oops: "+testReaderKey+"\n"), 0o600)
	var stderr strings.Builder
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--api-keys-file", keys}, func(string) string { return "" }, io.Discard, &stderr)
	if err == nil {
		t.Fatal("a bad keys file was accepted")
	}
	if msg := err.Error() + stderr.String(); strings.Contains(msg, testAdminKey) || strings.Contains(msg, testReaderKey) {
		t.Errorf("error reveals a key: %s", msg)
	}
}

// TestTokenCommand: `tandem token` mints a JWT the server accepts.
func TestTokenCommand(t *testing.T) {
	var out, errOut strings.Builder
	env := func(k string) string {
		if k == "TANDEM_JWT_SECRET" {
			return testJWTSecret
		}
		return ""
	}
	if err := run(context.Background(), []string{"token", "--sub", "zoe", "--grant", "read:collections read:collections/**", "--aud", testAudience}, env, &out, &errOut); err != nil {
		t.Fatalf("token: %v %s", err, errOut.String())
	}
	s := startAuthServer(t)
	tok := strings.TrimSpace(out.String())
	if resp, p := s.do(t, "GET", "/v1/collections", "", "", "Authorization", "Bearer "+tok); resp.StatusCode != 200 {
		t.Fatalf("minted token refused: %d %v", resp.StatusCode, p)
	}
	if resp, p := s.do(t, "POST", "/v1/collections", "application/json", `{"name":"z"}`, "Authorization", "Bearer "+tok); resp.StatusCode != 403 {
		t.Fatalf("minted token exceeded its grants: %d %v", resp.StatusCode, p)
	}
	if err := run(context.Background(), []string{"token", "--sub", "zoe", "--grant", "bogus"}, env, &out, &errOut); err == nil {
		t.Fatal("a bad grant was accepted")
	}
	if err := run(context.Background(), []string{"token", "--sub", "zoe"}, func(string) string { return "" }, &out, &errOut); err == nil {
		t.Fatal("minted without a secret")
	}
}
