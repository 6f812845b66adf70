package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/specval"
)

// TestCaps checks the per-client caps end to end on a server with small
// ones: connections per client IP (WebSocket, SSE and long-poll together),
// subscriptions per principal across its connections (per IP when
// anonymous), and subscriptions server-wide. Clients use distinct loopback
// source addresses (127.0.0.x) to be distinct IPs. A control client on an
// address of its own keeps being served throughout, and at the end every
// slot has been given back exactly once (the cap gauges are back at their
// baseline: the control client's).
func TestCaps(t *testing.T) {
	const maxConns, maxPerPrincipal, maxSubs = 5, 20, 50
	s := startAuthServer(t, "--max-conns-per-ip", strconv.Itoa(maxConns),
		"--max-subscriptions-per-principal", strconv.Itoa(maxPerPrincipal), "--max-subscriptions", strconv.Itoa(maxSubs),
		"--anonymous-grants", "admin:** write:** read:**")
	s.mkcoll(t, "c")
	s.mkcoll(t, "control")
	v, err := specval.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(sub, scope string) http.Header {
		return http.Header{"Authorization": {"Bearer " + mintTest(t, sub, scope, time.Now().Add(time.Hour), testAudience)}}
	}
	topic := func(i int) string { return fmt.Sprintf("collections/c/resources/r%d", i) }
	subscribe := func(w *wsClient, i int) map[string]any {
		return w.request(map[string]any{"type": "subscribe", "topic": topic(i)})
	}

	// The control client: anonymous on 127.0.0.9, one subscription.
	ctl := s.dialWith(t, dialerFrom("127.0.0.9"), nil)
	ctl.subscribe("collections/control/resources", nil)
	n := 0
	control := func() {
		t.Helper()
		n++
		r := s.put(t, "control", "probe", fmt.Sprintf(`{"n":%d}`, n), nil)
		if got := eventRev(ctl.nextOfType("event", 10*time.Second)); got != r.Revision {
			t.Fatalf("control client got revision %d, want %d", got, r.Revision)
		}
	}
	base := capGauges(t, s)
	const (
		connsCap = "max-conns-per-ip"
		mineCap  = "max-subscriptions-per-principal"
		allCap   = "max-subscriptions"
	)

	// --- Connections per client IP.
	const ip = "127.0.0.1"
	var conns []*websocket.Conn
	for range maxConns {
		conns = append(conns, dialFrom(t, s, ip))
	}
	// The next WebSocket, SSE stream or long-poll from this IP is refused
	// before anything starts.
	checkCapHandshake(t, s, ip, 429, "rate-limited", connsCap, maxConns)
	checkCapGET(t, s, v, ip, nil, "/v1/events?topic="+url.QueryEscape(topic(0)), 429, "rate-limited", connsCap, maxConns)
	checkCapGET(t, s, v, ip, nil, "/v1/changes?wait=10ms&topic="+url.QueryEscape(topic(0)), 429, "rate-limited", connsCap, maxConns)
	// Another IP is not affected.
	other := s.dialWith(t, dialerFrom("127.0.0.2"), nil)
	if r := other.request(map[string]any{"type": "ping"}); r["ok"] != true {
		t.Fatalf("ping from another IP: %v", r)
	}
	other.c.Close()
	control()

	// Closing a connection frees its slot, which an SSE stream takes; the
	// stream counts as a WebSocket does, and ending it frees the slot.
	conns[0].Close()
	cancelSSE := openSSEWithin(t, s, ip, topic(0), 10*time.Second)
	checkCapHandshake(t, s, ip, 429, "rate-limited", connsCap, maxConns)
	cancelSSE()
	conns[0] = dialWithin(t, s, ip, 10*time.Second)

	// A long-poll holds a slot while it waits.
	conns[1].Close()
	waitGauge(t, s, connsCap, base[connsCap]+maxConns-1, 10*time.Second)
	pollDone := make(chan string, 1)
	go func() {
		resp, err := httpFrom(ip, nil, nil).Get(s.URL + "/v1/changes?wait=3s&topic=" + url.QueryEscape(topic(0)))
		if err != nil {
			pollDone <- err.Error()
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		pollDone <- resp.Status
	}()
	waitGauge(t, s, connsCap, base[connsCap]+maxConns, 10*time.Second)
	checkCapHandshake(t, s, ip, 429, "rate-limited", connsCap, maxConns)
	if st := <-pollDone; st != "200 OK" {
		t.Fatalf("long-poll: %s, want 200 OK after its wait", st)
	}
	conns[1] = dialWithin(t, s, ip, 10*time.Second)
	control()
	for _, c := range conns {
		c.Close()
	}
	waitGauge(t, s, connsCap, base[connsCap], 10*time.Second)

	// --- Subscriptions per principal: alice over two connections from
	// two IPs.
	alice := bearer("alice", "read:**")
	a1 := s.dialWith(t, dialerFrom("127.0.0.2"), alice)
	a2 := s.dialWith(t, dialerFrom("127.0.0.3"), alice)
	for i := range 15 {
		a1.subscribe(topic(i), nil)
	}
	for i := 15; i < maxPerPrincipal; i++ {
		a2.subscribe(topic(i), nil)
	}
	checkCapReply(t, subscribe(a2, 20), 429, "rate-limited", mineCap, maxPerPrincipal)
	checkCapReply(t, subscribe(a1, 21), 429, "rate-limited", mineCap, maxPerPrincipal)
	// An SSE topic counts against the same principal.
	checkCapGET(t, s, v, "127.0.0.4", alice, "/v1/events?topic="+url.QueryEscape(topic(22)), 429, "rate-limited", mineCap, maxPerPrincipal)
	// bob, on alice's IP, has his own count.
	bob := s.dialWith(t, dialerFrom("127.0.0.2"), bearer("bob", "read:**"))
	bob.subscribe(topic(0), nil)
	control()

	// Unsubscribing frees a slot, for any of alice's connections.
	if r := a1.request(map[string]any{"type": "unsubscribe", "topic": topic(0)}); r["ok"] != true {
		t.Fatalf("unsubscribe: %v", r)
	}
	a2.subscribe(topic(20), nil)
	checkCapReply(t, subscribe(a1, 0), 429, "rate-limited", mineCap, maxPerPrincipal)

	// A token refresh that revokes subscriptions frees their slots: a2
	// keeps r15 and loses r16..r20.
	r := a2.request(map[string]any{"type": "auth", "token": mintTest(t, "alice", "read:"+topic(15), time.Now().Add(time.Hour), testAudience)})
	if r["ok"] != true {
		t.Fatalf("refresh: %v", r)
	}
	revoked := 0
	for _, f := range a2.pending {
		if f["type"] == "error" {
			checkFrameStatus(t, f, 403)
			revoked++
		}
	}
	a2.pending = nil
	if revoked != 5 {
		t.Fatalf("the refresh revoked %d subscriptions, want 5", revoked)
	}
	for i := 30; i < 35; i++ {
		a1.subscribe(topic(i), nil)
	}
	checkCapReply(t, subscribe(a1, 35), 429, "rate-limited", mineCap, maxPerPrincipal)

	// Anonymous callers count per IP: two connections from 127.0.0.5
	// share one count; 127.0.0.6 has its own.
	n1 := s.dialWith(t, dialerFrom("127.0.0.5"), nil)
	n2 := s.dialWith(t, dialerFrom("127.0.0.5"), nil)
	for i := range maxPerPrincipal {
		[]*wsClient{n1, n2}[i%2].subscribe(topic(i), nil)
	}
	checkCapReply(t, subscribe(n2, 40), 429, "rate-limited", mineCap, maxPerPrincipal)
	n3 := s.dialWith(t, dialerFrom("127.0.0.6"), nil)
	n3.subscribe(topic(40), nil)
	control()
	// Held: the control client 1, alice 20, bob 1, 127.0.0.5 20, 127.0.0.6 1.
	const held = 43
	if g := capGauges(t, s); g[allCap] != held {
		t.Fatalf("server-wide subscriptions = %v, want %d", g[allCap], held)
	}

	// --- Subscriptions server-wide: beyond the cap, 503 (no client's
	// fault; another node may have room).
	carol := s.dialWith(t, dialerFrom("127.0.0.7"), bearer("carol", "read:**"))
	for i := range maxSubs - held {
		carol.subscribe(topic(i), nil)
	}
	checkCapReply(t, subscribe(carol, 10), 503, "unavailable", allCap, maxSubs)
	checkCapGET(t, s, v, "127.0.0.8", bearer("dave", "read:**"), "/v1/events?topic="+url.QueryEscape(topic(0)), 503, "unavailable", allCap, maxSubs)
	control()
	if r := carol.request(map[string]any{"type": "unsubscribe", "topic": topic(0)}); r["ok"] != true {
		t.Fatalf("unsubscribe: %v", r)
	}
	carol.subscribe(topic(10), nil)
	control()

	// Ending the connections gives every slot back, once: only the
	// control client's remain.
	for _, w := range []*wsClient{a1, a2, bob, n1, n2, n3, carol} {
		w.c.Close()
		<-w.closed
	}
	for limit, want := range base {
		waitGauge(t, s, limit, want, 20*time.Second)
	}
	control()
	logs := s.Logs.String()
	for _, bad := range []string{"level=ERROR", "panic"} {
		if strings.Contains(logs, bad) {
			t.Errorf("server logged %q:\n%s", bad, tail(logs, 4000))
		}
	}
}

// dialerFrom is a WebSocket dialer whose connections come from ip.
func dialerFrom(ip string) *websocket.Dialer {
	d := *websocket.DefaultDialer
	d.NetDialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}).DialContext
	return &d
}

// dialFrom opens a WebSocket from ip (closed at the end of the test).
func dialFrom(t *testing.T, s *testServer, ip string) *websocket.Conn {
	t.Helper()
	c, resp, err := dialerFrom(ip).Dial(wsURL(s), nil)
	if err != nil {
		t.Fatalf("WebSocket from %s: %v (%v)", ip, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialWithin opens a WebSocket from ip, retrying while the cap refuses it
// (a slot frees once the server has seen a connection go), for at most d.
func dialWithin(t *testing.T, s *testServer, ip string, d time.Duration) *websocket.Conn {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c, resp, err := dialerFrom(ip).Dial(wsURL(s), nil)
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("WebSocket from %s: %v (%v)", ip, err, resp)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpFrom is an HTTP client whose connections come from ip; with v, every
// response is validated against spec/openapi.yaml (not for streams: that
// reads the whole body) and a mismatch reported to fail.
func httpFrom(ip string, v *specval.OpenAPI, fail func(string, ...any)) *http.Client {
	var rt http.RoundTripper = &http.Transport{
		DialContext:       (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}).DialContext,
		DisableKeepAlives: true,
	}
	if v != nil {
		rt = v.RoundTripper(rt, fail)
	}
	return &http.Client{Transport: rt, Timeout: 30 * time.Second}
}

// openSSEWithin opens an SSE stream from ip, retrying while the cap
// refuses it, for at most d; the returned func ends the stream.
func openSSEWithin(t *testing.T, s *testServer, ip, topic string, d time.Duration) (cancel func()) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, stop := context.WithCancel(context.Background())
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/events?topic="+url.QueryEscape(topic), nil)
		resp, err := httpFrom(ip, nil, nil).Do(req)
		if err != nil {
			stop()
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			end := func() { stop(); resp.Body.Close() }
			t.Cleanup(end)
			return end
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		stop()
		if resp.StatusCode != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("SSE from %s: %d %s", ip, resp.StatusCode, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkCapHandshake checks that a WebSocket from ip is refused before the
// upgrade with a problem naming the limit and its value.
func checkCapHandshake(t *testing.T, s *testServer, ip string, status int, kind, limit string, max int) {
	t.Helper()
	c, resp, err := dialerFrom(ip).Dial(wsURL(s), nil)
	if err == nil {
		c.Close()
		t.Fatalf("WebSocket from %s accepted, want HTTP %d", ip, status)
	}
	if resp == nil || resp.StatusCode != status {
		t.Fatalf("WebSocket from %s: %v (%v), want HTTP %d", ip, err, resp, status)
	}
	b, _ := io.ReadAll(resp.Body)
	checkCapProblem(t, resp.Header, b, status, kind, limit, max)
}

// checkCapGET checks that GET path from ip (with headers h) gets the cap's
// problem, validated against spec/openapi.yaml.
func checkCapGET(t *testing.T, s *testServer, v *specval.OpenAPI, ip string, h http.Header, path string, status int, kind, limit string, max int) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	for k, vs := range h {
		req.Header[k] = vs
	}
	resp, err := httpFrom(ip, v, t.Errorf).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != status {
		t.Fatalf("GET %s from %s: %d %s, want %d", path, ip, resp.StatusCode, b, status)
	}
	checkCapProblem(t, resp.Header, b, status, kind, limit, max)
}

func checkCapProblem(t *testing.T, h http.Header, body []byte, status int, kind, limit string, max int) {
	t.Helper()
	if ct := h.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q: %s", ct, body)
	}
	if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 {
		t.Fatalf("Retry-After %q", h.Get("Retry-After"))
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatalf("problem %s: %v", body, err)
	}
	checkCapDetail(t, p, status, kind, limit, max)
}

// checkCapReply checks a subscribe reply refused by a cap.
func checkCapReply(t *testing.T, r map[string]any, status int, kind, limit string, max int) {
	t.Helper()
	checkFrameStatus(t, r, status)
	checkCapDetail(t, r["problem"].(map[string]any), status, kind, limit, max)
}

// checkCapDetail checks the problem's status and type, and that its
// detail names the limit and its value.
func checkCapDetail(t *testing.T, p map[string]any, status int, kind, limit string, max int) {
	t.Helper()
	detail, _ := p["detail"].(string)
	if p["status"] != float64(status) || p["type"] != "https://tandem.dev/problems/"+kind ||
		!strings.Contains(detail, limit) || !strings.Contains(detail, fmt.Sprintf("at most %d ", max)) {
		t.Fatalf("problem %v, want %d %s naming %s and %d", p, status, kind, limit, max)
	}
}

// capGauges scrapes tandem_cap_held by limit.
func capGauges(t *testing.T, s *testServer) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, line := range strings.Split(s.metrics(t), "\n") {
		rest, ok := strings.CutPrefix(line, `tandem_cap_held{limit="`)
		if !ok {
			continue
		}
		name, val, ok := strings.Cut(rest, `"} `)
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	if len(out) != 3 {
		t.Fatalf("tandem_cap_held by limit: %v", out)
	}
	return out
}

// waitGauge waits until tandem_cap_held{limit} is want, for at most d.
func waitGauge(t *testing.T, s *testServer, limit string, want float64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := capGauges(t, s)[limit]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem_cap_held{limit=%q} = %v, want %v", limit, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
