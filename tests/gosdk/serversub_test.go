// Tests of server-side subscriptions (subscribed and unsubscribed frames)
// against the scripted server.

package gosdk_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// serverSubs returns an option that reports every server-side
// subscription on the returned channel.
func serverSubs() (tandem.Option, <-chan *tandem.Subscription) {
	ch := make(chan *tandem.Subscription, 16)
	return tandem.WithServerSubscriptions(func(s *tandem.Subscription) { ch <- s }), ch
}

func takeSub(t *testing.T, ch <-chan *tandem.Subscription) *tandem.Subscription {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(wait):
		t.Fatalf("no server-side subscription within %v", wait)
		return nil
	}
}

// TestServerSubscriptions has the server subscribe the connection to a
// topic: the SDK surfaces a Subscription that delivers that topic's frames
// (and no other subscription's), in order, until the server's unsubscribed
// ends it.
func TestServerSubscriptions(t *testing.T) {
	tests := []struct {
		name       string
		subscribed map[string]any
		frames     []map[string]any // of the subscription
		other      map[string]any   // of another topic or selector
		want       []string
		wantCursor string
	}{
		{
			name:       "ChannelMessages",
			subscribed: map[string]any{"type": "subscribed", "topic": "channels/user:ann/messages", "cursor": "m1", "start": "live"},
			frames: []map[string]any{
				messageEvent("channels/user:ann/messages", "m2", 1, `{"text":"one"}`),
				{"type": "bookmark", "topic": "channels/user:ann/messages", "cursor": "m3"},
				messageEvent("channels/user:ann/messages", "m4", 2, `{"text":"two"}`),
			},
			other:      messageEvent("channels/user:bob/messages", "b1", 1, `{"text":"not yours"}`),
			want:       []string{`message {"text":"one"}`, `message {"text":"two"}`},
			wantCursor: "m4",
		},
		{
			name:       "ResourcesWithLabels",
			subscribed: map[string]any{"type": "subscribed", "topic": "collections/orders/resources", "labels": "env=prod", "cursor": "r1", "start": "live"},
			frames: []map[string]any{
				resourceEvent("collections/orders/resources", "env=prod", "r2", "o-1", 2, `{"item":"tea"}`),
				resourceEvent("collections/orders/resources", "env=prod", "r3", "o-2", 3, `{"item":"jam"}`),
			},
			// The same topic without the selector is another subscription.
			other:      resourceEvent("collections/orders/resources", "", "r2", "o-1", 2, `{"item":"tea"}`),
			want:       []string{`resource.created o-1 {"item":"tea"}`, `resource.created o-2 {"item":"jam"}`},
			wantCursor: "r3",
		},
		{
			name:       "Presence",
			subscribed: map[string]any{"type": "subscribed", "topic": "channels/room:1/presence", "start": "live"},
			frames: []map[string]any{
				{"type": "presence", "topic": "channels/room:1/presence", "action": "state", "members": []map[string]any{
					{"id": "ann", "connections": []map[string]any{{"connectionId": "conn-7"}}}}},
				{"type": "presence", "topic": "channels/room:1/presence", "action": "leave", "members": []map[string]any{
					{"id": "ann", "connections": []map[string]any{}}}},
			},
			other: map[string]any{"type": "presence", "topic": "channels/room:2/presence", "action": "state", "members": []map[string]any{}},
			want:  []string{"presence state [ann]", "presence leave [ann]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ss := newScriptServer(t)
			opt, subs := serverSubs()
			conn := connect(t, newClient(t, ss.URL, opt))
			sc := ss.accept(t)
			sc.send(tt.subscribed)
			sub := takeSub(t, subs)
			labels, _ := tt.subscribed["labels"].(string)
			cursor, _ := tt.subscribed["cursor"].(string)
			if sub.Topic() != tt.subscribed["topic"] || sub.Labels() != labels || sub.Cursor() != cursor {
				t.Errorf("subscription %s %q at %q, want the subscribed frame's", sub.Topic(), sub.Labels(), sub.Cursor())
			}
			sc.send(tt.other)
			for _, f := range tt.frames {
				sc.send(f)
			}
			for _, want := range tt.want {
				if got := describe(next(t, sub)); got != want {
					t.Errorf("event %s, want %s", got, want)
				}
			}
			if got := sub.Cursor(); got != tt.wantCursor {
				t.Errorf("Cursor() = %q, want %q", got, tt.wantCursor)
			}
			unsub := map[string]any{"type": "unsubscribed", "topic": tt.subscribed["topic"]}
			if labels != "" {
				unsub["labels"] = labels
			}
			sc.send(unsub)
			if err := endedSub(t, sub); !errors.Is(err, tandem.ErrUnsubscribedByServer) {
				t.Errorf("Err() = %v, want ErrUnsubscribedByServer", err)
			}
			if err := conn.Err(); err != nil {
				t.Errorf("conn.Err() = %v, want the Conn running", err)
			}
		})
	}
}

// TestServerSubscriptionsEndWithConnection drops the connection under a
// server-side subscription and a client one, and has the server end another
// client subscription with unsubscribed: after the reconnect the SDK
// resubscribes only the client subscription still running.
func TestServerSubscriptionsEndWithConnection(t *testing.T) {
	const (
		kept     = "channels/chat:lobby/messages"
		ended    = "channels/chat:old/messages"
		serverMd = "channels/user:ann/messages"
	)
	ss := newScriptServer(t)
	opt, subs := serverSubs()
	conn := connect(t, newClient(t, ss.URL, opt))
	sc := ss.accept(t)
	keptSub := sc.subscribe(conn, kept, nil, "k1")
	endedClientSub := sc.subscribe(conn, ended, nil, "e1")
	sc.send(map[string]any{"type": "subscribed", "topic": serverMd, "cursor": "s1", "start": "live"})
	serverSub := takeSub(t, subs)

	sc.send(map[string]any{"type": "unsubscribed", "topic": ended})
	if err := endedSub(t, endedClientSub); !errors.Is(err, tandem.ErrUnsubscribedByServer) {
		t.Errorf("client subscription err = %v, want ErrUnsubscribedByServer", err)
	}
	sc.send(messageEvent(serverMd, "s2", 1, `{"text":"for ann"}`))
	sc.send(messageEvent(kept, "k2", 1, `{"text":"lobby"}`))
	if ev := next(t, serverSub); ev.Cursor != "s2" {
		t.Fatalf("server-side event cursor %s, want s2", ev.Cursor)
	}
	if ev := next(t, keptSub); ev.Cursor != "k2" {
		t.Fatalf("client event cursor %s, want k2", ev.Cursor)
	}

	sc.drop()
	if err := endedSub(t, serverSub); !errors.Is(err, tandem.ErrConnectionLost) {
		t.Errorf("server-side subscription err = %v, want ErrConnectionLost", err)
	}

	expectOnlyResubscribe(t, conn, ss.accept(t), keptSub, "k2")
}

// expectOnlyResubscribe checks that on the new connection sc the client
// resubscribes sub (since the cursor since) and nothing else: it answers
// that subscribe and sends an event of it, which the reader takes only
// after every resubscribe was written, then pings; no other subscribe may
// come before the ping.
func expectOnlyResubscribe(t *testing.T, conn *tandem.Conn, sc *scriptConn, sub *tandem.Subscription, since string) {
	t.Helper()
	f := sc.expect("subscribe")
	if f.Topic != sub.Topic() || f.Since != since {
		t.Fatalf("resubscribe %s, want %s since %s", f.Raw, sub.Topic(), since)
	}
	sc.answerSubscribe(f, since)
	sc.send(messageEvent(sub.Topic(), since+"-next", 1000000, `{"text":"after the reconnect"}`))
	if ev := next(t, sub); ev.Cursor != since+"-next" {
		t.Fatalf("event cursor %s, want %s-next", ev.Cursor, since)
	}
	pinged := make(chan error, 1)
	ctx := testContext(t)
	go func() {
		_, err := conn.Ping(ctx)
		pinged <- err
	}()
	p := sc.expect("ping")
	sc.reply(p.Ref, map[string]any{})
	if err := <-pinged; err != nil {
		t.Fatal(err)
	}
}

// TestServerSubscriptionPaused lets the application of a server-side
// subscription fall MaxPending (the default, 10,000) events behind: the
// SDK pauses it like any subscription (unsubscribe, then subscribe from
// the last queued event's cursor once the application has caught up), so
// every event arrives once, in order; it still ends with its connection.
func TestServerSubscriptionPaused(t *testing.T) {
	const (
		topic   = "channels/user:ann/messages"
		control = "channels/chat:lobby/messages"
		// 64 fill the Events channel and 10,000 queue behind them; one
		// more pauses the subscription.
		sent = 64 + 10000 + 20
	)
	ss := newScriptServer(t)
	opt, subs := serverSubs()
	conn := connect(t, newClient(t, ss.URL, opt))
	sc := ss.accept(t)
	controlSub := sc.subscribe(conn, control, nil, "k1")
	sc.send(map[string]any{"type": "subscribed", "topic": topic, "cursor": "m0", "start": "live"})
	sub := takeSub(t, subs)
	cursor := func(i int) string { return fmt.Sprintf("m%d", i) }
	for i := 1; i <= sent; i++ {
		sc.send(messageEvent(topic, cursor(i), i, `{}`))
	}
	f := sc.expect("unsubscribe")
	if f.Topic != topic {
		t.Fatalf("unsubscribe %s, want topic %s", f.Raw, topic)
	}
	sc.reply(f.Ref, map[string]any{})
	// The application takes every queued event; once they are all handed
	// over (some may still be in the Events channel), the SDK resumes from
	// the last one's cursor.
	var resume *clientFrame
	last := 0
	timeout := time.After(wait)
	for resume == nil || resume.Since != cursor(last) {
		select {
		case ev, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription ended: %v", sub.Err())
			}
			if ev.Cursor != cursor(last+1) {
				t.Fatalf("event %d has cursor %s, want %s", last+1, ev.Cursor, cursor(last+1))
			}
			last++
		case f, ok := <-sc.in:
			if !ok || f.Type != "subscribe" || f.Topic != topic || resume != nil {
				t.Fatalf("client sent %s (ended %v), want one subscribe of %s", f.Raw, !ok, topic)
			}
			resume = &f
		case <-timeout:
			t.Fatalf("after %d events: no resume from the last one within %v (resume: %+v)", last, wait, resume)
		}
	}
	if last < 10000 || last >= sent {
		t.Fatalf("paused after %d events, want MaxPending (10,000) queued first", last)
	}
	sc.answerSubscribe(*resume, cursor(last))
	for i := last + 1; i <= sent; i++ {
		sc.send(messageEvent(topic, cursor(i), i, `{}`))
		if ev := next(t, sub); ev.Cursor != cursor(i) {
			t.Fatalf("event %d has cursor %s, want %s", i, ev.Cursor, cursor(i))
		}
	}
	if n := sub.Pauses(); n != 1 {
		t.Errorf("Pauses() = %d, want 1", n)
	}

	sc.drop()
	if err := endedSub(t, sub); !errors.Is(err, tandem.ErrConnectionLost) {
		t.Errorf("Err() = %v, want ErrConnectionLost", err)
	}
	expectOnlyResubscribe(t, conn, ss.accept(t), controlSub, "k1")
}

// TestServerSubscriptionClosed closes a server-side subscription from the
// client (it unsubscribes) and then the Conn.
func TestServerSubscriptionClosed(t *testing.T) {
	const topic = "channels/user:ann/messages"
	ss := newScriptServer(t)
	opt, subs := serverSubs()
	conn := connect(t, newClient(t, ss.URL, opt))
	sc := ss.accept(t)
	sc.send(map[string]any{"type": "subscribed", "topic": topic, "cursor": "s1", "start": "live"})
	sub := takeSub(t, subs)
	closed := make(chan error, 1)
	go func() { closed <- sub.Close() }()
	f := sc.expect("unsubscribe")
	if f.Topic != topic {
		t.Errorf("unsubscribe %s, want topic %s", f.Raw, topic)
	}
	sc.reply(f.Ref, map[string]any{})
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := endedSub(t, sub); !errors.Is(err, tandem.ErrClosed) {
		t.Errorf("Err() = %v, want ErrClosed", err)
	}

	sc.send(map[string]any{"type": "subscribed", "topic": topic, "cursor": "s2", "start": "live"})
	sub = takeSub(t, subs)
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := endedSub(t, sub); !errors.Is(err, tandem.ErrClosed) {
		t.Errorf("after Conn.Close, Err() = %v, want ErrClosed", err)
	}
}
