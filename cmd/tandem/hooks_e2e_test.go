package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/specval"
	tandem "github.com/tandemhq/tandem/sdk/go"
)

const testHookSecret = "whsec_aG9vay1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZi14eXo="

// hookApp is the application in the test: a real HTTP server that checks
// every call's signature and body against spec/openapi.yaml and answers
// per path.
type hookApp struct {
	t    *testing.T
	srv  *httptest.Server
	spec *specval.OpenAPI

	mu    sync.Mutex
	calls map[string]int
	// release unblocks the /slow handler (closed at cleanup).
	release chan struct{}
}

var hookRequestSchema = map[string]string{"connect": "ConnectHookRequest", "subscribe": "SubscribeHookRequest", "publish": "PublishHookRequest", "rpc": "RpcHookRequest"}

func newHookApp(t *testing.T) *hookApp {
	t.Helper()
	spec, err := specval.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	h := &hookApp{t: t, spec: spec, calls: map[string]int{}, release: make(chan struct{})}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(func() { close(h.release); h.srv.Close() })
	return h
}

func (h *hookApp) url(path string) string { return h.srv.URL + path }

func (h *hookApp) count(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls[path]
}

// answer writes v as the hook's 200 answer, checked against its schema.
func (h *hookApp) answer(w http.ResponseWriter, schema string, v any) {
	b, _ := json.Marshal(v)
	if err := h.spec.ValidateSchema(schema, b); err != nil {
		h.t.Errorf("the test's own %s violates the spec: %v", schema, err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

func (h *hookApp) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.calls[r.URL.Path]++
	h.mu.Unlock()
	if err := tandem.VerifyWebhook(testHookSecret, r.Header, body); err != nil {
		h.t.Errorf("hook call %s: signature: %v", r.URL.Path, err)
	}
	var req struct {
		Hook      string `json:"hook"`
		Principal struct {
			Subject string         `json:"subject"`
			Claims  map[string]any `json:"claims"`
		} `json:"principal"`
		Client struct {
			ConnectionID string `json:"connectionId"`
			Remote       string `json:"remoteAddress"`
		} `json:"client"`
		Topic  string          `json:"topic"`
		Method string          `json:"method"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		h.t.Errorf("hook body: %v", err)
	}
	if !strings.HasPrefix(req.Client.Remote, "127.0.0.1:") {
		h.t.Errorf("hook call %s names the client %q, want its loopback address", r.URL.Path, req.Client.Remote)
	}
	if schema := hookRequestSchema[req.Hook]; schema == "" {
		h.t.Errorf("hook call without a known hook: %s", body)
	} else if err := h.spec.ValidateSchema(schema, body); err != nil {
		h.t.Errorf("hook call violates %s: %v\n%s", schema, err, body)
	}
	switch r.URL.Path {
	case "/connect":
		switch req.Principal.Subject {
		case "mallory":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = w.Write([]byte(`{"title":"banned","detail":"mallory is banned from this server"}`))
		case "alice":
			h.answer(w, "ConnectHookResponse", map[string]any{
				"grants": []string{"publish:channels/vip:room/messages", "read:channels/vip:room/**", "read:channels/vip:other/**"},
				"meta":   map[string]any{"name": "Alice", "plan": req.Principal.Claims["plan"]},
			})
		default:
			h.answer(w, "ConnectHookResponse", map[string]any{})
		}
	case "/subscribe":
		if strings.Contains(req.Topic, "secret") {
			h.answer(w, "SubscribeHookResponse", map[string]any{"problem": map[string]any{"status": 403, "title": "not for you"}})
			return
		}
		h.answer(w, "SubscribeHookResponse", map[string]any{})
	case "/publish":
		var msg map[string]any
		_ = json.Unmarshal(req.Data, &msg)
		text, _ := msg["text"].(string)
		if strings.Contains(strings.ToLower(text), "darn") {
			h.answer(w, "PublishHookResponse", map[string]any{"problem": map[string]any{"status": 422, "title": "profanity", "detail": "mind your language"}})
			return
		}
		msg["serverTime"] = "2026-12-02T10:00:00Z"
		msg["by"] = req.Principal.Subject
		h.answer(w, "PublishHookResponse", map[string]any{"data": msg})
	case "/rpc":
		h.rpc(w, req.Method, req.Data)
	case "/slow":
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	case "/drip": // headers and the start of a body, then nothing
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":`))
		w.(http.Flusher).Flush()
		select {
		case <-h.release:
		case <-r.Context().Done():
		}
	case "/fail":
		http.Error(w, "boom", http.StatusInternalServerError)
	case "/badjson":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data": nope`))
	case "/huge":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":"` + strings.Repeat("x", 3<<20) + `"}`))
	default:
		http.NotFound(w, r)
	}
}

// rpc is a tiny game: moves must go to an empty square of a 3×3 board.
func (h *hookApp) rpc(w http.ResponseWriter, method string, data json.RawMessage) {
	var mv struct {
		Square int `json:"square"`
	}
	_ = json.Unmarshal(data, &mv)
	switch {
	case method == "game:move" && mv.Square >= 0 && mv.Square < 9:
		h.answer(w, "RpcHookResponse", map[string]any{"data": map[string]any{"accepted": true, "square": mv.Square}})
	case method == "game:move":
		h.answer(w, "RpcHookResponse", map[string]any{"problem": map[string]any{"status": 422, "title": "illegal move", "detail": fmt.Sprintf("square %d is off the board", mv.Square)}})
	default:
		// "data": null, which the schema cannot say (OpenAPI 3.0): the
		// server takes it as no data, a null result.
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"data":null}`))
	}
}

// sdkConnect connects the Go SDK to s (closed at cleanup).
func sdkConnect(t *testing.T, s *testServer, opts ...tandem.Option) *tandem.Conn {
	t.Helper()
	sc, err := tandem.New(s.URL, opts...)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := sc.Connect(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// hookArgs are the flags every hook test needs.
func hookArgs(extra ...string) []string {
	return append([]string{"--hook-secret", testHookSecret, "--hook-allow-private"}, extra...)
}

func TestHookChatRoom(t *testing.T) {
	h := newHookApp(t)
	s := startServer(t, hookArgs("--hook-publish", h.url("/publish"))...)
	const topic = "channels/chat:lobby/messages"
	sub := s.dial(t)
	sub.subscribe(topic, nil)
	pub := s.dial(t)

	r := pub.request(map[string]any{"type": "publish", "topic": topic, "data": map[string]any{"text": "hello"}})
	if r["ok"] != true {
		t.Fatalf("publish: %v", r)
	}
	stamped := r["body"].(map[string]any)["data"].(map[string]any)
	if stamped["serverTime"] != "2026-12-02T10:00:00Z" || stamped["text"] != "hello" {
		t.Fatalf("the reply's message is not the hook's: %v", stamped)
	}
	ev := sub.nextOfType("event", 5*time.Second)
	if got := ev["message"].(map[string]any)["data"].(map[string]any); got["serverTime"] == nil {
		t.Fatalf("subscriber got the unstamped data: %v", got)
	}

	r = pub.request(map[string]any{"type": "publish", "topic": topic, "data": map[string]any{"text": "oh darn"}})
	p, _ := r["problem"].(map[string]any)
	if r["ok"] != false || p["status"] != float64(422) || p["title"] != "profanity" || p["type"] != "https://tandem.dev/problems/denied" {
		t.Fatalf("profanity over WebSocket: %v", r)
	}

	// REST publish goes through the same hook.
	resp, body := s.do(t, "POST", "/v1/channels/chat:lobby/messages", "application/json", `{"data":{"text":"DARN it"}}`)
	if resp.StatusCode != 422 || body["title"] != "profanity" {
		t.Fatalf("profanity over REST: %d %v", resp.StatusCode, body)
	}
	resp, body = s.do(t, "POST", "/v1/channels/chat:lobby/messages", "application/json", `{"data":{"text":"hi from REST"}}`)
	if resp.StatusCode != 201 || body["data"].(map[string]any)["serverTime"] == nil {
		t.Fatalf("REST publish: %d %v", resp.StatusCode, body)
	}
	ev = sub.nextOfType("event", 5*time.Second)
	if got := ev["message"].(map[string]any)["data"].(map[string]any); got["text"] != "hi from REST" || got["serverTime"] == nil {
		t.Fatalf("second event: %v", got)
	}
	// Nothing of the refused messages reached the history.
	resp, body = s.do(t, "GET", "/v1/channels/chat:lobby/messages", "", "")
	if items := body["items"].([]any); resp.StatusCode != 200 || len(items) != 2 {
		t.Fatalf("history: %d %v", resp.StatusCode, body)
	}
}

func TestHookConnectGrantsAndSubscribe(t *testing.T) {
	h := newHookApp(t)
	s := startAuthServer(t, hookArgs("--hook-connect", h.url("/connect"), "--hook-subscribe", h.url("/subscribe"))...)
	bearer := func(sub string) http.Header {
		tok := mintTestClaims(t, sub, "read:channels/chat:x/** read:channels/chat:secret/** publish:channels/chat:x/messages", map[string]any{"plan": "gold"})
		return http.Header{"Authorization": {"Bearer " + tok}}
	}
	// The hook's grants: alice may use vip: channels her token does not name.
	alice := s.dialHeader(t, bearer("alice"))
	alice.subscribe("channels/vip:room/messages", nil)
	if r := alice.request(map[string]any{"type": "publish", "topic": "channels/vip:room/messages", "data": 1}); r["ok"] != true {
		t.Fatalf("alice publishes with the hook's grant: %v", r)
	}
	// Its presence meta replaces the client's.
	watch := s.dialHeader(t, bearer("bob"))
	watch.subscribe("channels/chat:x/presence", nil)
	watch.nextOfType("presence", 5*time.Second)
	alice.subscribe("channels/chat:x/messages", map[string]any{"meta": map[string]any{"name": "fake"}})
	join := watch.nextOfType("presence", 5*time.Second)
	meta := join["members"].([]any)[0].(map[string]any)["connections"].([]any)[0].(map[string]any)["meta"].(map[string]any)
	if meta["name"] != "Alice" || meta["plan"] != "gold" {
		t.Fatalf("presence meta = %v, want the connect hook's", meta)
	}
	// bob has no such grant; the subscribe hook refuses secret topics.
	if r := watch.request(map[string]any{"type": "subscribe", "topic": "channels/vip:room/messages"}); r["ok"] != false {
		t.Fatalf("bob on vip: %v", r)
	}
	r := watch.request(map[string]any{"type": "subscribe", "topic": "channels/chat:secret/messages"})
	if p, _ := r["problem"].(map[string]any); r["ok"] != false || p["title"] != "not for you" || p["status"] != float64(403) {
		t.Fatalf("subscribe hook refusal: %v", r)
	}
	// SSE streams run the connect and subscribe hooks too.
	resp, body := s.do(t, "GET", "/v1/events?topic=channels/chat:secret/messages", "", "", "Authorization", bearer("bob").Get("Authorization"))
	if resp.StatusCode != 403 || body["title"] != "not for you" {
		t.Fatalf("SSE through the subscribe hook: %d %v", resp.StatusCode, body)
	}

	// mallory is refused at the upgrade with the hook's problem.
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/ws"
	_, hresp, err := websocket.DefaultDialer.Dial(url, bearer("mallory"))
	if err == nil || hresp == nil || hresp.StatusCode != 403 {
		t.Fatalf("mallory's upgrade: %v %v", err, hresp)
	}
	pb, _ := io.ReadAll(hresp.Body)
	if !bytes.Contains(pb, []byte("mallory is banned")) {
		t.Fatalf("upgrade refusal body: %s", pb)
	}
	// A connection that authenticates with a frame runs the hook then.
	anon := s.dial(t)
	r = anon.request(map[string]any{"type": "auth", "token": mintTestClaims(t, "mallory", "read:**", nil)})
	if p, _ := r["problem"].(map[string]any); r["ok"] != false || p["title"] != "banned" {
		t.Fatalf("mallory's auth frame: %v", r)
	}
	if r := anon.request(map[string]any{"type": "auth", "token": mintTestClaims(t, "alice", "read:channels/chat:x/**", nil)}); r["ok"] != true {
		t.Fatalf("alice's auth frame: %v", r)
	}
	anon.subscribe("channels/vip:other/messages", nil) // the hook's grant, kept across the auth frame
	// alice, bob, bob's SSE stream, mallory's upgrade, then the anonymous
	// connection's two auth frames (none at its upgrade: it had to
	// authenticate first).
	if n := h.count("/connect"); n != 6 {
		t.Errorf("connect hook calls = %d, want 6", n)
	}
}

// TestHookConnectAfterAnonymous: a connection the connect hook allowed
// as anonymous (anonymous grants) is judged again when it authenticates
// in-band, so a banned subject cannot get in that way.
func TestHookConnectAfterAnonymous(t *testing.T) {
	h := newHookApp(t)
	s := startAuthServer(t, hookArgs("--hook-connect", h.url("/connect"), "--anonymous-grants", "read:channels/lobby/messages")...)
	w := s.dial(t) // anonymous with grants: the hook runs at the upgrade
	waitUntil(t, 5*time.Second, "the connect hook to see the anonymous connection", func() bool { return h.count("/connect") == 1 })
	r := w.request(map[string]any{"type": "auth", "token": mintTestClaims(t, "mallory", "read:**", nil)})
	if p, _ := r["problem"].(map[string]any); r["ok"] != false || p["title"] != "banned" {
		t.Fatalf("mallory's auth frame after an anonymous start: %v", r)
	}
	if r := w.request(map[string]any{"type": "subscribe", "topic": "channels/other/messages"}); r["ok"] != false {
		t.Fatalf("the refused token's grants apply: %v", r)
	}
	if r := w.request(map[string]any{"type": "auth", "token": mintTestClaims(t, "alice", "read:channels/chat:x/**", nil)}); r["ok"] != true {
		t.Fatalf("alice: %v", r)
	}
	w.subscribe("channels/vip:room/messages", nil) // the hook's grant for alice
}

// mintTestClaims is mintTest with extra claims.
func mintTestClaims(t *testing.T, sub, scope string, extra map[string]any) string {
	t.Helper()
	claims := jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Add(-time.Minute).Unix(), "scope": scope, "aud": testAudience}
	for k, v := range extra {
		claims[k] = v
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(testJWTSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRPCGame(t *testing.T) {
	h := newHookApp(t)
	cfg := filepath.Join(t.TempDir(), "tandem.yaml")
	if err := os.WriteFile(cfg, []byte("namespaces:\n  game:\n    hook-rpc: "+h.url("/rpc")+"\n    rpc-methods: [game:move, game:resign]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, hookArgs("--config", cfg)...)
	w := s.dial(t)
	r := w.request(map[string]any{"type": "rpc", "method": "game:move", "data": map[string]any{"square": 4}})
	if body, _ := r["body"].(map[string]any); r["ok"] != true || body["data"].(map[string]any)["accepted"] != true {
		t.Fatalf("legal move: %v", r)
	}
	r = w.request(map[string]any{"type": "rpc", "method": "game:move", "data": map[string]any{"square": 12}})
	if p, _ := r["problem"].(map[string]any); r["ok"] != false || p["status"] != float64(422) || p["title"] != "illegal move" {
		t.Fatalf("illegal move: %v", r)
	}
	r = w.request(map[string]any{"type": "rpc", "method": "game:resign"})
	if body, _ := r["body"].(map[string]any); r["ok"] != true || body["data"] != nil {
		t.Fatalf("resign (null result): %v", r)
	}
	for _, m := range []string{"game:cheat", "chess:move"} {
		r = w.request(map[string]any{"type": "rpc", "method": m})
		if p, _ := r["problem"].(map[string]any); r["ok"] != false || p["status"] != float64(404) {
			t.Fatalf("%s: %v", m, r)
		}
	}
	// The Go SDK against the real server.
	conn := sdkConnect(t, s)
	res, err := conn.RPC(t.Context(), "game:move", map[string]any{"square": 8})
	if err != nil || !strings.Contains(string(res), `"accepted":true`) {
		t.Fatalf("SDK RPC: %s %v", res, err)
	}
	var pe *tandem.ProblemError
	if _, err := conn.RPC(t.Context(), "game:move", map[string]any{"square": -1}); !errors.As(err, &pe) || pe.Problem.Status != 422 {
		t.Fatalf("SDK RPC of an illegal move: %v", err)
	}
	// Many RPCs in flight on one connection: each reply has its ref.
	refs := map[string]bool{}
	for i := range 20 {
		refs[w.send(map[string]any{"type": "rpc", "method": "game:move", "data": map[string]any{"square": i % 9}})] = true
	}
	for len(refs) > 0 {
		f := w.nextOfType("reply", 10*time.Second)
		if f["ok"] != true || !refs[f["ref"].(string)] {
			t.Fatalf("rpc reply %v", f)
		}
		delete(refs, f["ref"].(string))
	}
}

func TestHookOutage(t *testing.T) {
	h := newHookApp(t)
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	unreachable := "http://" + closed.Addr().String() + "/publish"
	closed.Close()
	cases := []struct {
		name, url string
		detail    string
	}{
		{"Timeout", h.url("/slow"), "timed out after 300ms"},
		{"SlowBody", h.url("/drip"), "timed out after 300ms"},
		{"Status500", h.url("/fail"), "answered 500"},
		{"InvalidJSON", h.url("/badjson"), "not JSON"},
		{"ThreeMegabytes", h.url("/huge"), "more than 1048576 bytes"},
		{"Unreachable", unreachable, "connection refused"},
	}
	for _, tc := range cases {
		for _, mode := range []string{"deny", "allow"} {
			t.Run(tc.name+"/"+mode, func(t *testing.T) {
				s := startServer(t, hookArgs("--hook-publish", tc.url, "--hook-timeout", "300ms", "--hook-on-error", mode)...)
				w := s.dial(t)
				start := time.Now()
				r := w.request(map[string]any{"type": "publish", "topic": "channels/x/messages", "data": map[string]any{"n": 1}})
				if took := time.Since(start); took > 5*time.Second {
					t.Errorf("the publish took %v: a failed hook must answer within its timeout", took)
				}
				p, _ := r["problem"].(map[string]any)
				switch mode {
				case "deny":
					detail, _ := p["detail"].(string)
					if r["ok"] != false || p["status"] != float64(503) || p["type"] != "https://tandem.dev/problems/hook-unavailable" || !strings.Contains(detail, tc.detail) {
						t.Fatalf("deny: %v (want a detail with %q)", r, tc.detail)
					}
					resp, body := s.do(t, "POST", "/v1/channels/x/messages", "application/json", `{"data":2}`)
					if resp.StatusCode != 503 || body["type"] != "https://tandem.dev/problems/hook-unavailable" {
						t.Fatalf("REST deny: %d %v", resp.StatusCode, body)
					}
				case "allow":
					if r["ok"] != true {
						t.Fatalf("allow: %v", r)
					}
				}
			})
		}
	}
}

func TestHookOverloadDoesNotBlockOthers(t *testing.T) {
	h := newHookApp(t)
	s := startServer(t, hookArgs("--hook-publish", h.url("/slow"), "--hook-timeout", "30s", "--hook-max-concurrent", "1", "--hook-max-queued", "0")...)
	a, c := s.dial(t), s.dial(t)
	a.send(map[string]any{"type": "publish", "topic": "channels/x/messages", "data": 1})
	waitUntil(t, 10*time.Second, "the first call to reach the hook", func() bool { return h.count("/slow") == 1 })
	// c's publish finds the one slot taken and no room to wait: 503 at
	// once, while a's call hangs.
	r := c.request(map[string]any{"type": "publish", "topic": "channels/x/messages", "data": 3})
	if p, _ := r["problem"].(map[string]any); r["ok"] != false || p["status"] != float64(503) || !strings.Contains(fmt.Sprint(p["detail"]), "overloaded") {
		t.Fatalf("publish to a full hook: %v", r)
	}
	// Other work goes on: c's frames, a new connection's subscribe, REST.
	if r := c.request(map[string]any{"type": "ping"}); r["ok"] != true {
		t.Fatalf("ping while the hook is stuck: %v", r)
	}
	other := s.dial(t)
	other.subscribe("channels/y/messages", nil)
	if resp, _ := s.do(t, "GET", "/v1/channels/y/messages", "", ""); resp.StatusCode != 200 {
		t.Fatalf("history while the hook is stuck: %d", resp.StatusCode)
	}
	if m := scrape(t, s); !strings.Contains(m, `tandem_hook_calls_total{hook="publish",result="overloaded"} 1`) {
		t.Errorf("metrics lack the overloaded call:\n%s", grepLines(m, "tandem_hook"))
	}
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// scrape returns the server's /metrics text.
func scrape(t *testing.T, s *testServer) string {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
