package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// waitUntil polls cond every 20 ms until it holds, failing the test with
// what after within.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawSubscribe dials, subscribes to topic and hands back the connection,
// which nothing reads from then on.
func rawSubscribe(t *testing.T, s *testServer, topic string) *websocket.Conn {
	t.Helper()
	raw, _ := rawDial(t, s)
	if err := raw.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","ref":"s","topic":"`+topic+`"}`)); err != nil {
		t.Fatal(err)
	}
	if r := readReply(t, raw, "s"); r["ok"] != true {
		t.Fatalf("subscribe: %v", r)
	}
	return raw
}

// metricNow scrapes one metric of the server (0 when absent).
func metricNow(t *testing.T, s *testServer, name string) float64 {
	t.Helper()
	return parseMetrics(s.metrics(t))[name]
}

// heapObjects is the live-and-unswept heap of this process: the server
// runs in-process, so its snapshot and queue memory shows here.
func heapObjects() uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Uint64()
}

// fillCollection creates n resources of about size bytes of data each.
func fillCollection(t *testing.T, s *testServer, coll string, n, size int) {
	t.Helper()
	pad := strings.Repeat("x", size)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				s.put(t, coll, fmt.Sprintf("r%04d", i), fmt.Sprintf(`{"i":%d,"pad":%q}`, i, pad), map[string]string{"k": fmt.Sprintf("v%d", i%7)})
			}
		}(w)
	}
	wg.Wait()
}

// TestSnapshotFloodBounded is the snapshot flood of the hardening issue: a
// read-only client sends many snapshot subscriptions (each with its own
// selector) over a collection of large resources and never reads. Before,
// every snapshot was materialised whole outside any budget (GBs of heap);
// now snapshots are read page by page as the client drains, so the
// server's heap grows by at most the connections' queues plus a margin,
// the non-readers are closed as slow consumers, other clients are served
// throughout, and the memory is released after.
func TestSnapshotFloodBounded(t *testing.T) {
	s := startServer(t, "--write-timeout", "1s")
	s.mkcoll(t, "big")
	s.mkcoll(t, "control")
	const resources, size = 200, 60 << 10
	fillCollection(t, s, "big", resources, size)

	const conns, subsPerConn, queueBytes = 3, 40, 1 << 20
	base := heapObjects()
	slowBefore := metricNow(t, s, "tandem_ws_slow_consumer_closes_total")
	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := heapObjects(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	var attackers []*websocket.Conn
	for i := 0; i < conns; i++ {
		c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		attackers = append(attackers, c)
		for j := 0; j < subsPerConn; j++ {
			f := fmt.Sprintf(`{"type":"subscribe","ref":"%d","topic":"collections/big/resources","labels":"k!=z%d","snapshot":true}`, j, j)
			if err := c.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
				break // the server may already have closed it
			}
		}
	}
	// Other clients are served during the attack.
	for i := 0; i < 20; i++ {
		s.put(t, "control", "probe", fmt.Sprintf(`{"n":%d}`, i), nil)
		if r, err := s.Client.GetResourceWithResponse(t.Context(), "control", "probe", nil); err != nil || r.StatusCode() != 200 {
			t.Fatalf("control GET during the attack: %v %v", err, r.Status())
		}
	}
	waitUntil(t, 30*time.Second, "the non-reading connections to be closed as slow consumers", func() bool {
		return metricNow(t, s, "tandem_ws_slow_consumer_closes_total")-slowBefore >= conns
	})
	close(stop)
	<-sampled
	growth := int64(peak.Load()) - int64(base)
	bound := int64(conns*queueBytes + 64<<20)
	t.Logf("heap: base %.1f MiB, peak %.1f MiB, growth %.1f MiB (bound %.1f MiB)", mib(int64(base)), mib(int64(peak.Load())), float64(growth)/(1<<20), float64(bound)/(1<<20))
	if growth > bound {
		t.Fatalf("heap grew by %.1f MiB during the flood, bound %.1f MiB", float64(growth)/(1<<20), float64(bound)/(1<<20))
	}
	waitUntil(t, 20*time.Second, "subscriptions and queued bytes back to zero", func() bool {
		m := parseMetrics(s.metrics(t))
		return m["tandem_ws_subscriptions"] == 0 && m["tandem_queued_bytes"] == 0
	})
}

// TestBlockedClientResumesWithoutLoss: a subscriber whose socket blocks
// (it stops reading) is closed once a write misses --write-timeout. It
// then reads what reached it: complete events, perhaps part of one, and
// the end of the connection (or the slow-consumer error frame and 4008 if
// the socket could still carry them). Resuming from the cursor of its last
// complete event yields every later change exactly once.
func TestBlockedClientResumesWithoutLoss(t *testing.T) {
	s := startServer(t, "--write-timeout", "500ms")
	s.mkcoll(t, "b")
	slowBefore := metricNow(t, s, "tandem_ws_slow_consumer_closes_total")
	raw := rawSubscribe(t, s, "collections/b/resources")
	// Stop reading until the server has given up on the connection.
	pad := strings.Repeat("y", 32<<10)
	written := 0
	for metricNow(t, s, "tandem_ws_slow_consumer_closes_total") == slowBefore {
		s.put(t, "b", fmt.Sprintf("w%05d", written), fmt.Sprintf(`{"n":%d,"pad":%q}`, written, pad), nil)
		written++
		if written > 5000 {
			t.Fatal("the blocked client was never closed")
		}
	}
	// Read what arrived: complete events, then the end.
	var lastCursor string
	var lastRev int64
	_ = raw.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, b, err := raw.ReadMessage()
		if err != nil {
			t.Logf("blocked client's connection ended after revision %d: %v", lastRev, err)
			break
		}
		var f map[string]any
		if err := json.Unmarshal(b, &f); err != nil {
			t.Fatalf("a complete frame is not JSON: %v", err)
		}
		if f["type"] == "event" {
			rev := eventRev(f)
			if lastRev != 0 && rev != lastRev+1 {
				t.Fatalf("gap before the block: revision %d after %d", rev, lastRev)
			}
			lastRev, lastCursor = rev, f["cursor"].(string)
		}
	}
	if lastCursor == "" {
		t.Fatal("the client received no complete event")
	}
	// Resume from the last complete event: every later write arrives once.
	ws2 := s.dial(t)
	ws2.subscribe("collections/b/resources", map[string]any{"since": lastCursor})
	head := s.put(t, "b", "final", `{"n":-1}`, nil).Revision
	for rev := lastRev + 1; rev <= head; rev++ {
		if got := eventRev(ws2.nextOfType("event", 10*time.Second)); got != rev {
			t.Fatalf("resumed stream: revision %d, want %d", got, rev)
		}
	}
	if metricNow(t, s, "tandem_ws_slow_consumer_closes_total") != slowBefore+1 {
		t.Fatal("the blocked client was not counted as a slow consumer")
	}
}

// TestShutdownWithOpenStreams: SIGTERM (the run context ends) with SSE
// streams, long-polls and WebSockets open finishes in well under the
// shutdown timeout: each SSE stream ends with an error event carrying its
// cursor, each long-poll answers with its cursor, each WebSocket closes
// with 1001. Before, SSE streams and long-polls held http.Server.Shutdown
// for the whole --shutdown-timeout and were then cut.
func TestShutdownWithOpenStreams(t *testing.T) {
	const n = 100
	s := startServer(t, "--shutdown-timeout", "20s")
	s.mkcoll(t, "s")
	s.put(t, "s", "a", `{}`, nil)
	topic := "collections/s/resources"

	type sseResult struct {
		id  string
		err error
	}
	sseDone := make(chan sseResult, n)
	pollDone := make(chan sseResult, n)
	wsDone := make(chan int, n)
	var opened sync.WaitGroup
	tr := &http.Transport{MaxConnsPerHost: 0, MaxIdleConnsPerHost: 300}
	hc := &http.Client{Transport: tr}
	for i := 0; i < n; i++ {
		opened.Add(3)
		go func() { // SSE
			resp, err := hc.Get(s.URL + "/v1/events?topic=" + topic)
			if err != nil {
				opened.Done()
				sseDone <- sseResult{err: err}
				return
			}
			defer resp.Body.Close()
			r := bufio.NewReader(resp.Body)
			if _, err := r.ReadString('\n'); err != nil { // the opening comment
				opened.Done()
				sseDone <- sseResult{err: err}
				return
			}
			opened.Done()
			var ev, id string
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					sseDone <- sseResult{err: fmt.Errorf("stream ended without an error event: %w", err)}
					return
				}
				line = strings.TrimRight(line, "\n")
				switch {
				case strings.HasPrefix(line, "event: "):
					ev = line[7:]
				case strings.HasPrefix(line, "id: "):
					id = line[4:]
				case line == "" && ev == "error":
					sseDone <- sseResult{id: id}
					return
				case line == "":
					ev = ""
				}
			}
		}()
		go func(i int) { // long-poll, each on its own channel (one hub key each)
			opened.Done()
			resp, err := hc.Get(fmt.Sprintf("%s/v1/changes?wait=60s&topic=channels/lp%d/messages", s.URL, i))
			if err != nil {
				pollDone <- sseResult{err: err}
				return
			}
			defer resp.Body.Close()
			var body struct{ Cursor string }
			if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&body) != nil {
				pollDone <- sseResult{err: fmt.Errorf("long-poll answered %d", resp.StatusCode)}
				return
			}
			pollDone <- sseResult{id: body.Cursor}
		}(i)
		go func() { // WebSocket
			c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
			opened.Done()
			if err != nil {
				wsDone <- -1
				return
			}
			defer c.Close()
			for {
				if _, _, err := c.ReadMessage(); err != nil {
					wsDone <- closeCode(err)
					return
				}
			}
		}()
	}
	opened.Wait()
	waitUntil(t, 20*time.Second, "every stream to be open", func() bool {
		m := parseMetrics(s.metrics(t))
		return m["tandem_ws_connections"] >= n
	})
	waitUntil(t, 20*time.Second, "the long-polls to be waiting", func() bool {
		return metricNow(t, s, "tandem_hub_keys") >= n+1 // their channels and the SSE topic
	})
	start := time.Now()
	s.stop()
	took := time.Since(start)
	t.Logf("shutdown with %d SSE streams, %d long-polls and %d WebSockets took %v", n, n, n, took)
	if took > 5*time.Second {
		t.Errorf("shutdown took %v (timeout 20s): open streams held it", took)
	}
	for i := 0; i < n; i++ {
		if r := <-sseDone; r.err != nil || r.id == "" {
			t.Fatalf("SSE stream: id %q, %v", r.id, r.err)
		}
		if r := <-pollDone; r.err != nil || r.id == "" {
			t.Fatalf("long-poll: cursor %q, %v", r.id, r.err)
		}
		if code := <-wsDone; code != 1001 {
			t.Fatalf("WebSocket closed with %d, want 1001", code)
		}
	}
}

// TestBodyReadTimeout: a request whose body never finishes is answered
// with a 408 problem once --read-timeout passes, instead of being held
// forever; streams are not affected by the timeout.
func TestBodyReadTimeout(t *testing.T) {
	s := startServer(t, "--read-timeout", "300ms")
	s.mkcoll(t, "rt")
	// An SSE stream lives longer than the read timeout.
	st := s.sse(t, "topic=collections/rt/resources", "")
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1/collections/rt/resources HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"data\":")
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a stalled body: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "/problems/request-timeout") {
		t.Fatalf("stalled body: %d %s", resp.StatusCode, b)
	}
	time.Sleep(400 * time.Millisecond) // past the read timeout: the stream must still deliver
	r := s.put(t, "rt", "x", `{}`, nil)
	if got := eventRev(st.next("event", 10*time.Second).Data); got != r.Revision {
		t.Fatalf("SSE after the read timeout: revision %d, want %d", got, r.Revision)
	}
	var cancelled context.CancelFunc = st.cancel
	cancelled()
}

// TestQueuedBytesBudget: while the bytes queued for all clients together
// are at --max-queued-bytes, new WebSocket and SSE subscriptions are
// refused with a 503 problem; once the lagging client is gone they are
// accepted again.
func TestQueuedBytesBudget(t *testing.T) {
	const budget = 50 << 10
	s := startServer(t, "--max-queued-bytes", fmt.Sprint(budget), "--write-timeout", "5s")
	s.mkcoll(t, "q")
	rawSubscribe(t, s, "collections/q/resources")
	// The subscriber reads nothing more: fill its socket until its writer blocks and an
	// event waits in its queue, one write (and one delivery) at a time.
	pad := strings.Repeat("z", 60<<10)
	for i := 0; ; i++ {
		if i > 3000 {
			t.Fatal("the queue never held an event")
		}
		before := metricNow(t, s, "tandem_hub_deliveries_total")
		s.put(t, "q", fmt.Sprintf("r%d", i), fmt.Sprintf(`{"pad":%q}`, pad), nil)
		waitUntil(t, 10*time.Second, "the event to be queued", func() bool {
			return metricNow(t, s, "tandem_hub_deliveries_total") > before
		})
		if metricNow(t, s, "tandem_queued_bytes") >= budget {
			break
		}
	}
	ws := s.dial(t)
	r := ws.request(map[string]any{"type": "subscribe", "topic": "collections/q/resources"})
	checkFrameStatus(t, r, 503)
	resp, err := s.HTTP.Get(s.URL + "/v1/events?topic=collections/q/resources")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || !strings.Contains(string(b), "max-queued-bytes") {
		t.Fatalf("SSE over budget: %d %s", resp.StatusCode, b)
	}
	// The lagging client is closed when its write misses the deadline;
	// then subscriptions are accepted again.
	waitUntil(t, 20*time.Second, "the budget to be released", func() bool {
		return metricNow(t, s, "tandem_queued_bytes") < budget
	})
	if r := ws.request(map[string]any{"type": "subscribe", "topic": "collections/q/resources"}); r["ok"] != true {
		t.Fatalf("subscribe after the budget was released: %v", r)
	}
}

// TestLongPollBoundedBytes: one long-poll answer carries about 1 MiB of
// data at most, however large its limit, and the next poll from its
// cursor picks up exactly where it stopped.
func TestLongPollBoundedBytes(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "lp")
	start := s.poll(t, "collections/lp/resources", "", "1ms").Cursor
	const n = 40
	fillCollection(t, s, "lp", n, 60<<10)
	got, cursor, answers := 0, start, 0
	seen := map[string]bool{}
	for got < n {
		limit := 1000
		r, err := s.Client.PollChangesWithResponse(t.Context(), &client.PollChangesParams{Topic: "collections/lp/resources", Since: &cursor, Limit: &limit})
		if err != nil || r.JSON200 == nil {
			t.Fatalf("poll: %v %s", err, r.Body)
		}
		if len(r.Body) > 2<<20 {
			t.Fatalf("one answer of %d bytes", len(r.Body))
		}
		for _, ev := range r.JSON200.Events {
			if seen[ev.Resource.Id] {
				t.Fatalf("%s delivered twice", ev.Resource.Id)
			}
			seen[ev.Resource.Id] = true
			got++
		}
		cursor = r.JSON200.Cursor
		answers++
	}
	if answers < 2 {
		t.Fatalf("%d resources of 60 KiB came in %d answer(s)", n, answers)
	}
}
