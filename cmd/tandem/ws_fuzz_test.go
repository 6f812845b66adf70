package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/sdk/go/client"
)

// FuzzWebSocketSession sends newline-separated frames over one WebSocket
// connection to a live server. Every frame the server sends validates
// against spec/asyncapi.yaml; each text frame that is JSON gets exactly one
// answer (a reply, or an error frame when no ref can be read), in order,
// and the connection stays usable; the first frame that is not UTF-8 or
// not JSON closes it with exactly 1007 or 1003. Nothing hangs: a final ping
// is answered within seconds.
func FuzzWebSocketSession(f *testing.F) {
	base := fuzzServer(f, "--max-frame-bytes", "4096")
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/v1/ws"
	v, err := specval.LoadAsyncAPI()
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		`{"type":"ping","ref":"1"}`,
		`{"type":"subscribe","ref":"1","topic":"collections/c/resources","snapshot":true}` + "\n" + `{"type":"unsubscribe","ref":"2","topic":"collections/c/resources"}`,
		`{"type":"subscribe","ref":"a","topic":"channels/f:x/messages","meta":{"n":1}}` + "\n" + `{"type":"publish","ref":"b","topic":"channels/f:x/messages","data":[1,{"a":null}]}`,
		`{"type":"subscribe","ref":"p","topic":"channels/f:x/presence"}` + "\n" + `{"type":"subscribe","ref":"p","topic":"channels/f:x/presence"}`,
		`{"type":"subscribe","ref":"s","topic":"collections/c/resources","since":"cjp4OjE"}`,
		`{"type":"subscribe","ref":"l","topic":"collections/c/resources","labels":"a in (b,c),!d"}`,
		`{"type":"auth","ref":"t","token":"x.y.z"}`,
		`{"type":"dance","ref":"d"}` + "\n" + `[]` + "\n" + `{"ref":{"x":1}}` + "\n" + `"str"`,
		"{\"type\":\"ping\",\"ref\":\"\xff\"}",
		`{"type":"ping","ref":"1"}` + "\n" + `not json`,
		`{"type":"publish","ref":"z","topic":"channels/../x/messages","data":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, script []byte) {
		c, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		read := func() (map[string]any, error) {
			_, b, err := c.ReadMessage()
			if err != nil {
				return nil, err
			}
			if err := v.ValidateServerFrame(b); err != nil {
				t.Fatalf("server frame violates spec/asyncapi.yaml: %v\n%s", err, b)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("server frame is not JSON: %s", b)
			}
			return m, nil
		}
		if w, err := read(); err != nil || w["type"] != "welcome" {
			t.Fatalf("welcome: %v %v", w, err)
		}
		sent, wantClose := 0, 0
		for i, fr := range bytes.Split(script, []byte("\n")) {
			if len(fr) == 0 || i >= 40 {
				continue
			}
			switch {
			case len(fr) > 4096:
				wantClose = 1009
			case !utf8.Valid(fr):
				wantClose = 1007
			case !json.Valid(fr):
				wantClose = 1003
			}
			if err := c.WriteMessage(websocket.TextMessage, fr); err != nil {
				t.Fatal(err)
			}
			if wantClose != 0 {
				break
			}
			sent++
		}
		if wantClose == 0 {
			if err := c.WriteMessage(websocket.TextMessage, []byte(`{"type":"ping","ref":"fuzz-final"}`)); err != nil {
				t.Fatal(err)
			}
		}
		answered := 0
		for {
			m, err := read()
			if err != nil {
				var ce *websocket.CloseError
				if wantClose != 0 && errors.As(err, &ce) && ce.Code == wantClose {
					return
				}
				t.Fatalf("connection ended with %v (want close %d) after %d of %d answers", err, wantClose, answered, sent)
			}
			switch m["type"] {
			case "reply":
				if m["ref"] == "fuzz-final" {
					if wantClose != 0 {
						t.Fatalf("answered the final ping, want close %d", wantClose)
					}
					if answered != sent || m["ok"] != true {
						t.Fatalf("%d answers to %d frames; final reply %v", answered, sent, m)
					}
					return
				}
				answered++
			case "error":
				if m["topic"] == nil && m["cursors"] == nil {
					answered++
				}
			}
		}
	})
}

// fuzzServer runs `tandem serve` in-process for a fuzz target (one per
// fuzzing worker process) with a collection "c", and returns its base URL.
func fuzzServer(f *testing.F, extra ...string) string {
	f.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &syncBuffer{}
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", f.TempDir(), "--strict", "--rate-limit", "0"}, extra...)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, func(string) string { return "" }, io.Discard, logs) }()
	f.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			f.Errorf("server did not stop")
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		if m := addrRE.FindStringSubmatch(logs.String()); m != nil {
			base := "http://" + m[1]
			mk := newRemoteServer(f, base, logs, nil)
			r, err := mk.Client.CreateCollectionWithResponse(context.Background(), nil, client.CollectionCreate{Name: "c"})
			if err != nil || r.StatusCode() != 201 {
				f.Fatalf("create collection: %v", err)
			}
			return base
		}
		select {
		case err := <-done:
			f.Fatalf("server exited: %v\n%s", err, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			f.Fatalf("server did not start:\n%s", logs.String())
		}
	}
}
