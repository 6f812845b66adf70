package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/sdk/go/client"
)

func (s *testServer) put(t *testing.T, coll, id, data string, labels map[string]string) *client.Resource {
	t.Helper()
	var l *client.Labels
	if labels != nil {
		ll := client.Labels(labels)
		l = &ll
	}
	r, err := s.Client.ReplaceResourceWithResponse(context.Background(), coll, id, nil, client.ResourceReplace{Data: json.RawMessage(data), Labels: l})
	if err != nil {
		t.Fatalf("put %s/%s: %v", coll, id, err)
	}
	if r.StatusCode() != 200 && r.StatusCode() != 201 {
		t.Fatalf("put %s/%s: %d %s", coll, id, r.StatusCode(), r.Body)
	}
	if r.JSON201 != nil {
		return r.JSON201
	}
	return r.JSON200
}

func (s *testServer) mkcoll(t *testing.T, name string) {
	t.Helper()
	r, err := s.Client.CreateCollectionWithResponse(context.Background(), nil, client.CollectionCreate{Name: name})
	if err != nil || r.StatusCode() != 201 {
		t.Fatalf("create collection: %v %d %s", err, r.StatusCode(), r.Body)
	}
}

func eventRev(f map[string]any) int64 {
	return int64(f["resource"].(map[string]any)["revision"].(float64))
}

func TestWSLiveEventsAndFilters(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "docs")
	ws := s.dial(t)
	sub := ws.subscribe("collections/docs/resources", nil)
	if sub["start"] != "live" || sub["cursor"] == "" {
		t.Fatalf("subscribe body = %v", sub)
	}
	filtered := s.dial(t)
	filtered.subscribe("collections/docs/resources", map[string]any{"labels": "env=prod"})
	one := s.dial(t)
	one.subscribe("collections/docs/resources/d1", nil)

	s.put(t, "docs", "d1", `{"v":1}`, map[string]string{"env": "dev"})  // created; invisible to env=prod
	s.put(t, "docs", "d1", `{"v":2}`, map[string]string{"env": "prod"}) // updated; enters env=prod → created
	s.put(t, "docs", "d2", `{"v":1}`, map[string]string{"env": "prod"}) // created
	s.put(t, "docs", "d1", `{"v":3}`, map[string]string{"env": "prod"}) // updated
	s.put(t, "docs", "d1", `{"v":4}`, map[string]string{"env": "test"}) // leaves env=prod → deleted
	if r, _ := s.Client.DeleteResourceWithResponse(context.Background(), "docs", "d2", nil); r.StatusCode() != 204 {
		t.Fatal("delete failed")
	}

	want := func(w *wsClient, evs ...string) {
		t.Helper()
		var last int64
		for _, ev := range evs {
			f := w.nextOfType("event", 5*time.Second)
			parts := strings.SplitN(ev, ":", 2)
			if f["event"] != parts[0] || f["resource"].(map[string]any)["id"] != parts[1] {
				t.Fatalf("got %v %v, want %s", f["event"], f["resource"].(map[string]any)["id"], ev)
			}
			if r := eventRev(f); r <= last {
				t.Fatalf("revision %d after %d", r, last)
			} else {
				last = r
			}
			if f["cursor"] == "" {
				t.Fatal("event without cursor")
			}
		}
	}
	want(ws, "resource.created:d1", "resource.updated:d1", "resource.created:d2", "resource.updated:d1", "resource.updated:d1", "resource.deleted:d2")
	want(filtered, "resource.created:d1", "resource.created:d2", "resource.updated:d1", "resource.deleted:d1", "resource.deleted:d2")
	want(one, "resource.created:d1", "resource.updated:d1", "resource.updated:d1", "resource.updated:d1")

	// Unsubscribe stops events; pings are answered.
	if r := ws.request(map[string]any{"type": "unsubscribe", "topic": "collections/docs/resources"}); r["ok"] != true {
		t.Fatalf("unsubscribe: %v", r)
	}
	if r := ws.request(map[string]any{"type": "unsubscribe", "topic": "collections/docs/resources"}); r["ok"] != false {
		t.Fatalf("second unsubscribe: %v", r)
	}
	s.put(t, "docs", "d3", `{}`, nil)
	if r := ws.request(map[string]any{"type": "ping"}); r["ok"] != true {
		t.Fatalf("ping: %v", r)
	}
	select {
	case f := <-ws.frames:
		t.Fatalf("frame after unsubscribe: %v", f)
	case <-time.After(200 * time.Millisecond):
	}
}

// TestWSNoLossResume: write N changes while a client is away, reconnect
// with its cursor, receive exactly those N in order, then live ones.
func TestWSNoLossResume(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "orders")
	ws := s.dial(t)
	sub := ws.subscribe("collections/orders/resources", nil)
	s.put(t, "orders", "first", `{}`, nil)
	f := ws.nextOfType("event", 5*time.Second)
	cursor := f["cursor"].(string)
	ws.c.Close()
	_ = sub

	const n = 120
	var want []int64
	for i := 0; i < n; i++ {
		r := s.put(t, "orders", fmt.Sprintf("o-%03d", i%40), fmt.Sprintf(`{"i":%d}`, i), nil)
		want = append(want, r.Revision)
	}
	ws2 := s.dial(t)
	body := ws2.subscribe("collections/orders/resources", map[string]any{"since": cursor})
	if body["start"] != "since" || body["cursor"] != cursor {
		t.Fatalf("resume body = %v", body)
	}
	for i, rev := range want {
		f := ws2.nextOfType("event", 5*time.Second)
		if got := eventRev(f); got != rev {
			t.Fatalf("event %d: revision %d, want %d", i, got, rev)
		}
	}
	live := s.put(t, "orders", "after", `{}`, nil)
	if f := ws2.nextOfType("event", 5*time.Second); eventRev(f) != live.Revision {
		t.Fatalf("live event revision %d, want %d", eventRev(f), live.Revision)
	}

	t.Run("ResyncRequiredOtherEpoch", func(t *testing.T) {
		other := startServer(t) // another database: another epoch
		other.mkcoll(t, "orders")
		w := other.dial(t)
		r := w.request(map[string]any{"type": "subscribe", "topic": "collections/orders/resources", "since": cursor})
		p := r["problem"].(map[string]any)
		if r["ok"] != false || p["type"] != "https://tandem.dev/problems/resync-required" || p["status"] != float64(410) {
			t.Fatalf("reply = %v", r)
		}
	})
	t.Run("ErrMalformedCursor", func(t *testing.T) {
		r := ws2.request(map[string]any{"type": "subscribe", "topic": "collections/orders/resources/x", "since": "not-a-cursor"})
		if r["ok"] != false || r["problem"].(map[string]any)["status"] != float64(400) {
			t.Fatalf("reply = %v", r)
		}
	})
}

func TestWSResyncAfterCompaction(t *testing.T) {
	s := startServer(t, "--change-log-retain", "5", "--compact-interval", "50ms")
	s.mkcoll(t, "c")
	ws := s.dial(t)
	ws.subscribe("collections/c/resources", nil)
	s.put(t, "c", "a", `{}`, nil)
	cursor := ws.nextOfType("event", 5*time.Second)["cursor"].(string)
	for i := 0; i < 30; i++ {
		s.put(t, "c", "a", fmt.Sprintf(`{"i":%d}`, i), nil)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		w := s.dial(t)
		r := w.request(map[string]any{"type": "subscribe", "topic": "collections/c/resources", "since": cursor})
		if r["ok"] == false {
			p := r["problem"].(map[string]any)
			if p["type"] != "https://tandem.dev/problems/resync-required" {
				t.Fatalf("problem = %v", p)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("compaction never made the cursor expire")
		}
		w.c.Close()
		time.Sleep(50 * time.Millisecond)
	}
}

// TestWSSnapshotUnderWrites: snapshot, synced, then live events give a
// mirror equal to the store while writers run concurrently.
func TestWSSnapshotUnderWrites(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "m")
	for i := 0; i < 50; i++ {
		s.put(t, "m", fmt.Sprintf("k%02d", i), `{"n":0}`, nil)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ctx.Err() == nil && i < 200; i++ {
				id := fmt.Sprintf("k%02d", (i*7+w*13)%60)
				if i%9 == 0 {
					_, _ = s.Client.DeleteResourceWithResponse(context.Background(), "m", id, nil)
					continue
				}
				_, _ = s.Client.ReplaceResourceWithResponse(context.Background(), "m", id, nil, client.ResourceReplace{Data: json.RawMessage(fmt.Sprintf(`{"n":%d,"w":%d}`, i, w))})
			}
		}(w)
	}
	time.Sleep(20 * time.Millisecond)
	ws := s.dial(t)
	body := ws.subscribe("collections/m/resources", map[string]any{"snapshot": true})
	if body["start"] != "snapshot" {
		t.Fatalf("body = %v", body)
	}
	mirror := map[string]string{}
	for {
		f := ws.next(10 * time.Second)
		if f["type"] == "synced" {
			if f["cursor"] != body["cursor"] {
				t.Fatalf("synced cursor %v, reply cursor %v", f["cursor"], body["cursor"])
			}
			break
		}
		if f["event"] != "resource.snapshot" {
			t.Fatalf("before synced: %v", f)
		}
		r := f["resource"].(map[string]any)
		b, _ := json.Marshal(r["data"])
		mirror[r["id"].(string)] = string(b)
	}
	wg.Wait()
	cancel()
	final, _ := s.Client.ListResourcesWithResponse(context.Background(), "m", &client.ListResourcesParams{Limit: ptr(1000)})
	var last int64
	for last < final.JSON200.Revision {
		f := ws.nextOfType("event", 10*time.Second)
		rev := eventRev(f)
		if rev <= last {
			t.Fatalf("duplicate or out of order: %d after %d", rev, last)
		}
		last = rev
		r := f["resource"].(map[string]any)
		if f["event"] == "resource.deleted" {
			delete(mirror, r["id"].(string))
		} else {
			b, _ := json.Marshal(r["data"])
			mirror[r["id"].(string)] = string(b)
		}
	}
	want := map[string]string{}
	for _, r := range final.JSON200.Items {
		var v any
		_ = json.Unmarshal(r.Data, &v)
		b, _ := json.Marshal(v)
		want[r.Id] = string(b)
	}
	if fmt.Sprint(mirror) != fmt.Sprint(want) {
		t.Fatalf("mirror differs from the store:\nmirror %v\nstore  %v", mirror, want)
	}
}

// TestWSSlowConsumerIsolation: a client that never reads is closed with
// 4008 and its cursors, while the others keep receiving everything.
func TestWSSlowConsumerIsolation(t *testing.T) {
	s := startServer(t, "--queue-bytes", "65536")
	s.mkcoll(t, "big")
	// The slow client subscribes and then never reads.
	slow, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+"/v1/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if err := slow.WriteJSON(map[string]any{"type": "subscribe", "ref": "1", "topic": "collections/big/resources"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	fast := make([]*wsClient, 5)
	for i := range fast {
		fast[i] = s.dial(t)
		fast[i].subscribe("collections/big/resources", nil)
	}
	blob := strings.Repeat("x", 60000)
	const n = 120
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < n; i++ {
			s.put(t, "big", fmt.Sprintf("b%03d", i), fmt.Sprintf(`{"blob":"%s"}`, blob), nil)
		}
	}()
	for _, f := range fast {
		for i := 0; i < n; i++ {
			ev := f.nextOfType("event", 10*time.Second)
			if id := ev["resource"].(map[string]any)["id"]; id != fmt.Sprintf("b%03d", i) {
				t.Fatalf("fast client got %v at %d", id, i)
			}
		}
	}
	<-done
	if !strings.Contains(s.metrics(t), "tandem_ws_slow_consumer_closes_total 1") {
		t.Error("the slow client was not closed as a slow consumer")
	}
}

func TestWSSlowConsumerCloseCode(t *testing.T) {
	s := startServer(t, "--queue-bytes", "65536")
	s.mkcoll(t, "big")
	url := "ws" + strings.TrimPrefix(s.URL, "http") + "/v1/ws"
	d := websocket.Dialer{ReadBufferSize: 1024}
	c, _, err := d.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.WriteJSON(map[string]any{"type": "subscribe", "ref": "1", "topic": "collections/big/resources"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	blob := strings.Repeat("y", 60000)
	// Without reading, kernel buffers fill, then the 64 KiB queue overflows.
	for i := 0; i < 400; i++ {
		s.put(t, "big", fmt.Sprintf("b%03d", i%50), fmt.Sprintf(`{"blob":"%s"}`, blob), nil)
		if i%50 == 49 && strings.Contains(s.metrics(t), "tandem_ws_slow_consumer_closes_total 1") {
			break
		}
	}
	// Now read everything: frames, the error frame with cursors, then 4008.
	var errFrame map[string]any
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	v := asyncValidator(t)
	for {
		_, b, err := c.ReadMessage()
		if err != nil {
			if closeCode(err) != 4008 {
				t.Fatalf("close = %v, want 4008", err)
			}
			break
		}
		if err := v.ValidateServerFrame(b); err != nil {
			t.Errorf("invalid frame: %v", err)
		}
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if m["type"] == "error" {
			errFrame = m
		}
	}
	if errFrame == nil || len(errFrame["cursors"].([]any)) != 1 {
		t.Fatalf("error frame = %v", errFrame)
	}
}

func (s *testServer) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	return b.String()
}

func TestWSBadFrames(t *testing.T) {
	s := startServer(t, "--max-frame-bytes", "4096")
	ws := s.dial(t)
	cases := []struct {
		name, frame, pointer string
	}{
		{"MissingTopic", `{"type":"subscribe","ref":"a"}`, "/topic"},
		{"UnknownMember", `{"type":"ping","ref":"b","colour":1}`, "/colour"},
		{"WrongType", `{"type":"subscribe","ref":"c","topic":"collections/x/resources","snapshot":"yes"}`, "/snapshot"},
		{"UnknownType", `{"type":"dance","ref":"d"}`, "/type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := ws.c.WriteMessage(websocket.TextMessage, []byte(tc.frame)); err != nil {
				t.Fatal(err)
			}
			r := ws.nextOfType("reply", 5*time.Second)
			p, _ := r["problem"].(map[string]any)
			if r["ok"] != false || p == nil || p["status"] != float64(400) {
				t.Fatalf("reply = %v", r)
			}
			errs := p["errors"].([]any)
			if errs[0].(map[string]any)["pointer"] != tc.pointer {
				t.Errorf("pointer = %v, want %s", errs[0], tc.pointer)
			}
		})
	}
	t.Run("SemanticErrors", func(t *testing.T) {
		for frame, status := range map[string]float64{
			`{"type":"subscribe","ref":"e","topic":"collections/../resources"}`:              400,
			`{"type":"subscribe","ref":"f","topic":"collections/ghost/resources"}`:           404,
			`{"type":"subscribe","ref":"g","topic":"collections/x/resources","labels":"=("}`: 400,
		} {
			_ = ws.c.WriteMessage(websocket.TextMessage, []byte(frame))
			r := ws.nextOfType("reply", 5*time.Second)
			if r["ok"] != false || r["problem"].(map[string]any)["status"] != status {
				t.Errorf("%s → %v", frame, r)
			}
		}
	})
	// The connection survived all of that.
	if r := ws.request(map[string]any{"type": "ping"}); r["ok"] != true {
		t.Fatalf("ping after bad frames: %v", r)
	}
	for _, tc := range []struct {
		name string
		typ  int
		data []byte
		code int
	}{
		{"Binary", websocket.BinaryMessage, []byte{1, 2, 3}, 1003},
		{"NotJSON", websocket.TextMessage, []byte("hello"), 1003},
		{"TooBig", websocket.TextMessage, []byte(`{"type":"ping","ref":"` + strings.Repeat("x", 5000) + `"}`), 1009},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := s.dial(t)
			if err := w.c.WriteMessage(tc.typ, tc.data); err != nil {
				t.Fatal(err)
			}
			if code := closeCode(w.closeErr(5 * time.Second)); code != tc.code {
				t.Errorf("close code %d, want %d", code, tc.code)
			}
		})
	}
}

func TestWSShutdownClosesWith1001(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "x")
	ws := s.dial(t)
	ws.subscribe("collections/x/resources", nil)
	s.stop()
	if code := closeCode(ws.closeErr(15 * time.Second)); code != 1001 {
		t.Fatalf("close code %d, want 1001", code)
	}
}

func TestWSBookmarks(t *testing.T) {
	s := startServer(t, "--bookmark-interval", "100ms")
	s.mkcoll(t, "b")
	ws := s.dial(t)
	ws.subscribe("collections/b/resources", nil)
	r := s.put(t, "b", "one", `{}`, nil)
	ws.nextOfType("event", 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		f := ws.next(5 * time.Second)
		if f["type"] == "bookmark" {
			// A bookmark resumes after everything delivered: nothing replays.
			w := s.dial(t)
			w.subscribe("collections/b/resources", map[string]any{"since": f["cursor"]})
			s.put(t, "b", "two", `{}`, nil)
			if ev := w.nextOfType("event", 5*time.Second); eventRev(ev) <= r.Revision {
				t.Fatalf("bookmark resumed into the past: %v", ev)
			}
			return
		}
	}
	t.Fatal("no bookmark")
}
