package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker/redis/redistest"
	"github.com/tandemhq/tandem/sdk/go/client"
)

// mnWait bounds every wait of the multi-node test; it only turns a hang
// into a failure and is never the thing measured.
const mnWait = 30 * time.Second

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mnExpect is the ground truth of one topic: what the writes were
// acknowledged with, in order.
type mnExpect struct {
	seqs []int64 // revisions (resources) or offsets (channel messages)
	vals []int   // the "i" each write carried
}

func (e *mnExpect) add(seq int64, i int) {
	e.seqs = append(e.seqs, seq)
	e.vals = append(e.vals, i)
}

// index returns the position of seq in e (-1 when absent).
func (e *mnExpect) index(seq int64) int {
	for k, s := range e.seqs {
		if s == seq {
			return k
		}
	}
	return -1
}

// mnEvent is one event frame: its topic, position, value and cursor.
type mnEvent struct {
	topic  string
	seq    int64
	val    int
	cursor string
}

func parseMNEvent(t *testing.T, f map[string]any) mnEvent {
	t.Helper()
	ev := mnEvent{topic: fmt.Sprint(f["topic"]), cursor: fmt.Sprint(f["cursor"])}
	var body map[string]any
	switch {
	case f["resource"] != nil:
		body = f["resource"].(map[string]any)
		ev.seq = int64(body["revision"].(float64))
	case f["message"] != nil:
		body = f["message"].(map[string]any)
		ev.seq = int64(body["offset"].(float64))
	default:
		t.Fatalf("event without resource or message: %v", f)
	}
	ev.val = int(body["data"].(map[string]any)["i"].(float64))
	return ev
}

// readEvents reads frames from w until it holds want[topic] events of each
// topic, skipping bookmarks and presence frames; any other frame fails.
func readEvents(t *testing.T, w *wsClient, want map[string]int) map[string][]mnEvent {
	t.Helper()
	got := map[string][]mnEvent{}
	done := func() bool {
		for topic, n := range want {
			if len(got[topic]) < n {
				return false
			}
		}
		return true
	}
	deadline := time.Now().Add(mnWait)
	for !done() {
		f := w.next(time.Until(deadline))
		switch f["type"] {
		case "bookmark", "presence":
			continue
		case "event":
			ev := parseMNEvent(t, f)
			if _, ok := want[ev.topic]; !ok {
				t.Fatalf("event of unexpected topic %s: %v", ev.topic, f)
			}
			got[ev.topic] = append(got[ev.topic], ev)
		default:
			t.Fatalf("unexpected frame while reading events: %v", f)
		}
	}
	return got
}

// checkRun fails unless evs are exactly the expected events from position
// from on, in order.
func checkRun(t *testing.T, who, topic string, evs []mnEvent, exp *mnExpect, from int) {
	t.Helper()
	for k, ev := range evs {
		j := from + k
		if j >= len(exp.seqs) {
			t.Fatalf("%s, %s: event %d (seq %d) beyond the %d writes", who, topic, k, ev.seq, len(exp.seqs))
		}
		if ev.seq != exp.seqs[j] || ev.val != exp.vals[j] {
			t.Fatalf("%s, %s: event %d is seq %d value %d, want seq %d value %d (gap, duplicate or disorder)",
				who, topic, k, ev.seq, ev.val, exp.seqs[j], exp.vals[j])
		}
	}
}

// cursorEpoch returns the epoch inside an opaque cursor (kind:epoch:pos).
func cursorEpoch(t *testing.T, c string) string {
	t.Helper()
	raw, err := base64RawURL(c)
	parts := strings.Split(raw, ":")
	if err != nil || len(parts) != 3 {
		t.Fatalf("cursor %q does not decode to kind:epoch:pos", c)
	}
	return parts[1]
}

// presenceFrame reads frames from w until a presence frame with action.
func presenceFrame(t *testing.T, w *wsClient, action string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(mnWait)
	for {
		f := w.next(time.Until(deadline))
		if f["type"] == "presence" && f["action"] == action {
			return f
		}
		if f["type"] != "bookmark" && f["type"] != "presence" {
			t.Fatalf("want a presence %s, got %v", action, f)
		}
	}
}

func presenceIDs(f map[string]any) []string {
	var ids []string
	for _, m := range f["members"].([]any) {
		ids = append(ids, fmt.Sprint(m.(map[string]any)["id"]))
	}
	return ids
}

func ready(t *testing.T, s *testServer) (int, map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := s.Client.GetReadyWithResponse(ctx)
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	var h *client.Health
	switch r.StatusCode() {
	case 200:
		h = r.JSON200
	case 503:
		h = r.JSON503
	default:
		t.Fatalf("GET /readyz: %d %s", r.StatusCode(), r.Body)
	}
	if h.Checks == nil {
		t.Fatalf("GET /readyz without checks: %s", r.Body)
	}
	return r.StatusCode(), *h.Checks
}

// waitReady polls /readyz until it answers status with the broker check
// brokerCheck (and the store "ok").
func waitReady(t *testing.T, s *testServer, status int, brokerCheck string) {
	t.Helper()
	deadline := time.Now().Add(mnWait)
	for {
		code, checks := ready(t, s)
		if code == status && checks["broker"] == brokerCheck && checks["store"] == "ok" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/readyz = %d %v, want %d with broker %q and store ok", s.URL, code, checks, status, brokerCheck)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// metricValue returns the value of an unlabelled sample in a /metrics text.
func metricValue(t *testing.T, text, name string) float64 {
	t.Helper()
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// TestMultiNode runs three `tandem serve` processes on loopback ports that
// share one fresh PostgreSQL database and one private Redis:
//
//   - a client on node A receives, in order, the resource changes written
//     on node B and the channel messages published on node C;
//   - node C is killed with SIGKILL; its client resumes on node B with its
//     cursors and gets exactly what it had not received, nothing twice;
//     its presence entry expires and another node announces the leave;
//   - Redis goes down: /readyz says so, publishing answers 503, resources
//     still flow (they travel through PostgreSQL); Redis comes back empty:
//     channel subscribers get resync-required, old channel cursors are
//     refused with 410, and a fresh subscription sees the new epoch.
func TestMultiNode(t *testing.T) {
	dsn := freshPostgres(t)
	rs := redistest.Start(t)
	bin := buildTandem(t)
	args := []string{"--store", dsn, "--broker", rs.URL(), "--redis-prefix", "tandem-mn-" + randomHex(4) + ":",
		"--strict", "--presence-ttl", "3s", "--log-level", "debug"}
	var nodes []*procServer
	for range 3 {
		nodes = append(nodes, startProc(t, bin, args...))
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	dump := func() {
		if t.Failed() {
			for i, n := range nodes {
				t.Logf("node %c log:\n%s", 'A'+i, tail(n.Logs.String(), 8000))
			}
			t.Logf("redis-server log:\n%s", tail(rs.Logs(), 4000))
		}
	}
	defer dump()
	for _, n := range nodes {
		waitReady(t, n.testServer, 200, "ok")
	}

	const coll, ch = "mn", "room"
	resTopic, msgTopic, presTopic := "collections/"+coll+"/resources", "channels/"+ch+"/messages", "channels/"+ch+"/presence"
	b.mkcoll(t, coll)
	var res, msg mnExpect
	i := 0
	write := func(n int, resNode, msgNode *procServer) {
		t.Helper()
		for range n {
			r := resNode.put(t, coll, fmt.Sprintf("r%d", i%7), fmt.Sprintf(`{"i":%d}`, i), nil)
			res.add(r.Revision, i)
			m := msgNode.publish(t, ch, fmt.Sprintf(`{"i":%d}`, i))
			msg.add(m.Offset, i)
			i++
		}
	}

	// A presence watcher on A learns the member IDs of the others.
	watcher := a.dial(t)
	watcher.subscribe(presTopic, nil)
	presenceFrame(t, watcher, "state")
	wa := a.dial(t)
	wa.subscribe(resTopic, nil)
	wa.subscribe(msgTopic, nil)
	presenceFrame(t, watcher, "join")
	wc := c.dial(t)
	wc.subscribe(resTopic, nil)
	wc.subscribe(msgTopic, nil)
	join := presenceFrame(t, watcher, "join")
	cMember := presenceIDs(join)[0]

	// 1. Writes on B, publishes on C: both clients see everything in order.
	const n1, n2, n3 = 20, 10, 10
	write(n1, b, c)
	got := readEvents(t, wa, map[string]int{resTopic: n1, msgTopic: n1})
	checkRun(t, "client on A", resTopic, got[resTopic], &res, 0)
	checkRun(t, "client on A", msgTopic, got[msgTopic], &msg, 0)
	got = readEvents(t, wc, map[string]int{resTopic: n1, msgTopic: n1})
	checkRun(t, "client on C", resTopic, got[resTopic], &res, 0)
	checkRun(t, "client on C", msgTopic, got[msgTopic], &msg, 0)
	lastRes, lastMsg := got[resTopic][n1-1], got[msgTopic][n1-1]

	// 2. More writes, then kill C at once: its client has received some
	// prefix of them. It resumes on B from the last cursor it holds.
	write(n2, b, c)
	c.kill(t)
	wc.closeErr(mnWait)
	for len(wc.frames) > 0 || len(wc.pending) > 0 {
		f := wc.next(time.Second)
		if f["type"] != "event" {
			continue
		}
		ev := parseMNEvent(t, f)
		last := &lastRes
		exp := &res
		if ev.topic == msgTopic {
			last, exp = &lastMsg, &msg
		}
		checkRun(t, "client on C before the kill", ev.topic, []mnEvent{ev}, exp, exp.index(last.seq)+1)
		*last = ev
	}
	t.Logf("client on C received %d of %d resource changes and %d of %d messages before the kill",
		res.index(lastRes.seq)+1, n1+n2, msg.index(lastMsg.seq)+1, n1+n2)
	write(n3, b, a)
	wb := b.dial(t)
	for topic, cur := range map[string]string{resTopic: lastRes.cursor, msgTopic: lastMsg.cursor} {
		if body := wb.subscribe(topic, map[string]any{"since": cur}); body["start"] != "since" {
			t.Fatalf("resume %s on B: %v", topic, body)
		}
	}
	fromRes, fromMsg := res.index(lastRes.seq)+1, msg.index(lastMsg.seq)+1
	got = readEvents(t, wb, map[string]int{resTopic: len(res.seqs) - fromRes, msgTopic: len(msg.seqs) - fromMsg})
	checkRun(t, "client resumed on B", resTopic, got[resTopic], &res, fromRes)
	checkRun(t, "client resumed on B", msgTopic, got[msgTopic], &msg, fromMsg)
	got = readEvents(t, wa, map[string]int{resTopic: n2 + n3, msgTopic: n2 + n3})
	checkRun(t, "client on A", resTopic, got[resTopic], &res, n1)
	checkRun(t, "client on A", msgTopic, got[msgTopic], &msg, n1)
	lastMsgA := got[msgTopic][n2+n3-1]
	// C's presence lease is no longer renewed: a surviving node's sweeper
	// publishes the leave.
	for {
		f := presenceFrame(t, watcher, "leave")
		if ids := presenceIDs(f); len(ids) == 1 && ids[0] == cMember {
			break
		}
	}

	// 3. Redis goes down.
	rs.Kill()
	for _, n := range []*procServer{a, b} {
		waitReady(t, n.testServer, 503, "unavailable")
	}
	resp, body := a.do(t, "POST", "/v1/channels/"+ch+"/messages", "application/json", `{"data":{"i":-1}}`)
	if resp.StatusCode != 503 {
		t.Fatalf("publish with Redis down: %d %v, want 503", resp.StatusCode, body)
	}
	// Resources do not depend on Redis.
	write0 := b.put(t, coll, "during-outage", `{"i":-1}`, nil)
	got = readEvents(t, wa, map[string]int{resTopic: 1})
	if ev := got[resTopic][0]; ev.seq != write0.Revision || ev.val != -1 {
		t.Fatalf("resource change during the Redis outage: %+v, want revision %d", ev, write0.Revision)
	}
	got = readEvents(t, wb, map[string]int{resTopic: 1})
	if ev := got[resTopic][0]; ev.seq != write0.Revision {
		t.Fatalf("resource change during the Redis outage on B: %+v, want revision %d", ev, write0.Revision)
	}

	// Redis comes back empty: channel subscribers on every node are told
	// to resync instead of silently missing what was lost.
	rs.Restart()
	for _, w := range []*wsClient{wa, wb} {
		deadline := time.Now().Add(mnWait)
		for {
			f := w.next(time.Until(deadline))
			if f["type"] == "bookmark" || f["type"] == "presence" {
				continue
			}
			if f["type"] != "error" || f["topic"] != msgTopic {
				t.Fatalf("want a resync-required error for %s after the Redis restart, got %v", msgTopic, f)
			}
			p := f["problem"].(map[string]any)
			if p["status"] != float64(410) || !strings.HasSuffix(fmt.Sprint(p["type"]), "/resync-required") {
				t.Fatalf("problem after the Redis restart = %v", p)
			}
			break
		}
	}
	for _, n := range []*procServer{a, b} {
		waitReady(t, n.testServer, 200, "ok")
	}
	r := wa.request(map[string]any{"type": "subscribe", "topic": msgTopic, "since": lastMsgA.cursor})
	if p, _ := r["problem"].(map[string]any); r["ok"] != false || p["status"] != float64(410) {
		t.Fatalf("resubscribe with a cursor from before the Redis restart: %v, want 410 resync-required", r)
	}
	sub := wa.subscribe(msgTopic, nil)
	newEpoch := cursorEpoch(t, fmt.Sprint(sub["cursor"]))
	if newEpoch == cursorEpoch(t, lastMsgA.cursor) {
		t.Fatalf("channel epoch %s unchanged after Redis lost its data", newEpoch)
	}
	m := b.publish(t, ch, `{"i":1000}`)
	got = readEvents(t, wa, map[string]int{msgTopic: 1})
	if ev := got[msgTopic][0]; ev.seq != 1 || m.Offset != 1 || cursorEpoch(t, ev.cursor) != newEpoch || ev.val != 1000 {
		t.Fatalf("first message after the restart: %+v (published at %d), want offset 1 in epoch %s", ev, m.Offset, newEpoch)
	}

	// 4. The metrics saw it all.
	text := a.metrics(t)
	if v := metricValue(t, text, "tandem_broker_reconnects_total"); v < 1 {
		t.Errorf("tandem_broker_reconnects_total = %v after a Redis restart", v)
	}
	if v := metricValue(t, text, "tandem_broker_resets_total"); v < 1 {
		t.Errorf("tandem_broker_resets_total = %v after a Redis restart", v)
	}
	if v := metricValue(t, text, "tandem_broker_delivery_lag_seconds_count"); v < float64(n1+n2+n3) {
		t.Errorf("tandem_broker_delivery_lag_seconds_count = %v, want at least %d", v, n1+n2+n3)
	}
	if head, last := metricValue(t, text, "tandem_store_revision"), metricValue(t, text, "tandem_change_feed_revision"); head != float64(write0.Revision) || last != head {
		t.Errorf("store revision %v, feed at %v, want both %d", head, last, write0.Revision)
	}
	if v := metricValue(t, text, "tandem_change_feed_lag_revisions"); v != 0 {
		t.Errorf("tandem_change_feed_lag_revisions = %v with every change delivered", v)
	}
}
