package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// sseEvent is one parsed Server-Sent Event.
type sseEvent struct {
	Event, ID string
	Data      map[string]any
}

// sseStream reads an SSE response; every data payload is validated
// against the AsyncAPI frame schemas, like WebSocket frames.
type sseStream struct {
	t      *testing.T
	events chan sseEvent
	resp   *http.Response
	cancel context.CancelFunc
}

func (s *testServer) sse(t *testing.T, query string, lastEventID string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/v1/events?"+query, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		t.Fatalf("SSE %s: %d %s", query, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	st := &sseStream{t: t, events: make(chan sseEvent, 10000), resp: resp, cancel: cancel}
	go func() {
		defer close(st.events)
		r := bufio.NewReader(resp.Body)
		var ev sseEvent
		var data strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case line == "":
				if data.Len() > 0 {
					if err := validateSSE(t, ev.Event, []byte(data.String())); err != nil {
						t.Errorf("SSE event violates the specs: %v\n%s", err, data.String())
					}
					_ = json.Unmarshal([]byte(data.String()), &ev.Data)
					st.events <- ev
				}
				ev, data = sseEvent{}, strings.Builder{}
			case strings.HasPrefix(line, ":"):
			case strings.HasPrefix(line, "event: "):
				ev.Event = line[7:]
			case strings.HasPrefix(line, "id: "):
				ev.ID = line[4:]
			case strings.HasPrefix(line, "data: "):
				data.WriteString(line[6:])
			}
		}
	}()
	t.Cleanup(st.close)
	return st
}

func (st *sseStream) close() {
	st.cancel()
	st.resp.Body.Close()
}

func (st *sseStream) next(typ string, d time.Duration) sseEvent {
	st.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-st.events:
			if !ok {
				st.t.Fatalf("SSE stream ended waiting for %s", typ)
			}
			if ev.Event == typ {
				return ev
			}
			if ev.Event != "bookmark" {
				st.t.Fatalf("want SSE %s, got %s %v", typ, ev.Event, ev.Data)
			}
		case <-deadline:
			st.t.Fatalf("no SSE %s within %v", typ, d)
		}
	}
}

// poll does one long-poll through the validating client.
func (s *testServer) poll(t *testing.T, topic, since, wait string) client.Changes {
	t.Helper()
	p := &client.PollChangesParams{Topic: topic, Wait: &wait}
	if since != "" {
		p.Since = &since
	}
	r, err := s.Client.PollChangesWithResponse(context.Background(), p)
	if err != nil || r.StatusCode() != 200 {
		t.Fatalf("poll %s since %q: %v %d %s", topic, since, err, r.StatusCode(), r.Body)
	}
	v := asyncValidator(t)
	for _, ev := range r.JSON200.Events {
		b, _ := json.Marshal(ev)
		if err := v.ValidateServerFrame(b); err != nil {
			t.Errorf("long-poll event violates spec/asyncapi.yaml: %v", err)
		}
	}
	return *r.JSON200
}

func (s *testServer) publish(t *testing.T, ch string, data string) client.ChannelMessage {
	t.Helper()
	r, err := s.Client.PublishMessageWithResponse(context.Background(), ch, nil, client.MessagePublish{Data: json.RawMessage(data)})
	if err != nil || r.StatusCode() != 201 {
		t.Fatalf("publish: %v %d %s", err, r.StatusCode(), r.Body)
	}
	return *r.JSON201
}

// transport follows one topic from a cursor and yields (cursor, seq) pairs.
type transport struct {
	name   string
	follow func(t *testing.T, s *testServer, topic, since string, n int) []string // returns the cursors of n events
}

var transports = []transport{
	{"WebSocket", func(t *testing.T, s *testServer, topic, since string, n int) []string {
		ws := s.dial(t)
		ws.subscribe(topic, map[string]any{"since": since})
		var out []string
		for i := 0; i < n; i++ {
			f := ws.nextOfType("event", 5*time.Second)
			out = append(out, f["cursor"].(string))
		}
		return out
	}},
	{"SSE", func(t *testing.T, s *testServer, topic, since string, n int) []string {
		st := s.sse(t, "topic="+url.QueryEscape(topic), since)
		var out []string
		for i := 0; i < n; i++ {
			ev := st.next("event", 5*time.Second)
			if ev.ID != ev.Data["cursor"] {
				t.Fatalf("SSE id %q != event cursor %v", ev.ID, ev.Data["cursor"])
			}
			out = append(out, ev.ID)
		}
		return out
	}},
	{"LongPoll", func(t *testing.T, s *testServer, topic, since string, n int) []string {
		var out []string
		cur := since
		for len(out) < n {
			ch := s.poll(t, topic, cur, "5s")
			if len(ch.Events) == 0 {
				t.Fatalf("long-poll timed out with %d of %d events", len(out), n)
			}
			for _, ev := range ch.Events {
				out = append(out, ev.Cursor)
			}
			cur = ch.Cursor
		}
		return out
	}},
}

// TestNoLossAllTransports: the same resume scenario over WebSocket, SSE
// and long-poll, for a resource topic and a channel topic.
func TestNoLossAllTransports(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "orders")
	for _, tr := range transports {
		t.Run(tr.name+"/Resources", func(t *testing.T) {
			first := s.put(t, "orders", "seed-"+tr.name, `{}`, nil)
			// The cursor of the seed event, via a long-poll from just before it.
			base := s.poll(t, "collections/orders/resources/seed-"+tr.name, "", "1ms").Cursor
			_ = first
			const n = 40
			var want []int64
			for i := 0; i < n; i++ {
				want = append(want, s.put(t, "orders", fmt.Sprintf("%s-%d", tr.name, i%7), fmt.Sprintf(`{"i":%d}`, i), nil).Revision)
			}
			got := tr.follow(t, s, "collections/orders/resources", base, n)
			for i := range want {
				c := decodeCursorPos(t, got[i])
				if c != want[i] {
					t.Fatalf("event %d at revision %d, want %d", i, c, want[i])
				}
			}
		})
		t.Run(tr.name+"/Channel", func(t *testing.T) {
			ch := "room:" + strings.ToLower(tr.name)
			seed := s.publish(t, ch, `{"text":"seed"}`)
			const n = 30
			var want []int64
			for i := 0; i < n; i++ {
				want = append(want, s.publish(t, ch, fmt.Sprintf(`{"text":"m%d"}`, i)).Offset)
			}
			got := tr.follow(t, s, "channels/"+ch+"/messages", seed.Cursor, n)
			for i := range want {
				if c := decodeCursorPos(t, got[i]); c != want[i] {
					t.Fatalf("message %d at offset %d, want %d", i, c, want[i])
				}
			}
		})
	}
}

func decodeCursorPos(t *testing.T, c string) int64 {
	t.Helper()
	var kind, epoch string
	var pos int64
	raw, err := base64RawURL(c)
	if err != nil {
		t.Fatalf("cursor %q: %v", c, err)
	}
	parts := strings.Split(raw, ":")
	if len(parts) != 3 {
		t.Fatalf("cursor %q", c)
	}
	kind, epoch = parts[0], parts[1]
	_, _ = kind, epoch
	fmt.Sscan(parts[2], &pos)
	return pos
}

func TestLongPollSemantics(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "lp")
	empty := s.poll(t, "collections/lp/resources", "", "50ms")
	if len(empty.Events) != 0 || empty.Cursor == "" {
		t.Fatalf("empty poll = %+v", empty)
	}
	again := s.poll(t, "collections/lp/resources", empty.Cursor, "50ms")
	if again.Cursor != empty.Cursor {
		t.Fatalf("timeout cursor %q, want the same %q", again.Cursor, empty.Cursor)
	}
	// A waiting poll returns as soon as an event exists.
	done := make(chan client.Changes, 1)
	go func() { done <- s.poll(t, "collections/lp/resources", empty.Cursor, "10s") }()
	time.Sleep(100 * time.Millisecond)
	r := s.put(t, "lp", "x", `{}`, nil)
	select {
	case c := <-done:
		if len(c.Events) != 1 || c.Events[0].Resource.Revision != r.Revision {
			t.Fatalf("woken poll = %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll did not return after a write")
	}
	resp, p := s.do(t, "GET", "/v1/changes?topic=collections/lp/resources&since=bogus", "", "")
	if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(p), "since") {
		t.Errorf("bad cursor: %d %v", resp.StatusCode, p)
	}
	resp, p = s.do(t, "GET", "/v1/changes?topic=collections/lp/resources&wait=61s", "", "")
	if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(p), "wait") {
		t.Errorf("bad wait: %d %v", resp.StatusCode, p)
	}
}

// TestChatWithPresence: two clients in a room see each other join and
// leave, REST publishes reach WebSocket and SSE subscribers, and history
// resumes where a client left off.
func TestChatWithPresence(t *testing.T) {
	s := startServer(t)
	room := "chat:lobby"
	alice := s.dial(t)
	alicePresence := alice.subscribe("channels/"+room+"/presence", nil)
	_ = alicePresence
	state := alice.nextOfType("presence", 5*time.Second)
	if state["action"] != "state" || len(state["members"].([]any)) != 0 {
		t.Fatalf("initial presence = %v", state)
	}
	alice.subscribe("channels/"+room+"/messages", map[string]any{"meta": map[string]any{"name": "alice"}})
	join := alice.nextOfType("presence", 5*time.Second)
	if join["action"] != "join" {
		t.Fatalf("alice's join = %v", join)
	}
	bob := s.dial(t)
	bob.subscribe("channels/"+room+"/messages", map[string]any{"meta": map[string]any{"name": "bob"}})
	if f := alice.nextOfType("presence", 5*time.Second); f["action"] != "join" {
		t.Fatalf("bob's join = %v", f)
	}
	pr, _ := s.Client.ChannelPresenceWithResponse(context.Background(), room, nil)
	if pr.StatusCode() != 200 || len(pr.JSON200.Members) != 2 {
		t.Fatalf("presence over REST: %d %s", pr.StatusCode(), pr.Body)
	}
	sse := s.sse(t, "topic="+url.QueryEscape("channels/"+room+"/messages"), "")

	// Bob publishes over WebSocket; a REST publish follows.
	r := bob.request(map[string]any{"type": "publish", "topic": "channels/" + room + "/messages", "data": map[string]any{"text": "hi alice"}})
	if r["ok"] != true || r["body"].(map[string]any)["cursor"] == "" {
		t.Fatalf("publish reply = %v", r)
	}
	rest := s.publish(t, room, `{"text":"from REST"}`)
	for _, who := range []*wsClient{alice, bob} {
		m1 := who.nextOfType("event", 5*time.Second)
		m2 := who.nextOfType("event", 5*time.Second)
		if m1["message"].(map[string]any)["data"].(map[string]any)["text"] != "hi alice" || m2["cursor"] != rest.Cursor {
			t.Fatalf("chat messages = %v / %v", m1, m2)
		}
	}
	e1, e2 := sse.next("event", 5*time.Second), sse.next("event", 5*time.Second)
	if e2.ID != rest.Cursor || e1.Data["message"] == nil {
		t.Fatalf("SSE got %v / %v", e1, e2)
	}

	// Bob leaves; alice sees it.
	bob.c.Close()
	if f := alice.nextOfType("presence", 5*time.Second); f["action"] != "leave" {
		t.Fatalf("bob's leave = %v", f)
	}

	// History resumes from the first message's cursor.
	first := r["body"].(map[string]any)["cursor"].(string)
	s.publish(t, room, `{"text":"later"}`)
	h, _ := s.Client.ChannelHistoryWithResponse(context.Background(), room, &client.ChannelHistoryParams{Since: &first})
	if h.StatusCode() != 200 || len(h.JSON200.Items) != 2 || h.JSON200.Items[0].Cursor != rest.Cursor {
		t.Fatalf("history since first: %d %s", h.StatusCode(), h.Body)
	}
	all, _ := s.Client.ChannelHistoryWithResponse(context.Background(), room, nil)
	if len(all.JSON200.Items) != 3 {
		t.Fatalf("full history: %s", all.Body)
	}
	// A cursor from another epoch is resync-required.
	other := startServer(t)
	o, _ := other.Client.ChannelHistoryWithResponse(context.Background(), room, &client.ChannelHistoryParams{Since: &first})
	if o.StatusCode() != 410 {
		t.Fatalf("foreign cursor: %d %s", o.StatusCode(), o.Body)
	}
}

func TestChannelIdempotentPublish(t *testing.T) {
	s := startServer(t)
	key := "pub-1"
	p := &client.PublishMessageParams{IdempotencyKey: &key}
	a, _ := s.Client.PublishMessageWithResponse(context.Background(), "news", p, client.MessagePublish{Data: json.RawMessage(`1`)})
	b, _ := s.Client.PublishMessageWithResponse(context.Background(), "news", p, client.MessagePublish{Data: json.RawMessage(`1`)})
	if a.StatusCode() != 201 || b.StatusCode() != 201 || a.JSON201.Offset != b.JSON201.Offset {
		t.Fatalf("replay: %s / %s", a.Body, b.Body)
	}
	h, _ := s.Client.ChannelHistoryWithResponse(context.Background(), "news", nil)
	if len(h.JSON200.Items) != 1 {
		t.Fatalf("published twice: %s", h.Body)
	}
}
