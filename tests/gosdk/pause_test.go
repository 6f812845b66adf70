// Tests of pausing a subscription whose application falls behind (MaxPending).

package gosdk_test

import (
	"fmt"
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// TestSlowApplicationPaused: an application that does not take its events
// does not make the SDK queue without bound. With MaxPending 8 the
// subscription is paused (unsubscribed) while the application is behind
// and resumed from the last queued event's cursor once it has caught up,
// for a resource topic and a channel: every event arrives once, in order.
func TestSlowApplicationPaused(t *testing.T) {
	// The channel's history must reach back over a pause (300 messages).
	srv := StartServer(t, "--channel-history", "1000")
	c := newClient(t, srv.URL)
	conn := connect(t, c)
	ctx := testContext(t)
	const n = 300
	tests := []struct {
		name    string
		topic   string
		produce func(i int)
		key     func(ev tandem.Event) string
	}{
		{"Resources", tandem.CollectionTopic("slow"),
			func(i int) { put(t, c, "slow", fmt.Sprintf("r%03d", i), map[string]int{"i": i}) },
			func(ev tandem.Event) string { return ev.Resource.Id }},
		{"Channel", tandem.ChannelTopic("slow-room"),
			func(i int) {
				if _, err := conn.Publish(ctx, "slow-room", map[string]int{"i": i}); err != nil {
					t.Fatal(err)
				}
			},
			func(ev tandem.Event) string { return string(ev.Message.Data) }},
	}
	if err := c.EnsureCollection(ctx, "slow"); err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := conn.Subscribe(ctx, tt.topic, &tandem.SubscribeOptions{MaxPending: 8, Buffer: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			// Nobody reads while everything is produced.
			for i := range n {
				tt.produce(i)
			}
			eventually(t, "a pause", func() bool { return sub.Pauses() > 0 })
			var got []string
			last := ""
			for len(got) < n {
				ev := next(t, sub)
				if ev.Type != tandem.TypeEvent {
					t.Fatalf("unexpected %s", describe(ev))
				}
				if ev.Cursor == last {
					t.Fatalf("cursor %s twice", ev.Cursor)
				}
				last = ev.Cursor
				got = append(got, tt.key(ev))
			}
			for i, k := range got {
				want := fmt.Sprintf("r%03d", i)
				if tt.name == "Channel" {
					want = fmt.Sprintf(`{"i":%d}`, i)
				}
				if k != want {
					t.Fatalf("event %d is %s, want %s (%d pauses)", i, k, want, sub.Pauses())
				}
			}
			select {
			case ev := <-sub.Events():
				t.Fatalf("an event after the last one: %s", describe(ev))
			case <-time.After(200 * time.Millisecond):
			}
			t.Logf("%d events in order after %d pauses", n, sub.Pauses())
		})
	}
}
