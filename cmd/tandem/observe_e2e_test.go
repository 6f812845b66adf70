package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// logLine is one parsed slog text line: its keys and their values.
type logLine map[string]string

// parseLogLines parses the slog text lines of logs (key=value, values
// quoted when they need it).
func parseLogLines(t *testing.T, logs string) []logLine {
	t.Helper()
	var out []logLine
	for _, raw := range strings.Split(logs, "\n") {
		if raw == "" {
			continue
		}
		l := logLine{}
		rest := raw
		for rest != "" {
			k, v, ok := strings.Cut(rest, "=")
			if !ok {
				t.Fatalf("log line %q: no key=value at %q", raw, rest)
			}
			if strings.HasPrefix(v, `"`) {
				q, err := strconv.QuotedPrefix(v)
				if err != nil {
					t.Fatalf("log line %q: bad quoted value: %v", raw, err)
				}
				l[k], _ = strconv.Unquote(q)
				rest = strings.TrimPrefix(v[len(q):], " ")
				continue
			}
			val, next, _ := strings.Cut(v, " ")
			l[k], rest = val, next
		}
		out = append(out, l)
	}
	return out
}

// waitLogLine polls s's logs until a line has every key=value of want,
// and returns it; it fails after 5 s.
func waitLogLine(t *testing.T, s *testServer, want map[string]string) logLine {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		for _, l := range parseLogLines(t, s.Logs.String()) {
			match := true
			for k, v := range want {
				if l[k] != v {
					match = false
					break
				}
			}
			if match {
				return l
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %v in:\n%s", want, s.Logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func wantNumber(t *testing.T, l logLine, key string, least float64) {
	t.Helper()
	f, err := strconv.ParseFloat(l[key], 64)
	if err != nil || f < least {
		t.Errorf("%s = %q in %v, want a number ≥ %v", key, l[key], l, least)
	}
}

// TestAccessLog: a request line per REST request (route template, status,
// bytes, subject, request id), an open and a close line per WebSocket and
// SSE stream, and problems naming the request id of their line.
func TestAccessLog(t *testing.T) {
	s := startAuthServer(t)
	admin := []string{"X-API-Key", testAdminKey}

	resp, _ := s.do(t, "POST", "/v1/collections", "application/json", `{"name":"logged"}`, append(admin, "X-Request-Id", "req-create")...)
	if resp.StatusCode != 201 {
		t.Fatalf("create collection: %d", resp.StatusCode)
	}
	l := waitLogLine(t, s, map[string]string{"msg": "request", "request_id": "req-create"})
	for k, v := range map[string]string{"level": "INFO", "method": "POST", "route": "/v1/collections", "status": "201", "subject": "admin"} {
		if l[k] != v {
			t.Errorf("create line: %s = %q, want %q (%v)", k, l[k], v, l)
		}
	}
	wantNumber(t, l, "bytes", 1)
	wantNumber(t, l, "duration_ms", 0)

	// A failing request: its problem names the request id its line has.
	resp, p := s.do(t, "GET", "/v1/collections/logged/resources/nope", "", "", append(admin, "X-Request-Id", "req-missing")...)
	if resp.StatusCode != 404 || p["requestId"] != "req-missing" || resp.Header.Get("X-Request-Id") != "req-missing" {
		t.Fatalf("missing resource: %d %v X-Request-Id %q", resp.StatusCode, p, resp.Header.Get("X-Request-Id"))
	}
	l = waitLogLine(t, s, map[string]string{"msg": "request", "request_id": "req-missing"})
	if l["route"] != "/v1/collections/{collection}/resources/{id}" || l["status"] != "404" || l["subject"] != "admin" {
		t.Errorf("404 line = %v", l)
	}
	// Anonymous and refused: the subject is empty, the problem still has the id.
	resp, p = s.do(t, "GET", "/v1/collections", "", "")
	if resp.StatusCode != 401 || p["requestId"] != resp.Header.Get("X-Request-Id") || p["requestId"] == nil {
		t.Fatalf("anonymous: %d %v X-Request-Id %q", resp.StatusCode, p, resp.Header.Get("X-Request-Id"))
	}
	l = waitLogLine(t, s, map[string]string{"msg": "request", "request_id": p["requestId"].(string)})
	if l["subject"] != "" || l["status"] != "401" {
		t.Errorf("anonymous line = %v", l)
	}

	// A WebSocket: an open line, then a close line with frames and code.
	ws := s.dialHeader(t, http.Header{"X-Api-Key": {testAdminKey}, "X-Request-Id": {"req-ws"}})
	open := waitLogLine(t, s, map[string]string{"msg": "stream open", "request_id": "req-ws"})
	if open["transport"] != "websocket" || open["route"] != "/v1/ws" || open["subject"] != "admin" {
		t.Errorf("websocket open line = %v", open)
	}
	ws.subscribe("collections/logged/resources", nil)
	if err := ws.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if code := closeCode(ws.closeErr(5 * time.Second)); code != websocket.CloseNormalClosure {
		t.Errorf("close code %d", code)
	}
	cl := waitLogLine(t, s, map[string]string{"msg": "stream close", "request_id": "req-ws"})
	if cl["transport"] != "websocket" || cl["close_code"] != "1000" || cl["subject"] != "admin" || cl["frames_in"] != "1" {
		t.Errorf("websocket close line = %v", cl)
	}
	wantNumber(t, cl, "frames_out", 2) // welcome and the subscribe reply
	wantNumber(t, cl, "duration_ms", 0)

	// An SSE stream: an open line, then a close line with the events written.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/events?topic=collections/logged/resources", nil)
	req.Header.Set("X-API-Key", testAdminKey)
	req.Header.Set("X-Request-Id", "req-sse")
	sse, err := http.DefaultClient.Do(req)
	if err != nil || sse.StatusCode != 200 {
		t.Fatalf("SSE: %v %v", err, sse)
	}
	if got := sse.Header.Get("X-Request-Id"); got != "req-sse" {
		t.Errorf("SSE X-Request-Id = %q", got)
	}
	waitLogLine(t, s, map[string]string{"msg": "stream open", "request_id": "req-sse", "transport": "sse", "route": "/v1/events", "subject": "admin"})
	resp, _ = s.do(t, "PUT", "/v1/collections/logged/resources/a", "application/json", `{"data":{}}`, admin...)
	if resp.StatusCode != 201 {
		t.Fatalf("put: %d", resp.StatusCode)
	}
	buf := make([]byte, 4096)
	var got strings.Builder
	for !strings.Contains(got.String(), `"event":"resource.created"`) {
		n, err := sse.Body.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("SSE read: %v after %q", err, got.String())
		}
	}
	cancel()
	sse.Body.Close()
	cl = waitLogLine(t, s, map[string]string{"msg": "stream close", "request_id": "req-sse"})
	if cl["transport"] != "sse" || cl["reason"] != "client-gone" || cl["frames_out"] != "1" || cl["close_code"] != "0" {
		t.Errorf("SSE close line = %v", cl)
	}
	// A stream has no request line of its own.
	for _, l := range parseLogLines(t, s.Logs.String()) {
		if l["msg"] == "request" && (l["request_id"] == "req-ws" || l["request_id"] == "req-sse") {
			t.Errorf("stream logged a request line too: %v", l)
		}
	}
}

// TestAccessLogOff: --access-log=false writes no access lines; request
// ids are still given.
func TestAccessLogOff(t *testing.T) {
	s := startServer(t, "--access-log=false")
	resp, _ := s.do(t, "GET", "/healthz", "", "", "X-Request-Id", "quiet")
	if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") != "quiet" {
		t.Fatalf("healthz: %d X-Request-Id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
	}
	ws := s.dial(t)
	ws.c.Close()
	ws.closeErr(5 * time.Second)
	// Were the access log on, the WebSocket's close line would be
	// written by the time /metrics shows no connection (it is logged
	// before the connection is released), and the healthz line long
	// before.
	waitMetrics(t, s, 5*time.Second, nil)
	for _, l := range parseLogLines(t, s.Logs.String()) {
		if l["msg"] == "request" || strings.HasPrefix(l["msg"], "stream ") {
			t.Errorf("access line with --access-log=false: %v", l)
		}
	}
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// TestRequestID: a sane X-Request-Id is kept and echoed, anything else is
// replaced by a fresh id; problems carry the id given.
func TestRequestID(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		name, in string
		keep     bool
	}{
		{"OK", "abc-123_XYZ.~:/", true},
		{"OKLongest", strings.Repeat("a", 128), true},
		{"None", "", false},
		{"TooLong", strings.Repeat("a", 129), false},
		{"Space", "a b", false},
		{"Tab", "a\tb", false}, // the one control character HTTP lets through
		{"NonASCII", "caf\u00e9", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.in != "" {
				hdr = []string{"X-Request-Id", tc.in}
			}
			resp, p := s.do(t, "GET", "/v1/collections/none", "", "", hdr...)
			if resp.StatusCode != 404 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			got := resp.Header.Get("X-Request-Id")
			problem, _ := p["requestId"].(string)
			if tc.keep && got != tc.in {
				t.Errorf("X-Request-Id = %q, want %q kept", got, tc.in)
			}
			if !tc.keep && !hexID.MatchString(got) {
				t.Errorf("X-Request-Id = %q, want a fresh 32-hex-digit id", got)
			}
			if problem != got {
				t.Errorf("problem requestId = %q, header %q", problem, got)
			}
		})
	}
}

// TestDebugAddr: --debug-addr serves pprof and /metrics on a loopback
// listener of its own (not on the API's); other addresses are refused.
func TestDebugAddr(t *testing.T) {
	s := startServer(t, "--debug-addr", "127.0.0.1:0")
	m := regexp.MustCompile(`msg="debug listening" addr=(\S+)`).FindStringSubmatch(s.Logs.String())
	if m == nil {
		t.Fatalf("no debug listening line:\n%s", s.Logs.String())
	}
	for _, tc := range []struct{ path, want string }{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile"},
		{"/debug/pprof/cmdline", "test."}, // the command line of this test binary
		{"/metrics", "tandem_hub_broadcasts_total"},
	} {
		resp, err := http.Get("http://" + m[1] + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), tc.want) {
			t.Errorf("debug %s: %d, want %q in %.200s", tc.path, resp.StatusCode, tc.want, b)
		}
	}
	// pprof is not on the API listener.
	resp, err := http.Get(s.URL + "/debug/pprof/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("API /debug/pprof/: %d, want 404", resp.StatusCode)
	}

	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:0", true}, {"[::1]:6060", true}, {"localhost:6060", true},
		{"0.0.0.0:6060", false}, {":6060", false}, {"192.0.2.1:6060", false}, {"[::]:6060", false}, {"nonsense", false},
	} {
		err := checkDebugAddr(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("checkDebugAddr(%q) = %v, want ok %v", tc.addr, err, tc.ok)
		}
	}
	var stderr syncBuffer
	err = run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", t.TempDir(), "--debug-addr", "0.0.0.0:0"}, func(string) string { return "" }, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "--debug-addr") || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("non-loopback --debug-addr: %v", err)
	}
}

// labelled returns the value of the sample name{labels} in a Prometheus
// text exposition (-1 when absent).
func labelled(text, sample string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return f
			}
		}
	}
	return -1
}

// waitSample scrapes /metrics until sample has want, failing after 5 s.
func waitSample(t *testing.T, s *testServer, sample string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got := labelled(string(b), sample)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", sample, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestStreamMetrics: SSE clients and their events, long-polls waiting and
// their answers, on /metrics.
func TestStreamMetrics(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "m")
	waitSample(t, s, "tandem_sse_clients", 0)
	st := s.sse(t, "topic=collections/m/resources", "")
	waitSample(t, s, "tandem_sse_clients", 1)
	s.put(t, "m", "a", `{}`, nil)
	st.next("event", 5*time.Second)
	waitSample(t, s, "tandem_sse_events_total", 1)
	st.close()
	waitSample(t, s, "tandem_sse_clients", 0)

	empty := s.poll(t, "collections/m/resources", "", "20ms")
	waitSample(t, s, `tandem_longpoll_responses_total{result="empty"}`, 1)
	done := make(chan int, 1)
	go func() { done <- len(s.poll(t, "collections/m/resources", empty.Cursor, "10s").Events) }()
	waitSample(t, s, "tandem_longpoll_waiting", 1)
	s.put(t, "m", "b", `{}`, nil)
	select {
	case n := <-done:
		if n != 1 {
			t.Fatalf("long-poll got %d events", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long-poll did not answer")
	}
	waitSample(t, s, "tandem_longpoll_waiting", 0)
	waitSample(t, s, `tandem_longpoll_responses_total{result="events"}`, 1)
	waitSample(t, s, "tandem_longpoll_events_total", 1)
}

// TestTracing: with a TracerProvider (the SDK's in-memory exporter), a
// REST create gets a server span named by its route template, a child of
// the client's traceparent, and its event's fan-out to a WebSocket
// subscriber gets a span linked to it.
func TestTracing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	s := startServerCtx(t, withTracerProvider(context.Background(), tp), func(string) string { return "" })
	s.mkcoll(t, "traced")
	ws := s.dial(t)
	ws.subscribe("collections/traced/resources", nil)

	const parentTrace, parentSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	resp, body := s.do(t, "POST", "/v1/collections/traced/resources", "application/json", `{"id":"r1","data":{"n":1}}`,
		"traceparent", "00-"+parentTrace+"-"+parentSpan+"-01")
	if resp.StatusCode != 201 {
		t.Fatalf("create: %d %v", resp.StatusCode, body)
	}
	ev := ws.nextOfType("event", 5*time.Second)
	if ev["event"] != "resource.created" {
		t.Fatalf("event = %v", ev)
	}
	rev := int64(body["revision"].(float64))

	// Spans end after the response and after the fan-out: wait for both.
	var server, fanout tracetest.SpanStub
	deadline := time.Now().Add(5 * time.Second)
	for server.Name == "" || fanout.Name == "" {
		for _, sp := range exp.GetSpans() {
			switch sp.Name {
			case "POST /v1/collections/{collection}/resources":
				server = sp
			case "fanout collections/traced/resources":
				fanout = sp
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("spans: server %q fanout %q among %v", server.Name, fanout.Name, spanNames(exp.GetSpans()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if server.SpanKind != trace.SpanKindServer || server.SpanContext.TraceID().String() != parentTrace || server.Parent.SpanID().String() != parentSpan {
		t.Errorf("server span: kind %v trace %s parent %s", server.SpanKind, server.SpanContext.TraceID(), server.Parent.SpanID())
	}
	wantAttr(t, "server", server.Attributes, "http.route", attribute.StringValue("/v1/collections/{collection}/resources"))
	wantAttr(t, "server", server.Attributes, "http.request.method", attribute.StringValue("POST"))
	wantAttr(t, "server", server.Attributes, "http.response.status_code", attribute.IntValue(201))

	if len(fanout.Links) != 1 || fanout.Links[0].SpanContext.SpanID() != server.SpanContext.SpanID() || fanout.Links[0].SpanContext.TraceID() != server.SpanContext.TraceID() {
		t.Fatalf("fanout links = %+v, want one to the server span %s", fanout.Links, server.SpanContext.SpanID())
	}
	if fanout.Parent.IsValid() {
		t.Errorf("fanout span has a parent %v: it is a linked root", fanout.Parent)
	}
	wantAttr(t, "fanout", fanout.Attributes, "tandem.topic", attribute.StringValue("collections/traced/resources"))
	wantAttr(t, "fanout", fanout.Attributes, "tandem.revision", attribute.Int64Value(rev))
	wantAttr(t, "fanout", fanout.Attributes, "tandem.subscribers", attribute.IntValue(1))

	// An untraced write (none is sampled without a request span, e.g.
	// from no HTTP request at all) has no fan-out span: a GET makes no
	// change and hence no fan-out either.
	n := len(exp.GetSpans())
	s.do(t, "GET", "/v1/collections/traced/resources/r1", "", "")
	deadline = time.Now().Add(5 * time.Second)
	for len(exp.GetSpans()) < n+1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, sp := range exp.GetSpans()[n:] {
		if strings.HasPrefix(sp.Name, "fanout") {
			t.Errorf("a GET caused a fan-out span %s", sp.Name)
		}
	}
}

func spanNames(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

func wantAttr(t *testing.T, what string, attrs []attribute.KeyValue, key string, want attribute.Value) {
	t.Helper()
	for _, a := range attrs {
		if string(a.Key) == key {
			if a.Value != want {
				t.Errorf("%s span %s = %v, want %v", what, key, a.Value.Emit(), want.Emit())
			}
			return
		}
	}
	t.Errorf("%s span has no %s (attributes %v)", what, key, attrs)
}
