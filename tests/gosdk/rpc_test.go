// Tests of Conn.RPC against the scripted server: results and problems,
// many calls in flight answered out of order, and calls whose connection
// drops.

package gosdk_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// TestRPC sends one RPC per case and answers it as the table says.
func TestRPC(t *testing.T) {
	tests := []struct {
		name     string
		method   string
		data     any
		wantSent string // the rpc frame's data; "" for none
		answer   map[string]any
		want     string // the result's data
		check    func(*testing.T, error)
	}{
		{name: "OK", method: "game:move", data: map[string]string{"from": "e2", "to": "e4"},
			wantSent: `{"from":"e2","to":"e4"}`, answer: map[string]any{"ok": true, "body": map[string]any{"data": map[string]bool{"moved": true}}},
			want: `{"moved":true}`},
		{name: "OKWithoutData", method: "game:resign",
			answer: map[string]any{"ok": true, "body": map[string]any{"data": nil}}, want: "null"},
		{name: "RawMessage", method: "game:echo", data: json.RawMessage(`[1, 2]`),
			wantSent: `[1,2]`, // compacted by encoding/json
			answer:   map[string]any{"ok": true, "body": map[string]any{"data": "done"}}, want: `"done"`},
		{name: "ErrProblem", method: "game:move", data: "e9",
			wantSent: `"e9"`, answer: map[string]any{"ok": false, "problem": map[string]any{
				"type": "https://game.example/problems/illegal-move", "title": "Illegal move", "status": 422, "detail": "e9 is off the board"}},
			check: func(t *testing.T, err error) {
				var pe *tandem.ProblemError
				if !errors.As(err, &pe) || pe.Problem.Status != 422 || pe.Problem.Type != "https://game.example/problems/illegal-move" {
					t.Fatalf("err = %v, want the application's 422 problem", err)
				}
				if !strings.Contains(err.Error(), "e9 is off the board") {
					t.Errorf("err = %q, want the problem's detail", err)
				}
			}},
		{name: "ErrNotFound", method: "game:nope",
			answer: map[string]any{"ok": false, "problem": map[string]any{"type": "about:blank", "title": "Not Found", "status": 404}},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, tandem.ErrNotFound) {
					t.Fatalf("err = %v, want ErrNotFound", err)
				}
			}},
		{name: "ErrHookUnavailable", method: "game:move", data: 1, wantSent: "1",
			answer: map[string]any{"ok": false, "problem": map[string]any{"type": tandem.ProblemBase + "hook-unavailable", "title": "Hook unavailable", "status": 503}},
			check: func(t *testing.T, err error) {
				var pe *tandem.ProblemError
				if !errors.As(err, &pe) || pe.Slug() != "hook-unavailable" {
					t.Fatalf("err = %v, want a hook-unavailable problem", err)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := newScriptServer(t)
			conn := connect(t, newClient(t, ss.URL))
			sc := ss.accept(t)
			type result struct {
				data json.RawMessage
				err  error
			}
			done := make(chan result, 1)
			ctx := testContext(t)
			go func() {
				data, err := conn.RPC(ctx, tt.method, tt.data)
				done <- result{data, err}
			}()
			f := sc.expect("rpc")
			if f.Method != tt.method || string(f.Data) != tt.wantSent {
				t.Errorf("rpc frame %s, want method %s and data %s", f.Raw, tt.method, tt.wantSent)
			}
			if tt.wantSent == "" && strings.Contains(f.Raw, `"data"`) {
				t.Errorf("rpc frame %s carries data, want none", f.Raw)
			}
			answer := map[string]any{"type": "reply", "ref": f.Ref}
			for k, v := range tt.answer {
				answer[k] = v
			}
			sc.send(answer)
			r := <-done
			if tt.check != nil {
				tt.check(t, r.err)
				return
			}
			if r.err != nil {
				t.Fatal(r.err)
			}
			if string(r.data) != tt.want {
				t.Errorf("result %s, want %s", r.data, tt.want)
			}
		})
	}
}

// TestRPCContextDone gives up on an RPC when its context ends; the late
// reply is dropped and the Conn carries on.
func TestRPCContextDone(t *testing.T) {
	ss := newScriptServer(t)
	conn := connect(t, newClient(t, ss.URL))
	sc := ss.accept(t)
	ctx, cancel := context.WithCancel(testContext(t))
	done := make(chan error, 1)
	go func() {
		_, err := conn.RPC(ctx, "game:slow", nil)
		done <- err
	}()
	slow := sc.expect("rpc")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	sc.reply(slow.Ref, map[string]any{"data": "late"})

	go func() {
		data, err := conn.RPC(testContext(t), "game:fast", nil)
		if err == nil && string(data) != `"fast"` {
			err = fmt.Errorf("result %s, want \"fast\"", data)
		}
		done <- err
	}()
	f := sc.expect("rpc")
	sc.reply(f.Ref, map[string]any{"data": "fast"})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRPCConcurrentOutOfOrder has many RPCs in flight on one connection:
// the server takes every one before answering any, then answers them in a
// random order, and each caller gets its own result.
func TestRPCConcurrentOutOfOrder(t *testing.T) {
	const n = 64
	ss := newScriptServer(t)
	conn := connect(t, newClient(t, ss.URL))
	sc := ss.accept(t)
	ctx := testContext(t)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			data, err := conn.RPC(ctx, "calc:double", i)
			if err == nil && string(data) != fmt.Sprint(2*i) {
				err = fmt.Errorf("rpc %d: result %s, want %d", i, data, 2*i)
			}
			errs <- err
		}()
	}
	calls := make([]clientFrame, 0, n)
	refs := map[string]bool{}
	for range n {
		f := sc.expect("rpc")
		if refs[f.Ref] {
			t.Fatalf("ref %s used twice", f.Ref)
		}
		refs[f.Ref] = true
		calls = append(calls, f)
	}
	rand.Shuffle(len(calls), func(i, j int) { calls[i], calls[j] = calls[j], calls[i] })
	for _, f := range calls {
		var x int
		if err := json.Unmarshal(f.Data, &x); err != nil {
			t.Fatalf("rpc frame %s: %v", f.Raw, err)
		}
		sc.reply(f.Ref, map[string]any{"data": 2 * x})
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestRPCConnectionLost drops the connection under an RPC the server has
// received: the call fails with ErrConnectionLost and is not sent again on
// the next connection.
func TestRPCConnectionLost(t *testing.T) {
	tests := []struct {
		name string
		end  func(*scriptConn)
	}{
		{"Dropped", (*scriptConn).drop},
		{"GoingAway", func(sc *scriptConn) { sc.closeWith(tandem.CloseGoingAway, "shutting down") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := newScriptServer(t)
			conn := connect(t, newClient(t, ss.URL))
			sc := ss.accept(t)
			ctx := testContext(t)
			done := make(chan error, 1)
			go func() {
				_, err := conn.RPC(ctx, "game:move", map[string]string{"to": "e4"})
				done <- err
			}()
			sc.expect("rpc")
			tt.end(sc)
			if err := <-done; !errors.Is(err, tandem.ErrConnectionLost) {
				t.Fatalf("err = %v, want ErrConnectionLost", err)
			}

			// The next connection sees the ping sent after the failure,
			// and no rpc before it.
			sc2 := ss.accept(t)
			pinged := make(chan error, 1)
			go func() {
				_, err := conn.Ping(ctx)
				pinged <- err
			}()
			f := sc2.expect("ping")
			sc2.reply(f.Ref, map[string]any{})
			if err := <-pinged; err != nil {
				t.Fatal(err)
			}
		})
	}
}
