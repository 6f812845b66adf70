package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// hostile is one entry of the bad-input catalogue: run sends the input and
// checks the documented answer.
type hostile struct {
	name string
	run  func(t *testing.T, s *testServer)
}

// TestBadInputCatalogue sends a catalogue of hostile inputs — huge bodies,
// deep nesting, invalid UTF-8, wrong media types, path and topic
// injection, 10k subscriptions on one connection, unknown operations,
// floods — each with its expected problem status or close code. After
// every case a control client must still get its write acknowledged and
// the matching event; at the end the server has logged no error or panic
// and its connection, subscription and goroutine gauges are back at
// baseline.
func TestBadInputCatalogue(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "c")
	s.mkcoll(t, "control")
	base := waitMetrics(t, s, 10*time.Second, nil)
	ctl := s.dial(t)
	ctl.subscribe("collections/control/resources", nil)
	n := 0
	control := func(t *testing.T) {
		t.Helper()
		n++
		r := s.put(t, "control", "probe", fmt.Sprintf(`{"n":%d}`, n), nil)
		if got := eventRev(ctl.nextOfType("event", 10*time.Second)); got != r.Revision {
			t.Fatalf("control client got revision %d, want %d", got, r.Revision)
		}
	}

	var cases []hostile
	cases = append(cases, restCatalogue()...)
	cases = append(cases, schemaCatalogue()...)
	cases = append(cases, wsCatalogue(control)...)
	cases = append(cases, ijsonCatalogue()...)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, s)
			control(t)
		})
	}

	ctl.c.Close()
	<-ctl.closed
	waitMetrics(t, s, 20*time.Second, base)
	logs := s.Logs.String()
	for _, bad := range []string{"level=ERROR", "panic"} {
		if strings.Contains(logs, bad) {
			t.Errorf("server logged %q:\n%s", bad, tail(logs, 4000))
		}
	}
}

// restStatus sends one request through the validating client and checks
// the status and, for errors, that the problem's type ends with kind.
func restStatus(method, path, ct string, body io.Reader, hdr []string, status int, kind string) func(t *testing.T, s *testServer) {
	return func(t *testing.T, s *testServer) {
		req, err := http.NewRequest(method, s.URL+path, body)
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := s.HTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != status {
			t.Fatalf("%s %.80s → %d, want %d: %.400s", method, path, resp.StatusCode, status, b)
		}
		if kind == "" {
			return
		}
		var p struct{ Type string }
		if err := json.Unmarshal(b, &p); err != nil || !strings.HasSuffix(p.Type, "/problems/"+kind) {
			t.Fatalf("problem type %q, want …/problems/%s: %.400s", p.Type, kind, b)
		}
	}
}

func nested(depth int, open, close, inner string) string {
	return strings.Repeat(open, depth) + inner + strings.Repeat(close, depth)
}

// chunked hides the length of r, so the request goes out chunked.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

func restCatalogue() []hostile {
	const res = "/v1/collections/c/resources"
	huge := `{"data":{"s":"` + strings.Repeat("x", 8<<20) + `"}}`
	str := func(s string) io.Reader { return strings.NewReader(s) }
	return []hostile{
		{"REST/HugeBody", restStatus("POST", res, "application/json", str(huge), nil, 413, "too-large")},
		{"REST/HugeBodyChunked", restStatus("POST", res, "application/json", chunked{str(huge)}, nil, 413, "too-large")},
		{"REST/NestingBeyondParser", restStatus("PUT", res+"/deep", "application/json", str(`{"data":{"x":`+nested(20000, "[", "]", "1")+`}}`), nil, 400, "invalid-request")},
		{"REST/DeepNestingStoredIntact", func(t *testing.T, s *testServer) {
			data := nested(3000, `{"a":`, "}", "1")
			restStatus("PUT", res+"/deep", "application/json", str(`{"data":`+data+`}`), nil, 201, "")(t, s)
			r, err := s.Client.GetResourceWithResponse(t.Context(), "c", "deep", nil)
			if err != nil || r.StatusCode() != 200 || canonJSON(r.JSON200.Data) != canonJSON([]byte(data)) {
				t.Fatalf("deep resource did not round-trip: %v %d", err, r.StatusCode())
			}
			restStatus("PATCH", res+"/deep", "application/merge-patch+json", str(`{"data":`+nested(3000, `{"a":`, "}", `{"b":2}`)+`}`), nil, 200, "")(t, s)
		}},
		{"REST/InvalidUTF8InString", restStatus("PUT", res+"/u", "application/json", str("{\"data\":{\"s\":\"\xff\xfe\"}}"), nil, 400, "invalid-request")},
		{"REST/InvalidUTF8InKey", restStatus("POST", res, "application/json", str("{\"data\":{\"\xc3\x28\":1}}"), nil, 400, "invalid-request")},
		{"REST/InvalidUTF8InPublish", restStatus("POST", "/v1/channels/bad/messages", "application/json", str("{\"data\":\"\xed\xa0\x80\"}"), nil, 400, "invalid-request")},
		{"REST/InvalidUTF8InPath", restStatus("PUT", res+"/%FF", "application/json", str(`{"data":{}}`), nil, 400, "invalid-request")},
		{"REST/TrailingData", restStatus("POST", res, "application/json", str(`{"data":{}} {"data":{}}`), nil, 400, "invalid-request")},
		{"REST/ByteOrderMark", restStatus("POST", res, "application/json", str("\xef\xbb\xbf{\"data\":{}}"), nil, 400, "invalid-request")},
		{"REST/EmptyBody", restStatus("POST", res, "application/json", str(""), nil, 400, "invalid-request")},
		{"REST/TextPlain", restStatus("POST", res, "text/plain", str(`{"data":{}}`), nil, 415, "unsupported-media-type")},
		{"REST/Multipart", restStatus("POST", res, "multipart/form-data; boundary=x", str("--x\r\n\r\nhi\r\n--x--\r\n"), nil, 415, "unsupported-media-type")},
		{"REST/FormEncoded", restStatus("POST", res, "application/x-www-form-urlencoded", str("data=1"), nil, 415, "unsupported-media-type")},
		{"REST/XML", restStatus("POST", res, "application/xml", str("<data/>"), nil, 415, "unsupported-media-type")},
		{"REST/MergePatchAsJSON", restStatus("PATCH", res+"/deep", "application/json", str(`{"data":{}}`), nil, 415, "unsupported-media-type")},
		{"REST/EncodedDotDotCollection", restStatus("GET", "/v1/collections/..%2F..%2Fetc/resources", "", nil, nil, 400, "invalid-request")},
		{"REST/EncodedDotDotID", restStatus("PUT", res+"/a%2F..%2F..%2Fb", "application/json", str(`{"data":{}}`), nil, 400, "invalid-request")},
		{"REST/EncodedDotDotChannel", restStatus("POST", "/v1/channels/..%2Fx/messages", "application/json", str(`{"data":1}`), nil, 400, "invalid-request")},
		{"REST/SSETopicTraversal", restStatus("GET", "/v1/events?topic="+url.QueryEscape("../../etc/passwd"), "", nil, nil, 400, "invalid-request")},
		{"REST/SSETopicDotDot", restStatus("GET", "/v1/events?topic="+url.QueryEscape("collections/c/resources/../../control/resources"), "", nil, nil, 400, "invalid-request")},
		{"REST/LongPollTopicDotDot", restStatus("GET", "/v1/changes?topic="+url.QueryEscape("collections/../resources"), "", nil, nil, 400, "invalid-request")},
		{"REST/SSETooManyTopics", restStatus("GET", "/v1/events?"+strings.Repeat("topic=collections/c/resources&", 40), "", nil, nil, 400, "invalid-request")},
		{"REST/SSEBadLastEventID", restStatus("GET", "/v1/events?topic=collections/c/resources", "", nil, []string{"Last-Event-ID", "../../x"}, 400, "invalid-request")},
		{"REST/LongPollWaitTooLong", restStatus("GET", "/v1/changes?topic=collections/c/resources&wait=99999s", "", nil, nil, 400, "invalid-request")},
		{"REST/SelectorTooLong", restStatus("GET", res+"?labels="+strings.Repeat("a", 2000), "", nil, nil, 400, "invalid-request")},
		{"REST/SelectorGarbage", restStatus("GET", res+"?labels="+url.QueryEscape("a in ((((,b"), "", nil, nil, 400, "invalid-request")},
		{"REST/HugeIfNoneMatch", restStatus("GET", res+"/deep", "", nil, []string{"If-None-Match", strings.Repeat(`"1",`, 5000)}, 400, "invalid-request")},
		{"REST/HugeIdempotencyKey", restStatus("POST", res, "application/json", str(`{"data":{}}`), []string{"Idempotency-Key", strings.Repeat("k", 5000)}, 400, "invalid-request")},
		{"REST/UnknownMethod", restStatus("TRACE", "/v1/collections", "", nil, nil, 405, "method-not-allowed")},
		// Schemas that could never be evaluated without looping are refused
		// when the collection is created, naming the subschema; nothing is
		// created, nothing hangs or crashes.
		{"REST/SelfReferencingSchema", func(t *testing.T, s *testServer) {
			restStatus("POST", "/v1/collections", "application/json", str(`{"name":"selfref","schema":{"$ref":"#"}}`), nil, 422, "schema-violation")(t, s)
			restStatus("PUT", "/v1/collections/selfref/resources/x", "application/json", str(`{"data":{"a":1}}`), nil, 404, "not-found")(t, s)
		}},
		{"REST/RefCycleSchema", func(t *testing.T, s *testServer) {
			restStatus("POST", "/v1/collections", "application/json", str(`{"name":"cycle","schema":{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}}`), nil, 422, "schema-violation")(t, s)
			restStatus("PUT", "/v1/collections/cycle/resources/x", "application/json", str(`{"data":{"a":1}}`), nil, 404, "not-found")(t, s)
		}},
		{"REST/ExternalRefSchema", restStatus("POST", "/v1/collections", "application/json", str(`{"name":"ext","schema":{"$ref":"file:///etc/passwd"}}`), nil, 422, "schema-violation")},
		{"REST/BacktrackingPattern", func(t *testing.T, s *testServer) {
			restStatus("POST", "/v1/collections", "application/json", str(`{"name":"rx","schema":{"type":"object","properties":{"s":{"pattern":"^(a+)+$"}}}}`), nil, 201, "")(t, s)
			restStatus("PUT", "/v1/collections/rx/resources/x", "application/json", str(`{"data":{"s":"`+strings.Repeat("a", 50000)+`!"}}`), nil, 422, "schema-violation")(t, s)
		}},
		{"REST/HugeHeader", func(t *testing.T, s *testServer) {
			// net/http answers before any handler, in plain text.
			req, _ := http.NewRequest("GET", s.URL+"/v1/collections", nil)
			req.Header.Set("X-Big", strings.Repeat("x", 2<<20))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 431 {
				t.Fatalf("status %d, want 431", resp.StatusCode)
			}
		}},
		{"REST/DotDotPathIsCleaned", func(t *testing.T, s *testServer) {
			// net/http redirects to the cleaned path; nothing outside /v1/ is reached.
			hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := hc.Get(s.URL + "/v1/collections/c/resources/../../../../etc/passwd")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 307 || resp.Header.Get("Location") != "/etc/passwd" {
				t.Fatalf("status %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
			restStatus("GET", "/etc/passwd", "", nil, nil, 404, "")(t, s)
		}},
		{"REST/Flood", func(t *testing.T, s *testServer) {
			// 1000 writes from 20 clients at once: all succeed, each with its own revision.
			var wg sync.WaitGroup
			var mu sync.Mutex
			revs := map[int64]bool{}
			for g := 0; g < 20; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 50; i++ {
						r, err := s.Client.ReplaceResourceWithResponse(t.Context(), "c", fmt.Sprintf("f%d", g), nil, jsonReplace(fmt.Sprintf(`{"i":%d}`, i)))
						if err != nil || r.StatusCode()/100 != 2 {
							t.Errorf("flood write: %v %v", err, r.Status())
							return
						}
						rev := r.JSON201
						if rev == nil {
							rev = r.JSON200
						}
						mu.Lock()
						if revs[rev.Revision] {
							t.Errorf("revision %d handed out twice", rev.Revision)
						}
						revs[rev.Revision] = true
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
		}},
	}
}

// answerTo dials, sends one raw text frame and returns the connection and
// the first frame that is not a bookmark.
func answerTo(t *testing.T, s *testServer, frame string) (*wsClient, map[string]any) {
	t.Helper()
	w := s.dial(t)
	if err := w.c.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
	f := w.next(10 * time.Second)
	for f["type"] == "bookmark" {
		f = w.next(10 * time.Second)
	}
	return w, f
}

func wsCatalogue(control func(*testing.T)) []hostile {
	// expectReply sends raw frames and checks each reply's status (0: ok).
	expectReply := func(frame string, status int) func(t *testing.T, s *testServer) {
		return func(t *testing.T, s *testServer) {
			w, f := answerTo(t, s, frame)
			checkFrameStatus(t, f, status)
			if r := w.request(map[string]any{"type": "ping"}); r["ok"] != true {
				t.Fatalf("connection unusable afterwards: %v", r)
			}
		}
	}
	expectClose := func(typ int, data []byte, code int) func(t *testing.T, s *testServer) {
		return func(t *testing.T, s *testServer) {
			w := s.dial(t)
			werr := w.c.WriteMessage(typ, data)
			err := w.closeErr(10 * time.Second)
			if got := closeCode(err); got != code {
				// The server refuses an oversized frame after its header
				// and closes with the rest unread, so the kernel may answer
				// the client's remaining bytes with a reset that overtakes
				// the 1009 close frame: the connection still ended.
				if code == 1009 && (isReset(werr) || isReset(err)) {
					t.Logf("close frame overtaken by a TCP reset (write: %v, read: %v)", werr, err)
					return
				}
				t.Fatalf("close code %d (%v; write error %v), want %d", got, err, werr, code)
			}
		}
	}
	sub := func(topic string) string {
		return `{"type":"subscribe","ref":"s","topic":` + quoteJSON(topic) + `}`
	}
	return []hostile{
		{"WS/UnknownOp", expectReply(`{"type":"dance","ref":"d"}`, 400)},
		{"WS/MissingType", expectReply(`{"ref":"m"}`, 400)},
		{"WS/NotAnObject", expectReply(`[1,2,3]`, 400)},
		{"WS/RefTooLong", expectReply(`{"type":"ping","ref":"`+strings.Repeat("r", 65)+`"}`, 400)},
		{"WS/TopicTooLong", expectReply(sub("collections/c/resources/"+strings.Repeat("x", 600)), 400)},
		{"WS/TopicTraversal", expectReply(sub("channels/../../control/messages"), 400)},
		{"WS/TopicDotDot", expectReply(sub("collections/c/resources/../../control/resources"), 400)},
		{"WS/TopicAbsolute", expectReply(sub("/collections/c/resources"), 400)},
		{"WS/TopicUnknownKind", expectReply(sub("admin/users"), 400)},
		{"WS/CursorOfAnotherKind", func(t *testing.T, s *testServer) {
			m := s.publish(t, "kind", `1`)
			expectReply(`{"type":"subscribe","ref":"k","topic":"collections/c/resources","since":`+quoteJSON(m.Cursor)+`}`, 400)(t, s)
		}},
		{"WS/ForgedCursor", expectReply(`{"type":"subscribe","ref":"f","topic":"collections/c/resources","since":"cjpub3BlOjk5OTk5OTk5OTk5"}`, 410)},
		{"WS/SinceWithSnapshot", func(t *testing.T, s *testServer) {
			m := s.publish(t, "both", `1`)
			expectReply(`{"type":"subscribe","ref":"b","topic":"channels/both/messages","snapshot":true,"since":`+quoteJSON(m.Cursor)+`}`, 400)(t, s)
		}},
		{"WS/PublishToResourceTopic", expectReply(`{"type":"publish","ref":"p","topic":"collections/c/resources","data":{}}`, 400)},
		{"WS/UnsubscribeUnknown", expectReply(`{"type":"unsubscribe","ref":"u","topic":"collections/c/resources"}`, 404)},
		{"WS/DeepNestingAccepted", expectReply(`{"type":"publish","ref":"n","topic":"channels/deep/messages","data":`+nested(5000, "[", "]", "")+`}`, 0)},
		{"WS/NestingBeyondParser", expectReply(`{"type":"publish","ref":"n","topic":"channels/deep/messages","data":`+nested(20000, "[", "]", "")+`}`, 400)},
		{"WS/InvalidUTF8", expectClose(websocket.TextMessage, []byte("{\"type\":\"ping\",\"ref\":\"\xff\"}"), 1007)},
		{"WS/InvalidUTF8InData", expectClose(websocket.TextMessage, []byte("{\"type\":\"publish\",\"ref\":\"1\",\"topic\":\"channels/u/messages\",\"data\":\"\xc0\xaf\"}"), 1007)},
		{"WS/Binary", expectClose(websocket.BinaryMessage, []byte(`{"type":"ping","ref":"1"}`), 1003)},
		{"WS/NotJSON", expectClose(websocket.TextMessage, []byte(`type=ping`), 1003)},
		{"WS/FrameTooBig", expectClose(websocket.TextMessage, []byte(`{"type":"ping","ref":"`+strings.Repeat("x", 70<<10)+`"}`), 1009)},
		{"WS/UpgradeWithoutHeaders", func(t *testing.T, s *testServer) {
			// /v1/ws is outside the OpenAPI description: a plain client.
			resp, err := http.Get(s.URL + "/v1/ws")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(b), "websocket-upgrade") {
				t.Fatalf("%d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
		}},
		{"WS/TenThousandSubscriptions", func(t *testing.T, s *testServer) {
			// The first 1000 succeed, the rest are refused with 429; the
			// connection and everyone else carry on, and closing it
			// releases all of them.
			w := s.dial(t)
			const total, max = 10000, 1000
			go func() {
				for i := 0; i < total; i++ {
					if err := w.c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"subscribe","ref":"%d","topic":"collections/c/resources/r%d"}`, i, i))); err != nil {
						return
					}
				}
			}()
			ok, refused := 0, 0
			for ok+refused < total {
				f := w.nextOfType("reply", 30*time.Second)
				if f["ok"] == true {
					ok++
					continue
				}
				checkFrameStatus(t, f, 429)
				refused++
				if ok+refused == total/2 {
					control(t) // others are served while this goes on
				}
			}
			if ok != max || refused != total-max {
				t.Fatalf("%d subscriptions accepted and %d refused, want %d and %d", ok, refused, max, total-max)
			}
			if got := scrapeGauge(t, s, "tandem_ws_subscriptions"); got < max {
				t.Fatalf("tandem_ws_subscriptions = %v with %d open", got, max)
			}
			if r := w.request(map[string]any{"type": "ping"}); r["ok"] != true {
				t.Fatalf("ping: %v", r)
			}
			w.c.Close()
			<-w.closed
		}},
		{"WS/FrameFlood", func(t *testing.T, s *testServer) {
			// 20000 pipelined pings (no rate limit configured): every one
			// is answered, in order, and the connection stays up.
			w := s.dial(t)
			const total = 20000
			go func() {
				for i := 0; i < total; i++ {
					if err := w.c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"type":"ping","ref":"%d"}`, i))); err != nil {
						return
					}
				}
			}()
			for i := 0; i < total; i++ {
				f := w.nextOfType("reply", 30*time.Second)
				if f["ok"] != true || f["ref"] != fmt.Sprint(i) {
					t.Fatalf("reply %d = %v", i, f)
				}
				if i == total/2 {
					control(t)
				}
			}
		}},
		{"WS/ConnectionFlood", func(t *testing.T, s *testServer) {
			// 300 connections opened and dropped at once.
			var wg sync.WaitGroup
			for i := 0; i < 300; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
					if err != nil {
						t.Errorf("dial %d: %v", i, err)
						return
					}
					_ = c.WriteMessage(websocket.TextMessage, []byte(sub(fmt.Sprintf("channels/flood%d/messages", i%10))))
					c.Close()
				}()
			}
			wg.Wait()
		}},
	}
}

// checkFrameStatus checks a reply or error frame: status 0 means ok.
func checkFrameStatus(t *testing.T, f map[string]any, status int) {
	t.Helper()
	if status == 0 {
		if f["type"] != "reply" || f["ok"] != true {
			t.Fatalf("frame %v, want an ok reply", f)
		}
		return
	}
	if f["type"] != "reply" && f["type"] != "error" {
		t.Fatalf("frame %v, want a reply or error frame", f)
	}
	p, _ := f["problem"].(map[string]any)
	if f["ok"] == true || p == nil || p["status"] != float64(status) {
		t.Fatalf("frame %v, want problem status %d", f, status)
	}
}

func quoteJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func scrapeGauge(t *testing.T, s *testServer, name string) float64 {
	t.Helper()
	return parseMetrics(s.metrics(t))[name]
}

func jsonReplace(data string) client.ResourceReplace {
	return client.ResourceReplace{Data: json.RawMessage(data)}
}

// isReset reports whether err is a connection reset or a write to a
// connection the peer has closed.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
