// Tests of what survives a reconnect: a mirror across a server restart,
// and subscriptions whose cursor the server no longer knows (resync).

package gosdk_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
	"github.com/tandemhq/tandem/sdk/go/client"
)

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
			items, _, err := c.List(ctx, coll, nil)
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
