package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/specval"
)

var (
	asyncOnce sync.Once
	asyncVal  *specval.AsyncAPI
	asyncErr  error
)

func asyncValidator(t *testing.T) *specval.AsyncAPI {
	t.Helper()
	asyncOnce.Do(func() { asyncVal, asyncErr = specval.LoadAsyncAPI() })
	if asyncErr != nil {
		t.Fatal(asyncErr)
	}
	return asyncVal
}

var (
	openapiOnce sync.Once
	openapiVal  *specval.OpenAPI
	openapiErr  error
)

// validateSSE checks one event of a /v1/events stream: its name is one
// spec/openapi.yaml declares and its data the spec/asyncapi.yaml frame
// of that type.
func validateSSE(t *testing.T, name string, data []byte) error {
	t.Helper()
	openapiOnce.Do(func() { openapiVal, openapiErr = specval.LoadOpenAPI() })
	if openapiErr != nil {
		t.Fatal(openapiErr)
	}
	return openapiVal.ValidateSSEEvent(asyncValidator(t), name, data)
}

// wsClient is a test WebSocket client; every frame it receives is
// validated against spec/asyncapi.yaml.
type wsClient struct {
	t      *testing.T
	c      *websocket.Conn
	frames chan map[string]any
	// pending holds frames that arrived while request waited for a reply.
	pending []map[string]any
	closed  chan struct{}
	mu      sync.Mutex
	err     error
	ref     int
}

func (s *testServer) dial(t *testing.T) *wsClient {
	t.Helper()
	return s.dialHeader(t, nil)
}

func (s *testServer) dialHeader(t *testing.T, h http.Header) *wsClient {
	t.Helper()
	return s.dialWith(t, websocket.DefaultDialer, h)
}

// dialWith dials with d (e.g. from another loopback source address).
func (s *testServer) dialWith(t *testing.T, d *websocket.Dialer, h http.Header) *wsClient {
	t.Helper()
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/ws"
	c, resp, err := d.Dial(url, h)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	wc := &wsClient{t: t, c: c, frames: make(chan map[string]any, 100000), closed: make(chan struct{})}
	v := asyncValidator(t)
	go func() {
		defer close(wc.closed)
		for {
			_, b, err := c.ReadMessage()
			if err != nil {
				wc.mu.Lock()
				wc.err = err
				wc.mu.Unlock()
				return
			}
			if err := v.ValidateServerFrame(b); err != nil {
				t.Errorf("server frame violates spec/asyncapi.yaml: %v\n%s", err, b)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Errorf("frame is not JSON: %s", b)
			}
			wc.frames <- m
		}
	}()
	t.Cleanup(func() { c.Close(); <-wc.closed })
	w := wc.next(5 * time.Second)
	if w["type"] != "welcome" {
		t.Fatalf("first frame = %v", w)
	}
	return wc
}

// next returns the next frame or fails after d.
func (w *wsClient) next(d time.Duration) map[string]any {
	w.t.Helper()
	if len(w.pending) > 0 {
		f := w.pending[0]
		w.pending = w.pending[1:]
		return f
	}
	select {
	case f := <-w.frames:
		return f
	case <-time.After(d):
		w.t.Fatalf("no frame within %v", d)
		return nil
	}
}

// nextOfType skips frames (bookmarks) until one of typ arrives.
func (w *wsClient) nextOfType(typ string, d time.Duration) map[string]any {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for {
		f := w.next(time.Until(deadline))
		if f["type"] == typ {
			return f
		}
		if f["type"] != "bookmark" {
			w.t.Fatalf("want %s frame, got %v", typ, f)
		}
	}
}

func (w *wsClient) send(frame map[string]any) string {
	w.t.Helper()
	w.ref++
	ref := fmt.Sprint(w.ref)
	if _, ok := frame["ref"]; !ok {
		frame["ref"] = ref
	} else {
		ref = fmt.Sprint(frame["ref"])
	}
	if err := w.c.WriteJSON(frame); err != nil {
		w.t.Fatal(err)
	}
	return ref
}

// request sends a frame and returns its reply.
func (w *wsClient) request(frame map[string]any) map[string]any {
	w.t.Helper()
	ref := w.send(frame)
	// Frames of other subscriptions may come before the reply (e.g. the
	// presence join a subscribe causes); keep them for next.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case f := <-w.frames:
			if f["type"] == "reply" {
				if f["ref"] != ref {
					w.t.Fatalf("reply ref %v, want %s", f["ref"], ref)
				}
				return f
			}
			w.pending = append(w.pending, f)
		case <-deadline:
			w.t.Fatalf("no reply to ref %s within 10s", ref)
			return nil
		}
	}
}

func (w *wsClient) subscribe(topic string, extra map[string]any) map[string]any {
	w.t.Helper()
	f := map[string]any{"type": "subscribe", "topic": topic}
	for k, v := range extra {
		f[k] = v
	}
	r := w.request(f)
	if r["ok"] != true {
		w.t.Fatalf("subscribe %s: %v", topic, r)
	}
	return r["body"].(map[string]any)
}

// closeErr waits for the connection to end and returns the close error.
func (w *wsClient) closeErr(d time.Duration) error {
	w.t.Helper()
	select {
	case <-w.closed:
	case <-time.After(d):
		w.t.Fatalf("connection not closed within %v", d)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func closeCode(err error) int {
	if ce, ok := err.(*websocket.CloseError); ok {
		return ce.Code
	}
	return -1
}
