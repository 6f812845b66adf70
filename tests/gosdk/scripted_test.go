// A scripted WebSocket server for the frames the real server cannot send
// yet (or not on demand): it sends welcome, then exactly what the test
// tells it, and validates every frame both ways against
// spec/asyncapi.yaml.

package gosdk_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/specval"
	tandem "github.com/tandemhq/tandem/sdk/go"
)

// scriptServer accepts WebSocket connections at /v1/ws on loopback; the
// test takes each one from accept and scripts it.
type scriptServer struct {
	URL   string
	aa    *specval.AsyncAPI
	conns chan *scriptConn
	n     atomic.Int64

	wg     sync.WaitGroup // handlers running
	mu     sync.Mutex
	all    []*scriptConn
	closed bool // the test is over
}

// scriptConn is the server's side of one connection.
type scriptConn struct {
	t   *testing.T
	ss  *scriptServer
	aa  *specval.AsyncAPI
	ws  *websocket.Conn
	wmu sync.Mutex
	// in carries the client's frames, validated and decoded; it is closed
	// when the connection ends.
	in chan clientFrame
}

// clientFrame is a frame the client sent.
type clientFrame struct {
	Type   string          `json:"type"`
	Ref    string          `json:"ref"`
	Method string          `json:"method"`
	Topic  string          `json:"topic"`
	Labels string          `json:"labels"`
	Filter string          `json:"filter"`
	Since  string          `json:"since"`
	Data   json.RawMessage `json:"data"`
	Raw    string          `json:"-"`
}

// newScriptServer starts a scripted server for t, which must be the test
// (or subtest) that scripts it.
func newScriptServer(t *testing.T) *scriptServer {
	t.Helper()
	_, aa := specs(t)
	ss := &scriptServer{aa: aa, conns: make(chan *scriptConn, 64)}
	up := websocket.Upgrader{Subprotocols: []string{tandem.Protocol}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss.wg.Add(1)
		defer ss.wg.Done()
		if r.URL.Path != "/v1/ws" {
			http.NotFound(w, r)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return // Upgrade has answered
		}
		sc := &scriptConn{t: t, ss: ss, aa: aa, ws: ws, in: make(chan clientFrame, 1024)}
		ss.mu.Lock()
		if ss.closed {
			ss.mu.Unlock()
			ws.Close()
			return
		}
		ss.all = append(ss.all, sc)
		ss.mu.Unlock()
		sc.send(map[string]any{"type": "welcome", "connectionId": fmt.Sprintf("conn-%d", ss.n.Add(1)),
			"protocol": tandem.Protocol, "heartbeatSeconds": 30, "maxFrameBytes": 1 << 20})
		select {
		case ss.conns <- sc:
		default:
			t.Errorf("scripted server: more than %d connections nobody accepted", cap(ss.conns))
		}
		sc.read()
	}))
	ss.URL = srv.URL
	t.Cleanup(func() {
		srv.Close() // no new connection; hijacked ones stay open
		ss.mu.Lock()
		ss.closed = true
		all := ss.all
		ss.mu.Unlock()
		for _, sc := range all {
			sc.ws.Close()
		}
		ss.wg.Wait()
	})
	return ss
}

func (ss *scriptServer) isClosed() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.closed
}

// accept returns the next connection the client opened.
func (ss *scriptServer) accept(t *testing.T) *scriptConn {
	t.Helper()
	select {
	case sc := <-ss.conns:
		return sc
	case <-time.After(wait):
		t.Fatalf("no connection within %v", wait)
		return nil
	}
}

// noMoreConnections fails if the client opened a connection nobody
// accepted.
func (ss *scriptServer) noMoreConnections(t *testing.T) {
	t.Helper()
	select {
	case <-ss.conns:
		t.Error("the client opened another connection")
	default:
	}
}

// read validates and queues the client's frames until the connection ends.
func (sc *scriptConn) read() {
	defer close(sc.in)
	for {
		_, b, err := sc.ws.ReadMessage()
		if err != nil {
			return
		}
		if _, err := sc.aa.ValidateClientFrame(b); err != nil {
			sc.t.Errorf("client frame violates spec/asyncapi.yaml: %v\n%s", err, b)
		}
		var f clientFrame
		if err := json.Unmarshal(b, &f); err != nil {
			sc.t.Errorf("client frame: %v\n%s", err, b)
			continue
		}
		f.Raw = string(b)
		select {
		case sc.in <- f:
		default:
			sc.t.Errorf("scripted server: more than %d client frames unread", cap(sc.in))
		}
	}
}

// send validates v as a server frame and writes it.
func (sc *scriptConn) send(v any) {
	sc.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		sc.t.Fatal(err)
	}
	if err := sc.aa.ValidateServerFrame(b); err != nil {
		sc.t.Errorf("scripted frame violates spec/asyncapi.yaml: %v\n%s", err, b)
	}
	sc.wmu.Lock()
	defer sc.wmu.Unlock()
	_ = sc.ws.SetWriteDeadline(time.Now().Add(wait))
	if err := sc.ws.WriteMessage(websocket.TextMessage, b); err != nil && !sc.ss.isClosed() {
		sc.t.Errorf("scripted server: write %s: %v", b, err)
	}
}

// recv returns the client's next frame.
func (sc *scriptConn) recv() clientFrame {
	sc.t.Helper()
	select {
	case f, ok := <-sc.in:
		if !ok {
			sc.t.Fatal("the connection ended while waiting for a client frame")
		}
		return f
	case <-time.After(wait):
		sc.t.Fatalf("no client frame within %v", wait)
		return clientFrame{}
	}
}

// expect returns the client's next frame, which must be of type typ.
func (sc *scriptConn) expect(typ string) clientFrame {
	sc.t.Helper()
	f := sc.recv()
	if f.Type != typ {
		sc.t.Fatalf("client sent %s, want a %s frame", f.Raw, typ)
	}
	return f
}

// reply answers ref with ok and body.
func (sc *scriptConn) reply(ref string, body any) {
	sc.t.Helper()
	sc.send(map[string]any{"type": "reply", "ref": ref, "ok": true, "body": body})
}

// replyProblem answers ref with a problem.
func (sc *scriptConn) replyProblem(ref string, p map[string]any) {
	sc.t.Helper()
	sc.send(map[string]any{"type": "reply", "ref": ref, "ok": false, "problem": p})
}

// closeWith sends a close frame and waits for the client's side to end.
func (sc *scriptConn) closeWith(code int, reason string) {
	sc.t.Helper()
	sc.wmu.Lock()
	err := sc.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(wait))
	sc.wmu.Unlock()
	if err != nil {
		sc.t.Errorf("scripted server: close %d: %v", code, err)
	}
	sc.ended()
	sc.ws.Close()
}

// drop ends the connection without a close frame (the client sees 1006).
func (sc *scriptConn) drop() {
	sc.t.Helper()
	sc.ws.Close()
	sc.ended()
}

// ended waits for the connection's reader to end; frames the client sent
// before are discarded.
func (sc *scriptConn) ended() {
	sc.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-sc.in:
			if !ok {
				return
			}
		case <-timeout:
			sc.t.Fatalf("the connection did not end within %v", wait)
		}
	}
}

// subscribe makes a client subscription of topic through the script:
// it answers the subscribe frame with cursor.
func (sc *scriptConn) subscribe(conn *tandem.Conn, topic string, opts *tandem.SubscribeOptions, cursor string) *tandem.Subscription {
	sc.t.Helper()
	type result struct {
		sub *tandem.Subscription
		err error
	}
	done := make(chan result, 1)
	ctx := testContext(sc.t)
	go func() {
		sub, err := conn.Subscribe(ctx, topic, opts)
		done <- result{sub, err}
	}()
	f := sc.expect("subscribe")
	if f.Topic != topic {
		sc.t.Fatalf("subscribe frame %s, want topic %s", f.Raw, topic)
	}
	sc.answerSubscribe(f, cursor)
	r := <-done
	if r.err != nil {
		sc.t.Fatal(r.err)
	}
	return r.sub
}

// answerSubscribe accepts a subscribe frame, live from cursor.
func (sc *scriptConn) answerSubscribe(f clientFrame, cursor string) {
	sc.t.Helper()
	body := map[string]any{"topic": f.Topic, "cursor": cursor, "start": "live"}
	if f.Since != "" {
		body["start"] = "since"
	}
	if f.Labels != "" {
		body["labels"] = f.Labels
	}
	sc.reply(f.Ref, body)
}

// messageEvent is a channel message event of a messages topic.
func messageEvent(topic, cursor string, offset int, data string) map[string]any {
	channel := strings.TrimSuffix(strings.TrimPrefix(topic, "channels/"), "/messages")
	return map[string]any{"type": "event", "topic": topic, "event": "message", "cursor": cursor,
		"message": map[string]any{"channel": channel, "offset": offset, "cursor": cursor,
			"data": json.RawMessage(data), "time": "2026-01-02T03:04:05Z"}}
}

// resourceEvent is a resource.created event of a collection topic.
func resourceEvent(topic, labels, cursor, id string, revision int, data string) map[string]any {
	coll := strings.TrimSuffix(strings.TrimPrefix(topic, "collections/"), "/resources")
	f := map[string]any{"type": "event", "topic": topic, "event": "resource.created", "cursor": cursor,
		"resource": map[string]any{"id": id, "collection": coll, "data": json.RawMessage(data),
			"labels": map[string]string{"env": "prod"}, "revision": revision,
			"createdAt": "2026-01-02T03:04:05Z", "updatedAt": "2026-01-02T03:04:05Z"}}
	if labels != "" {
		f["labels"] = labels
	}
	return f
}

// statusChan returns an option that reports every connection state on the
// returned channel (dropping them if the test does not keep up).
func statusChan() (tandem.Option, <-chan tandem.Status) {
	ch := make(chan tandem.Status, 256)
	return tandem.WithStatus(func(s tandem.Status) {
		select {
		case ch <- s:
		default:
		}
	}), ch
}

// waitStatus returns the first state from ch that ok accepts.
func waitStatus(t *testing.T, ch <-chan tandem.Status, what string, ok func(tandem.Status) bool) tandem.Status {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case s := <-ch:
			if ok(s) {
				return s
			}
		case <-timeout:
			t.Fatalf("no %s state within %v", what, wait)
			return tandem.Status{}
		}
	}
}

// endedSub waits for sub to end and returns its error.
func endedSub(t *testing.T, sub *tandem.Subscription) error {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				return sub.Err()
			}
			t.Errorf("unexpected event after the end: %s", describe(ev))
		case <-timeout:
			t.Fatalf("subscription of %s did not end within %v", sub.Topic(), wait)
			return nil
		}
	}
}
