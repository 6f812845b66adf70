// Tests of the server disconnecting a connection (a disconnect frame, close
// code 4003) against the scripted server.

package gosdk_test

import (
	"errors"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// TestDisconnect closes a connection with 4003, after a disconnect frame
// or without one, while a subscription runs and an RPC is in flight. With
// reconnect false the Conn ends with a *DisconnectedError; otherwise it
// reconnects and resumes the subscription from its cursor.
func TestDisconnect(t *testing.T) {
	tests := []struct {
		name      string
		frame     map[string]any // nil: close without a disconnect frame
		reconnect bool
	}{
		{"ReconnectFalse", map[string]any{"type": "disconnect", "code": 4003, "reason": "kicked by an operator", "reconnect": false}, false},
		{"ReconnectTrue", map[string]any{"type": "disconnect", "code": 4003, "reason": "moving you to another node", "reconnect": true}, true},
		{"WithoutReason", map[string]any{"type": "disconnect", "code": 4003, "reconnect": false}, false},
		{"CloseWithoutFrame", nil, true},
	}
	const topic = "channels/chat:lobby/messages"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := newScriptServer(t)
			opt, states := statusChan()
			conn := connect(t, newClient(t, ss.URL, opt))
			sc := ss.accept(t)
			sub := sc.subscribe(conn, topic, nil, "c1")
			sc.send(messageEvent(topic, "c2", 1, `{"text":"hi"}`))
			if ev := next(t, sub); ev.Cursor != "c2" {
				t.Fatalf("event cursor %s, want c2", ev.Cursor)
			}
			ctx := testContext(t)
			rpcDone := make(chan error, 1)
			go func() {
				_, err := conn.RPC(ctx, "game:move", nil)
				rpcDone <- err
			}()
			sc.expect("rpc")

			var reason string
			if tt.frame != nil {
				reason, _ = tt.frame["reason"].(string)
				sc.send(tt.frame)
			}
			sc.closeWith(tandem.CloseDisconnected, "disconnected")

			// The RPC in flight fails, and says why.
			err := <-rpcDone
			if !errors.Is(err, tandem.ErrConnectionLost) {
				t.Errorf("rpc err = %v, want ErrConnectionLost", err)
			}
			var de *tandem.DisconnectedError
			if tt.frame != nil && (!errors.As(err, &de) || de.Reason != reason || de.Reconnect != tt.reconnect) {
				t.Errorf("rpc err = %v, want the disconnect frame's *DisconnectedError", err)
			}

			if !tt.reconnect {
				select {
				case <-conn.Done():
				case <-time.After(wait):
					t.Fatalf("the Conn did not end within %v", wait)
				}
				err := conn.Err()
				if !errors.Is(err, tandem.ErrDisconnected) || !errors.As(err, &de) || de.Reason != reason || de.Reconnect {
					t.Fatalf("Err() = %#v, want a *DisconnectedError with reason %q", err, reason)
				}
				if err := endedSub(t, sub); !errors.Is(err, tandem.ErrDisconnected) {
					t.Errorf("subscription err = %v, want ErrDisconnected", err)
				}
				st := waitStatus(t, states, "closed", func(s tandem.Status) bool { return s.State == tandem.StateClosed })
				if !errors.Is(st.Err, tandem.ErrDisconnected) {
					t.Errorf("closed status err = %v, want ErrDisconnected", st.Err)
				}
				if _, err := conn.RPC(ctx, "game:move", nil); !errors.Is(err, tandem.ErrDisconnected) {
					t.Errorf("rpc after the end: err = %v, want ErrDisconnected", err)
				}
				// Done is closed once the reconnect loop has returned, so
				// any reconnect would have been accepted by now.
				ss.noMoreConnections(t)
				return
			}

			st := waitStatus(t, states, "disconnected", func(s tandem.Status) bool { return s.State == tandem.StateDisconnected })
			if tt.frame != nil {
				if !errors.As(st.Err, &de) || de.Reason != reason || !de.Reconnect {
					t.Errorf("disconnected status err = %v, want the disconnect frame's *DisconnectedError", st.Err)
				}
			} else {
				var ce *websocket.CloseError
				if !errors.As(st.Err, &ce) || ce.Code != tandem.CloseDisconnected {
					t.Errorf("disconnected status err = %v, want close code 4003", st.Err)
				}
			}
			sc2 := ss.accept(t)
			f := sc2.expect("subscribe")
			if f.Topic != topic || f.Since != "c2" {
				t.Fatalf("resubscribe %s, want %s since c2", f.Raw, topic)
			}
			sc2.answerSubscribe(f, "c2")
			sc2.send(messageEvent(topic, "c3", 2, `{"text":"back"}`))
			if ev := next(t, sub); ev.Cursor != "c3" {
				t.Fatalf("event cursor %s, want c3", ev.Cursor)
			}
			if err := conn.Err(); err != nil {
				t.Errorf("Err() = %v while running", err)
			}
		})
	}
}
