package tandem_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/gen/client"
	tandem "github.com/tandemhq/tandem/sdk/go"
)

// wait is how long a test waits for something that should happen; it
// bounds hangs, it is not a speed assertion.
const wait = 30 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func connect(t *testing.T, c *tandem.Client) *tandem.Conn {
	t.Helper()
	conn, err := c.Connect(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// next returns the next event of sub or fails after wait.
func next(t *testing.T, sub *tandem.Subscription) tandem.Event {
	t.Helper()
	select {
	case ev, ok := <-sub.Events():
		if !ok {
			t.Fatalf("subscription ended: %v", sub.Err())
		}
		return ev
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
		return tandem.Event{}
	}
}

// eventually polls cond until it holds or fails after wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func put(t *testing.T, c *tandem.Client, coll, id string, data any) *client.Resource {
	t.Helper()
	r, err := c.Put(testContext(t), coll, id, data, nil)
	if err != nil {
		t.Fatalf("put %s/%s: %v", coll, id, err)
	}
	return r
}

func describe(ev tandem.Event) string {
	switch ev.Type {
	case tandem.TypeEvent:
		if ev.Resource != nil {
			return ev.Event + " " + ev.Resource.Id + " " + string(ev.Resource.Data)
		}
		return ev.Event + " " + string(ev.Message.Data)
	case tandem.TypePresence:
		ids := []string{}
		for _, m := range ev.Members {
			ids = append(ids, m.Id)
		}
		return fmt.Sprintf("presence %s %v", ev.Action, ids)
	}
	return ev.Type
}

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

// statusLog records a client's connection states.
type statusLog struct {
	mu     sync.Mutex
	states []tandem.Status
}

func (l *statusLog) record(s tandem.Status) {
	l.mu.Lock()
	l.states = append(l.states, s)
	l.mu.Unlock()
}

func (l *statusLog) count(st tandem.State) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.states {
		if s.State == st {
			n++
		}
	}
	return n
}

// TestMirrorAcrossServerRestart keeps a mirror of a collection while a
// writer changes it and the server is killed and restarted on the same
// data directory and port: afterwards the mirror equals the server's state,
// and the raw event stream saw every acknowledged write exactly once, in
// revision order.
func TestMirrorAcrossServerRestart(t *testing.T) {
	tests := []struct {
		name string
		stop func(*Server, *testing.T)
	}{
		{"SIGKILL", (*Server).Kill},
		{"SIGTERM", (*Server).Stop},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := StartServer(t)
			status := &statusLog{}
			c := newClient(t, srv.URL, tandem.WithStatus(status.record))
			ctx := testContext(t)
			const coll = "orders"
			if err := c.EnsureCollection(ctx, coll); err != nil {
				t.Fatal(err)
			}
			for i := range 5 {
				put(t, c, coll, fmt.Sprintf("o-%d", i), map[string]int{"v": -1})
			}
			conn := connect(t, c)
			var resets int
			var mu sync.Mutex
			mirror, err := conn.Mirror(ctx, coll, &tandem.MirrorOptions{OnEvent: func(_ *tandem.Mirror, ev tandem.Event) {
				if ev.Type == tandem.TypeReset {
					mu.Lock()
					resets++
					mu.Unlock()
				}
			}})
			if err != nil {
				t.Fatal(err)
			}
			if err := mirror.WaitSynced(ctx); err != nil {
				t.Fatal(err)
			}
			// A Conn holds one subscription per topic and selector, as the
			// server does: the raw stream gets a connection of its own.
			raw, err := connect(t, c).Subscribe(ctx, tandem.CollectionTopic(coll), &tandem.SubscribeOptions{Buffer: 10000})
			if err != nil {
				t.Fatal(err)
			}
			var seen []int64
			var seenMu sync.Mutex
			go func() {
				for ev := range raw.Events() {
					if ev.Type == tandem.TypeEvent && ev.Resource != nil {
						seenMu.Lock()
						seen = append(seen, ev.Resource.Revision)
						seenMu.Unlock()
					}
				}
			}()

			// The writer retries every operation until the server takes it.
			const total = 300
			var acked []int64
			var ackMu sync.Mutex
			progress := make(chan int, total)
			writerDone := make(chan error, 1)
			go func() {
				for i := range total {
					id := fmt.Sprintf("o-%d", i%23)
					for {
						var err error
						if i%7 == 6 {
							err = c.Delete(ctx, coll, id)
							if errors.Is(err, tandem.ErrNotFound) {
								err = nil
							}
						} else {
							var r *client.Resource
							if r, err = c.Put(ctx, coll, id, map[string]int{"v": i}, map[string]string{"batch": fmt.Sprint(i / 50)}); err == nil {
								ackMu.Lock()
								acked = append(acked, r.Revision)
								ackMu.Unlock()
							}
						}
						if err == nil {
							break
						}
						if ctx.Err() != nil {
							writerDone <- err
							return
						}
						time.Sleep(5 * time.Millisecond)
					}
					progress <- i
				}
				writerDone <- nil
			}()
			for i := range progress {
				if i == total/3 {
					break
				}
			}
			connectedBefore := status.count(tandem.StateConnected)
			disconnectedBefore := status.count(tandem.StateDisconnected)
			tt.stop(srv, t)
			eventually(t, "the client to notice", func() bool { return status.count(tandem.StateDisconnected) > disconnectedBefore })
			srv.Restart(t, "")
			if err := <-writerDone; err != nil {
				t.Fatalf("writer: %v", err)
			}
			items, _, err := c.List(ctx, coll, "")
			if err != nil {
				t.Fatal(err)
			}
			var maxRev int64
			for _, r := range items {
				maxRev = max(maxRev, r.Revision)
			}
			ackMu.Lock()
			for _, r := range acked {
				maxRev = max(maxRev, r)
			}
			ackMu.Unlock()
			eventually(t, "the mirror to catch up", func() bool { return mirror.Revision() >= maxRev })
			eventually(t, "the raw subscription to catch up", func() bool {
				seenMu.Lock()
				defer seenMu.Unlock()
				return len(seen) > 0 && seen[len(seen)-1] >= maxRev
			})
			if got, want := summary(mirror.Items()), summary(items); got != want {
				t.Fatalf("mirror differs from the server:\n got %s\nwant %s", got, want)
			}
			if status.count(tandem.StateConnected) <= connectedBefore {
				t.Fatalf("no reconnect recorded: %+v", status.states)
			}
			mu.Lock()
			if resets != 0 {
				t.Errorf("mirror reloaded %d times; a restart on the same data must resume", resets)
			}
			mu.Unlock()
			seenMu.Lock()
			defer seenMu.Unlock()
			set := map[int64]bool{}
			for i, r := range seen {
				if i > 0 && r <= seen[i-1] {
					t.Fatalf("revision %d after %d: duplicate or out of order", r, seen[i-1])
				}
				set[r] = true
			}
			ackMu.Lock()
			defer ackMu.Unlock()
			for _, r := range acked {
				if !set[r] {
					t.Fatalf("acknowledged write at revision %d never arrived (gap)", r)
				}
			}
			if len(acked) < total*5/7 {
				t.Fatalf("only %d writes acknowledged", len(acked))
			}
		})
	}
}

func summary(items []client.Resource) string {
	sort.Slice(items, func(i, j int) bool { return items[i].Id < items[j].Id })
	b, _ := json.Marshal(func() []any {
		out := []any{}
		for _, r := range items {
			out = append(out, []any{r.Id, r.Revision, json.RawMessage(r.Data), r.Labels})
		}
		return out
	}())
	return string(b)
}

// prepareDataDir makes a data directory holding collection coll with the
// given resources, by running a server on it once.
func prepareDataDir(t *testing.T, coll string, ids ...string) string {
	t.Helper()
	dir := t.TempDir()
	s, err := startProcess(dir, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, s.URL)
	if err := c.EnsureCollection(testContext(t), coll); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		put(t, c, coll, id, map[string]string{"from": "other"})
	}
	s.Stop(t)
	if v := s.violations(); v != "" {
		t.Errorf("spec violations:\n%s", v)
	}
	return dir
}

func TestResyncRequired(t *testing.T) {
	ctx := testContext(t)
	const coll = "things"

	t.Run("ResumeIntoAnotherStore", func(t *testing.T) {
		other := prepareDataDir(t, coll, "y")
		srv := StartServer(t)
		c := newClient(t, srv.URL)
		if err := c.EnsureCollection(ctx, coll); err != nil {
			t.Fatal(err)
		}
		put(t, c, coll, "x", map[string]int{"n": 1})
		conn := connect(t, c)
		var resets []string
		var mu sync.Mutex
		mirror, err := conn.Mirror(ctx, coll, &tandem.MirrorOptions{OnEvent: func(_ *tandem.Mirror, ev tandem.Event) {
			mu.Lock()
			resets = append(resets, ev.Type)
			mu.Unlock()
		}})
		if err != nil {
			t.Fatal(err)
		}
		if err := mirror.WaitSynced(ctx); err != nil {
			t.Fatal(err)
		}
		conn2 := connect(t, c)
		sub, err := conn2.Subscribe(ctx, tandem.CollectionTopic(coll), nil)
		if err != nil {
			t.Fatal(err)
		}
		put(t, c, coll, "x", map[string]int{"n": 2})
		if ev := next(t, sub); describe(ev) != `resource.updated x {"n":2}` {
			t.Fatalf("got %s", describe(ev))
		}
		lastCursor := sub.Cursor()

		// The server comes back on the same address with another store:
		// the cursors the client holds point into history that is gone.
		srv.Kill(t)
		srv.Restart(t, other)

		select {
		case ev, ok := <-sub.Events():
			if ok {
				t.Fatalf("unexpected event %s", describe(ev))
			}
		case <-time.After(wait):
			t.Fatal("subscription did not end")
		}
		var rr *tandem.ResyncRequiredError
		if !errors.As(sub.Err(), &rr) || !errors.Is(sub.Err(), tandem.ErrResyncRequired) {
			t.Fatalf("Err = %v, want *ResyncRequiredError", sub.Err())
		}
		if rr.Topic != tandem.CollectionTopic(coll) || rr.Cursor != lastCursor || rr.Problem.Status != 410 {
			t.Fatalf("error = %+v, want topic %s cursor %s status 410", rr, tandem.CollectionTopic(coll), lastCursor)
		}

		// The helper relists with a snapshot of the new store.
		again, err := conn2.Resync(ctx, sub)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []string{`resource.snapshot y {"from":"other"}`, "synced"} {
			if got := describe(next(t, again)); got != w {
				t.Fatalf("got %q, want %q", got, w)
			}
		}

		// The AutoResync mirror reloaded by itself.
		eventually(t, "the mirror to reload", func() bool {
			_, hasY := mirror.Get("y")
			_, hasX := mirror.Get("x")
			return hasY && !hasX && mirror.Len() == 1
		})
		mu.Lock()
		defer mu.Unlock()
		sawReset := false
		for _, typ := range resets {
			sawReset = sawReset || typ == tandem.TypeReset
		}
		if !sawReset {
			t.Fatalf("mirror events %v lack a reset", resets)
		}
	})

	t.Run("StaleSince", func(t *testing.T) {
		a := StartServer(t)
		b := StartServer(t)
		ca, cb := newClient(t, a.URL), newClient(t, b.URL)
		for _, c := range []*tandem.Client{ca, cb} {
			if err := c.EnsureCollection(ctx, coll); err != nil {
				t.Fatal(err)
			}
		}
		put(t, cb, coll, "z", map[string]int{"n": 1})
		connA := connect(t, ca)
		subA, err := connA.Subscribe(ctx, tandem.CollectionTopic(coll), nil)
		if err != nil {
			t.Fatal(err)
		}
		cursor := subA.Cursor()
		connB := connect(t, cb)
		tests := []struct {
			name    string
			opts    tandem.SubscribeOptions
			wantErr bool
		}{
			{"Error", tandem.SubscribeOptions{Since: cursor}, true},
			{"AutoResync", tandem.SubscribeOptions{Since: cursor, AutoResync: true}, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				sub, err := connB.Subscribe(ctx, tandem.CollectionTopic(coll), &tt.opts)
				if tt.wantErr {
					var rr *tandem.ResyncRequiredError
					if !errors.As(err, &rr) || rr.Cursor != cursor {
						t.Fatalf("err = %v, want *ResyncRequiredError for %s", err, cursor)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer sub.Close()
				for _, w := range []string{"reset", `resource.snapshot z {"n":1}`, "synced"} {
					if got := describe(next(t, sub)); got != w {
						t.Fatalf("got %q, want %q", got, w)
					}
				}
			})
		}
	})

	t.Run("ChannelHistoryLostOnRestart", func(t *testing.T) {
		srv := StartServer(t)
		c := newClient(t, srv.URL)
		conn := connect(t, c)
		sub, err := conn.Subscribe(ctx, tandem.ChannelTopic("news"), nil)
		if err != nil {
			t.Fatal(err)
		}
		auto, err := conn.Subscribe(ctx, tandem.ChannelTopic("news"+"-auto"), &tandem.SubscribeOptions{AutoResync: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, ch := range []string{"news", "news-auto"} {
			if _, err := conn.Publish(ctx, ch, map[string]string{"text": "before"}); err != nil {
				t.Fatal(err)
			}
		}
		next(t, sub)
		next(t, auto)
		// The in-memory broker keeps no history across a restart: the
		// channel gets a new epoch.
		srv.Kill(t)
		srv.Restart(t, "")
		if _, ok := <-sub.Events(); ok {
			t.Fatal("unexpected event")
		}
		if !errors.Is(sub.Err(), tandem.ErrResyncRequired) {
			t.Fatalf("Err = %v", sub.Err())
		}
		if got := describe(next(t, auto)); got != "reset" {
			t.Fatalf("got %q, want reset", got)
		}
		if got := describe(next(t, auto)); got != "synced" {
			t.Fatalf("got %q, want synced (empty history)", got)
		}
		if _, err := conn.Publish(ctx, "news-auto", map[string]string{"text": "after"}); err != nil {
			t.Fatal(err)
		}
		if got := describe(next(t, auto)); got != `message {"text":"after"}` {
			t.Fatalf("got %q", got)
		}
	})
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
