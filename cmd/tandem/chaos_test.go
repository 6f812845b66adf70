package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// TestChaosReconnects: 200 WebSocket clients follow a collection (snapshot,
// then resume by cursor) and a channel while writers run; each client's
// TCP connection is reset (SO_LINGER 0, no close frame) at random moments
// and it reconnects with its cursors. At the end every client's mirror
// equals the store, every resource change and channel message arrived
// exactly once and in order (revisions and offsets are contiguous), and
// after the clients leave the server's connection, subscription, hub and
// goroutine gauges return to their baseline.
func TestChaosReconnects(t *testing.T) {
	s := startServer(t, "--bookmark-interval", "300ms", "--channel-history", "100000")
	runChaos(t, s, chaosConfig{clients: 200, duration: 6 * time.Second, writers: 3, minLife: 200 * time.Millisecond, maxLife: 1200 * time.Millisecond})
}

// chaosConfig shapes a chaos run.
type chaosConfig struct {
	clients  int
	duration time.Duration
	writers  int
	// Each connection is reset after a random lifetime in [minLife, maxLife).
	minLife, maxLife time.Duration
	// during, when set, runs alongside the load until ctx ends (extra load,
	// measurements).
	during func(ctx context.Context)
}

// runChaos drives the chaos load against s for cfg.duration, then checks
// that every client converged on the store and the channel with nothing
// lost, duplicated or reordered, and that the server's gauges return to
// their baseline once the clients leave.
func runChaos(t *testing.T, s *testServer, cfg chaosConfig) {
	const (
		coll    = "chaos"
		channel = "chaos:room"
	)
	s.mkcoll(t, coll)
	for i := 0; i < 40; i++ {
		s.put(t, coll, fmt.Sprintf("k%02d", i), `{"n":0}`, map[string]string{"seed": "1"})
	}
	s.publish(t, channel, `{"seed":true}`)
	base := waitMetrics(t, s, 10*time.Second, nil)

	v := asyncValidator(t)
	ctx, stopWriters := context.WithCancel(context.Background())
	var writers sync.WaitGroup
	for w := 0; w < cfg.writers; w++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			chaosWriter(ctx, t, s, coll, w)
		}()
	}
	var published atomic.Int64
	writers.Add(1)
	go func() {
		defer writers.Done()
		for ctx.Err() == nil {
			r, err := s.Client.PublishMessageWithResponse(context.Background(), channel, nil, client.MessagePublish{Data: json.RawMessage(`{"n":` + strconv.FormatInt(published.Load(), 10) + `}`)})
			if err != nil || r.StatusCode() != 201 {
				t.Errorf("publish: %v %v", err, r.Status())
				return
			}
			published.Add(1)
			time.Sleep(15 * time.Millisecond)
		}
	}()
	if cfg.during != nil {
		writers.Add(1)
		go func() {
			defer writers.Done()
			cfg.during(ctx)
		}()
	}

	// finalRev and finalOff are set when the writers have stopped; the
	// clients then catch up to them without further resets.
	var final struct {
		sync.Mutex
		set      chan struct{}
		rev, off int64
	}
	final.set = make(chan struct{})
	cs := make([]*chaosClient, cfg.clients)
	var wg sync.WaitGroup
	for i := range cs {
		cs[i] = &chaosClient{id: i, url: "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/ws", coll: coll, channel: channel, v: v, t: t, minLife: cfg.minLife, maxLife: cfg.maxLife}
		wg.Add(1)
		go func(c *chaosClient) {
			defer wg.Done()
			c.run(final.set, func() (int64, int64) { final.Lock(); defer final.Unlock(); return final.rev, final.off })
		}(cs[i])
	}
	time.Sleep(cfg.duration)
	stopWriters()
	writers.Wait()
	lim := 1000
	list, err := s.Client.ListResourcesWithResponse(context.Background(), coll, &client.ListResourcesParams{Limit: &lim})
	if err != nil || list.StatusCode() != 200 {
		t.Fatalf("list: %v", err)
	}
	hist := channelTail(t, s, channel)
	final.Lock()
	final.rev, final.off = list.JSON200.Revision, hist
	final.Unlock()
	close(final.set)
	wg.Wait()
	if t.Failed() {
		return
	}

	store := map[string]mirrorEntry{}
	for _, r := range list.JSON200.Items {
		store[r.Id] = mirrorEntry{rev: r.Revision, data: canonJSON(r.Data)}
	}
	var resets, events, messages int
	for _, c := range cs {
		resets += c.resets
		events += c.events
		messages += c.messages
		if c.resets == 0 {
			t.Errorf("client %d was never reset", c.id)
		}
		if len(c.mirror) != len(store) {
			t.Errorf("client %d mirror has %d resources, store %d", c.id, len(c.mirror), len(store))
		}
		for id, want := range store {
			if got := c.mirror[id]; got != want {
				t.Errorf("client %d: %s = %+v, store %+v", c.id, id, got, want)
			}
		}
		if c.lastOff != hist {
			t.Errorf("client %d: last message offset %d, channel at %d", c.id, c.lastOff, hist)
		}
	}
	t.Logf("%d clients, %d TCP resets, %d resource events, %d channel messages delivered; store at revision %d, channel at offset %d (%d published)",
		cfg.clients, resets, events, messages, list.JSON200.Revision, hist, published.Load())

	// Everyone leaves: half with a close frame, half with another reset.
	for _, c := range cs {
		c.leave()
	}
	waitMetrics(t, s, 20*time.Second, base)
	runtime.KeepAlive(cs) // no finalizer closes a forgotten connection for us
	pr, err := s.Client.ChannelPresenceWithResponse(context.Background(), channel, nil)
	if err != nil || pr.StatusCode() != 200 || len(pr.JSON200.Members) != 0 {
		t.Errorf("presence after everyone left: %v %s", err, pr.Body)
	}
}

// chaosWriter replaces, patches and deletes k00…k49 until ctx ends.
func chaosWriter(ctx context.Context, t *testing.T, s *testServer, coll string, w int) {
	for i := 0; ctx.Err() == nil; i++ {
		id := fmt.Sprintf("k%02d", rand.IntN(50))
		var status int
		if rand.IntN(8) == 0 {
			r, err := s.Client.DeleteResourceWithResponse(context.Background(), coll, id, nil)
			if err != nil {
				t.Errorf("delete: %v", err)
				return
			}
			status = r.StatusCode()
			if status == 404 {
				status = 204
			}
		} else {
			r, err := s.Client.ReplaceResourceWithResponse(context.Background(), coll, id, nil, client.ResourceReplace{Data: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))})
			if err != nil {
				t.Errorf("put: %v", err)
				return
			}
			status = r.StatusCode()
		}
		if status/100 != 2 {
			t.Errorf("write %s: status %d", id, status)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// channelTail returns the offset of the channel's newest message.
func channelTail(t *testing.T, s *testServer, channel string) int64 {
	t.Helper()
	lim := 1000
	var since *string
	var last int64
	for {
		h, err := s.Client.ChannelHistoryWithResponse(context.Background(), channel, &client.ChannelHistoryParams{Since: since, Limit: &lim})
		if err != nil || h.StatusCode() != 200 {
			t.Fatalf("history: %v %s", err, h.Body)
		}
		if len(h.JSON200.Items) == 0 {
			return last
		}
		for _, m := range h.JSON200.Items {
			last = m.Offset
		}
		c := h.JSON200.Items[len(h.JSON200.Items)-1].Cursor
		since = &c
	}
}
