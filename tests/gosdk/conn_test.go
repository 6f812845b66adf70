// Tests of a Conn: snapshot then live events, publishing and presence,
// refused requests, and the reconnect backoff.

package gosdk_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

func TestSubscribeSnapshotThenLive(t *testing.T) {
	srv := StartServer(t)
	c := newClient(t, srv.URL)
	conn := connect(t, c)
	ctx := testContext(t)
	tests := []struct {
		name     string
		callback bool
	}{
		{"Channel", false},
		{"Callback", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			coll := "snap-" + tt.name
			if err := c.EnsureCollection(ctx, coll); err != nil {
				t.Fatal(err)
			}
			put(t, c, coll, "a", map[string]int{"n": 1})
			put(t, c, coll, "b", map[string]int{"n": 2})

			var sub *tandem.Subscription
			var events <-chan tandem.Event
			var err error
			if tt.callback {
				ch := make(chan tandem.Event, 100)
				sub, err = conn.SubscribeFunc(ctx, tandem.CollectionTopic(coll), &tandem.SubscribeOptions{Snapshot: true}, func(ev tandem.Event) { ch <- ev })
				events = ch
			} else {
				sub, err = conn.Subscribe(ctx, tandem.CollectionTopic(coll), &tandem.SubscribeOptions{Snapshot: true})
				if sub != nil {
					events = sub.Events()
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			recv := func() tandem.Event {
				t.Helper()
				select {
				case ev := <-events:
					return ev
				case <-time.After(wait):
					t.Fatal("no event")
					return tandem.Event{}
				}
			}
			want := []string{`resource.snapshot a {"n":1}`, `resource.snapshot b {"n":2}`, "synced"}
			for _, w := range want {
				if got := describe(recv()); got != w {
					t.Fatalf("got %q, want %q", got, w)
				}
			}
			put(t, c, coll, "c", map[string]int{"n": 3})
			if err := c.Delete(ctx, coll, "a"); err != nil {
				t.Fatal(err)
			}
			ev := recv()
			if got := describe(ev); got != `resource.created c {"n":3}` {
				t.Fatalf("got %q", got)
			}
			del := recv()
			if got := describe(del); got != `resource.deleted a {"n":1}` {
				t.Fatalf("got %q", got)
			}
			if del.Cursor == "" || del.Cursor == ev.Cursor {
				t.Fatalf("cursors %q then %q", ev.Cursor, del.Cursor)
			}
			eventually(t, "cursor of the last event", func() bool { return sub.Cursor() == del.Cursor })
			if err := sub.Close(); err != nil {
				t.Fatal(err)
			}
			<-sub.Done()
			if !errors.Is(sub.Err(), tandem.ErrClosed) {
				t.Fatalf("Err after Close = %v", sub.Err())
			}
		})
	}
}

func TestPublishAndPresence(t *testing.T) {
	srv := StartServer(t)
	ctx := testContext(t)
	alice := connect(t, newClient(t, srv.URL))
	watcher := connect(t, newClient(t, srv.URL))
	const room = "chat:lobby"

	var presence tandem.PresenceState
	pres, err := watcher.Subscribe(ctx, tandem.PresenceTopic(room), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, pres); ev.Action != "state" || len(ev.Members) != 0 {
		t.Fatalf("first presence event %s", describe(ev))
	} else {
		presence.Apply(ev)
	}
	msgs, err := alice.Subscribe(ctx, tandem.ChannelTopic(room), &tandem.SubscribeOptions{Meta: map[string]string{"name": "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	join := next(t, pres)
	if !presence.Apply(join) || join.Action != "join" {
		t.Fatalf("got %s", describe(join))
	}
	members := presence.Members()
	if len(members) != 1 || members[0].Id != alice.Welcome().ConnectionID || string(members[0].Connections[0].Meta) != `{"name":"alice"}` {
		t.Fatalf("members %+v", members)
	}

	m, err := watcher.Publish(ctx, room, map[string]string{"text": "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Cursor == "" || m.Channel != room || string(m.Data) != `{"text":"hi"}` {
		t.Fatalf("publish reply %+v", m)
	}
	got := next(t, msgs)
	if got.Event != "message" || got.Cursor != m.Cursor || got.Message.Offset != m.Offset {
		t.Fatalf("alice got %s (cursor %s), want cursor %s", describe(got), got.Cursor, m.Cursor)
	}
	rest, err := newClient(t, srv.URL).Presence(ctx, room)
	if err != nil {
		t.Fatal(err)
	}
	if len(rest.Members) != 1 || rest.Members[0].Id != members[0].Id {
		t.Fatalf("REST presence %+v", rest)
	}
	if _, err := alice.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := alice.Close(); err != nil {
		t.Fatal(err)
	}
	leave := next(t, pres)
	if !presence.Apply(leave) || leave.Action != "leave" || len(presence.Members()) != 0 {
		t.Fatalf("got %s, members %v", describe(leave), presence.Members())
	}
	if _, err := alice.Publish(ctx, room, 1); !errors.Is(err, tandem.ErrClosed) {
		t.Fatalf("Publish after Close: %v", err)
	}
	if _, err := alice.Subscribe(ctx, tandem.ChannelTopic(room), nil); !errors.Is(err, tandem.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	<-msgs.Done()
	if !errors.Is(msgs.Err(), tandem.ErrClosed) {
		t.Fatalf("subscription Err after Conn.Close: %v", msgs.Err())
	}
}

func TestErrors(t *testing.T) {
	srv := StartServer(t)
	ctx := testContext(t)
	c := newClient(t, srv.URL)
	conn := connect(t, c)
	if err := c.EnsureCollection(ctx, "present"); err != nil {
		t.Fatal(err)
	}
	subTests := []struct {
		name   string
		topic  string
		opts   *tandem.SubscribeOptions
		is     error
		status int
	}{
		{"MissingCollection", tandem.CollectionTopic("absent"), nil, tandem.ErrNotFound, 404},
		{"BadTopic", "nowhere/at/all", nil, nil, 400},
		{"MalformedCursor", tandem.CollectionTopic("present"), &tandem.SubscribeOptions{Since: "not-a-cursor"}, nil, 400},
		{"SinceWithSnapshot", tandem.CollectionTopic("present"), &tandem.SubscribeOptions{Since: "x", Snapshot: true}, nil, 0},
	}
	for _, tt := range subTests {
		t.Run("Subscribe"+tt.name, func(t *testing.T) {
			_, err := conn.Subscribe(ctx, tt.topic, tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
			var pe *tandem.ProblemError
			if tt.status != 0 && (!errors.As(err, &pe) || pe.Problem.Status != tt.status) {
				t.Fatalf("err = %v, want a problem with status %d", err, tt.status)
			}
		})
	}
	restTests := []struct {
		name string
		do   func() error
		is   error
	}{
		{"GetMissing", func() error { _, err := c.Get(ctx, "present", "nope"); return err }, tandem.ErrNotFound},
		{"PutMissingCollection", func() error { _, err := c.Put(ctx, "absent", "a", map[string]int{}, nil); return err }, tandem.ErrNotFound},
		{"DeleteMissing", func() error { return c.Delete(ctx, "present", "nope") }, tandem.ErrNotFound},
		{"CreateTwice", func() error { _, err := c.CreateCollection(ctx, "present", nil); return err }, tandem.ErrConflict},
		{"PutNotObject", func() error { _, err := c.Put(ctx, "present", "a", []int{1}, nil); return err }, nil},
	}
	for _, tt := range restTests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.do()
			if err == nil {
				t.Fatal("no error")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
	// The connection survived every refused request.
	if _, err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBackoffDelay(t *testing.T) {
	b := tandem.Backoff{Min: 100 * time.Millisecond, Max: 2 * time.Second}
	tests := []struct {
		attempt  int
		lo, high time.Duration
	}{
		{0, 50 * time.Millisecond, 100 * time.Millisecond},
		{1, 100 * time.Millisecond, 200 * time.Millisecond},
		{3, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, time.Second, 2 * time.Second},
		{60, time.Second, 2 * time.Second},
		{1000, time.Second, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.attempt), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 200 {
				d := b.Delay(tt.attempt)
				if d < tt.lo || d > tt.high {
					t.Fatalf("Delay(%d) = %v, want within [%v, %v]", tt.attempt, d, tt.lo, tt.high)
				}
				seen[d] = true
			}
			if len(seen) < 2 {
				t.Fatalf("Delay(%d) is not jittered", tt.attempt)
			}
		})
	}
}
