package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/gen/client"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/stream"
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
	pr, err := s.Client.ChannelPresenceWithResponse(context.Background(), channel)
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

type mirrorEntry struct {
	rev  int64
	data string
}

// chaosClient is one reconnecting WebSocket client. Its goroutine owns
// every field; the test reads them after it ends.
type chaosClient struct {
	id            int
	url           string
	coll, channel string
	v             *specval.AsyncAPI
	t             *testing.T
	// minLife and maxLife bound a connection's life before its reset.
	minLife, maxLife time.Duration

	mirror   map[string]mirrorEntry
	synced   bool   // the mirror is complete at resCursor
	resCur   string // resume point of the resource subscription
	lastRev  int64
	chCur    string // resume point of the channel subscription
	lastOff  int64
	resets   int
	events   int
	messages int

	conn *websocket.Conn
	tcp  *net.TCPConn
}

func (c *chaosClient) errorf(format string, args ...any) {
	c.t.Errorf("client %d: %s", c.id, fmt.Sprintf(format, args...))
}

// run connects, follows both topics, and reconnects after each reset
// until the writers have stopped and it has caught up with finalPos.
func (c *chaosClient) run(finalSet <-chan struct{}, finalPos func() (rev, off int64)) {
	for {
		calm := false
		select {
		case <-finalSet:
			calm = true
		default:
		}
		if !c.connect() {
			return
		}
		var dropped atomic.Bool
		timer := time.NewTimer(time.Hour)
		if !calm {
			// Reset the TCP connection at a random moment: no close frame,
			// the server sees ECONNRESET.
			tcp := c.tcp
			timer = time.AfterFunc(c.minLife+rand.N(c.maxLife-c.minLife), func() {
				dropped.Store(true)
				_ = tcp.SetLinger(0)
				_ = tcp.Close()
			})
		}
		caughtUp := func() bool {
			if !calm {
				return false
			}
			rev, off := finalPos()
			return c.synced && c.lastRev >= rev && c.lastOff >= off
		}
		for !caughtUp() {
			if calm {
				_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
			}
			_, b, err := c.conn.ReadMessage()
			if err != nil {
				if dropped.Load() {
					break
				}
				c.errorf("read: %v (synced %v, rev %d, off %d)", err, c.synced, c.lastRev, c.lastOff)
				return
			}
			if !c.apply(b) {
				return
			}
		}
		timer.Stop()
		if dropped.Load() {
			c.resets++
			continue
		}
		return // caught up
	}
}

// connect dials, subscribes to both topics (snapshot the first time and
// until a snapshot completes, else resume) and reads both replies.
func (c *chaosClient) connect() bool {
	var tcp *net.TCPConn
	d := websocket.Dialer{
		HandshakeTimeout: 20 * time.Second,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err == nil {
				tcp = conn.(*net.TCPConn)
			}
			return conn, err
		},
	}
	conn, resp, err := d.Dial(c.url, nil)
	if err != nil {
		c.errorf("dial: %v (%v)", err, resp)
		return false
	}
	c.conn, c.tcp = conn, tcp
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	if f, ok := c.read(); !ok || f["type"] != "welcome" {
		c.errorf("first frame %v", f)
		return false
	}
	resSub := map[string]any{"type": "subscribe", "ref": "r", "topic": "collections/" + c.coll + "/resources"}
	if c.synced {
		resSub["since"] = c.resCur
	} else {
		resSub["snapshot"] = true
		c.mirror = map[string]mirrorEntry{}
	}
	chSub := map[string]any{"type": "subscribe", "ref": "c", "topic": "channels/" + c.channel + "/messages", "meta": map[string]any{"client": c.id}}
	if c.chCur != "" {
		chSub["since"] = c.chCur
	}
	for _, f := range []map[string]any{resSub, chSub} {
		if err := conn.WriteJSON(f); err != nil {
			c.errorf("subscribe: %v", err)
			return false
		}
	}
	// Replies come first for each subscription; events of the first may
	// precede the second reply.
	for replies := 0; replies < 2; {
		_, b, err := conn.ReadMessage()
		if err != nil {
			c.errorf("reading replies: %v", err)
			return false
		}
		f, ok := c.decode(b)
		if !ok {
			return false
		}
		if f["type"] != "reply" {
			if !c.apply(b) {
				return false
			}
			continue
		}
		replies++
		if f["ok"] != true {
			c.errorf("subscribe refused: %v", f)
			return false
		}
		body := f["body"].(map[string]any)
		cur := body["cursor"].(string)
		switch f["ref"] {
		case "r":
			want := "snapshot"
			if c.synced {
				want = "since"
			}
			if body["start"] != want {
				c.errorf("resource subscribe start %v, want %s", body["start"], want)
				return false
			}
		case "c":
			if c.chCur == "" {
				c.chCur, c.lastOff = cur, c.pos(cur)
			} else if body["start"] != "since" || cur != c.chCur {
				c.errorf("channel resume reply %v, want since %s", body, c.chCur)
				return false
			}
		}
	}
	return true
}

func (c *chaosClient) read() (map[string]any, bool) {
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		c.errorf("read: %v", err)
		return nil, false
	}
	return c.decode(b)
}

func (c *chaosClient) decode(b []byte) (map[string]any, bool) {
	if err := c.v.ValidateServerFrame(b); err != nil {
		c.errorf("frame violates spec/asyncapi.yaml: %v\n%s", err, b)
		return nil, false
	}
	var f map[string]any
	if err := json.Unmarshal(b, &f); err != nil {
		c.errorf("frame is not JSON: %s", b)
		return nil, false
	}
	return f, true
}

func (c *chaosClient) pos(cursor string) int64 {
	cur, err := stream.ParseCursor(cursor)
	if err != nil {
		c.errorf("cursor %q: %v", cursor, err)
	}
	return cur.Pos
}

// apply folds one frame into the client's state and checks ordering:
// resource revisions and channel offsets must each be contiguous.
func (c *chaosClient) apply(b []byte) bool {
	f, ok := c.decode(b)
	if !ok {
		return false
	}
	topic, _ := f["topic"].(string)
	isChannel := strings.HasPrefix(topic, "channels/")
	switch f["type"] {
	case "event":
		cur := f["cursor"].(string)
		if isChannel {
			off := int64(f["message"].(map[string]any)["offset"].(float64))
			if off != c.lastOff+1 {
				c.errorf("channel message offset %d after %d (duplicate, gap or reorder)", off, c.lastOff)
				return false
			}
			c.lastOff, c.chCur = off, cur
			c.messages++
			return true
		}
		e := entryFromFrame(f)
		if e.Event == "resource.snapshot" {
			if c.synced {
				c.errorf("snapshot event after synced")
				return false
			}
			c.mirror[e.ID] = mirrorEntry{rev: e.Rev, data: e.Data}
			return true
		}
		if !c.synced {
			c.errorf("live event %v before synced", e)
			return false
		}
		if e.Rev != c.lastRev+1 {
			c.errorf("resource revision %d after %d (duplicate, gap or reorder)", e.Rev, c.lastRev)
			return false
		}
		c.lastRev, c.resCur = e.Rev, cur
		c.events++
		if e.Event == "resource.deleted" {
			delete(c.mirror, e.ID)
		} else {
			c.mirror[e.ID] = mirrorEntry{rev: e.Rev, data: e.Data}
		}
	case "synced":
		c.synced = true
		c.resCur = f["cursor"].(string)
		c.lastRev = c.pos(c.resCur)
	case "bookmark":
		cur := f["cursor"].(string)
		p := c.pos(cur)
		if isChannel {
			if p != c.lastOff {
				c.errorf("channel bookmark at %d, last message %d", p, c.lastOff)
				return false
			}
			c.chCur = cur
		} else if c.synced {
			if p != c.lastRev {
				c.errorf("resource bookmark at %d, last event %d", p, c.lastRev)
				return false
			}
			c.resCur = cur
		}
	case "presence":
	default:
		c.errorf("unexpected frame %s", b)
		return false
	}
	return true
}

// leave ends the client's connection: a close frame for even clients, a
// TCP reset for odd ones.
func (c *chaosClient) leave() {
	if c.conn == nil {
		return
	}
	if c.id%2 == 0 {
		_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(time.Second))
		_ = c.conn.Close()
		return
	}
	_ = c.tcp.SetLinger(0)
	_ = c.tcp.Close()
}

// serverGauges are the /metrics values that must return to baseline.
type serverGauges struct {
	conns, subs, keys, goroutines float64
}

// waitMetrics scrapes /metrics until the gauges are at base (connections
// and subscriptions zero, hub keys at base, goroutines within a small
// slack of base) or the deadline passes. With base nil it waits for the
// goroutine count to settle and returns the gauges as the baseline.
func waitMetrics(t *testing.T, s *testServer, within time.Duration, base *serverGauges) *serverGauges {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	scrape := func() serverGauges {
		resp, err := hc.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatalf("metrics: %v", err)
		}
		defer resp.Body.Close()
		var sb strings.Builder
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			sb.Write(buf[:n])
			if err != nil {
				break
			}
		}
		m := parseMetrics(sb.String())
		return serverGauges{conns: m["tandem_ws_connections"], subs: m["tandem_ws_subscriptions"], keys: m["tandem_hub_keys"], goroutines: m["go_goroutines"]}
	}
	deadline := time.Now().Add(within)
	var g, prev serverGauges
	for {
		g = scrape()
		if base == nil {
			if g == prev && g.conns == 0 && g.subs == 0 {
				return &g
			}
		} else if g.conns == 0 && g.subs == 0 && g.keys == base.keys && g.goroutines <= base.goroutines+goroutineSlack {
			t.Logf("back to baseline: %+v (baseline %+v)", g, *base)
			return &g
		}
		if time.Now().After(deadline) {
			break
		}
		prev = g
		time.Sleep(100 * time.Millisecond)
	}
	if base == nil {
		t.Fatalf("metrics never settled: %+v", g)
	}
	t.Fatalf("leak: gauges %+v did not return to baseline %+v (goroutine slack %d) within %v", g, *base, goroutineSlack, within)
	return nil
}

// goroutineSlack absorbs goroutines that come and go independently of the
// clients (HTTP keep-alive connections of the test's own client, timers).
// A leak of even one goroutine per client would exceed it by far.
const goroutineSlack = 15

// parseMetrics reads unlabelled samples of the Prometheus text format.
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(text, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, " ")
		if !ok || strings.Contains(name, "{") {
			continue
		}
		if f, err := strconv.ParseFloat(strings.TrimSpace(val), 64); err == nil {
			out[name] = f
		}
	}
	return out
}
