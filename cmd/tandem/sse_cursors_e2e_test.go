package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/sdk/go/client"
)

// sseLabel names an SSE event for the comparisons below: the resource id
// or the message data, with its topic.
func sseLabel(ev sseEvent) string {
	topic, _ := ev.Data["topic"].(string)
	if r, ok := ev.Data["resource"].(map[string]any); ok {
		return topic + " " + fmt.Sprint(r["id"])
	}
	m, _ := ev.Data["message"].(map[string]any)
	return topic + " " + fmt.Sprint(m["data"])
}

// nextEvents reads SSE events (bookmarks skipped) until every label in
// want has arrived, and fails on any other event.
func (st *sseStream) nextEvents(t *testing.T, want ...string) {
	t.Helper()
	pending := map[string]bool{}
	for _, w := range want {
		pending[w] = true
	}
	for len(pending) > 0 {
		ev := st.next("event", 10*time.Second)
		l := sseLabel(ev)
		if !pending[l] {
			t.Fatalf("unexpected SSE event %s (still waiting for %v)", l, pending)
		}
		delete(pending, l)
	}
}

// TestSSECompositeCursor: a stream over the most topics a stream takes,
// with the longest channel names, sends composite ids that fit the specs'
// Cursor maxLength; its bookmarks carry the stream's cursor as their id;
// the id resumes the stream with Last-Event-ID (label selector included:
// no missed resource event) and works as the cursor of any one of its
// topics on long-poll, channel history and WebSocket subscribe. A topic
// the id does not cover gets a 400 that says so.
func TestSSECompositeCursor(t *testing.T) {
	s := startServer(t, "--bookmark-interval", "200ms")
	s.mkcoll(t, "orders")
	doc, err := specval.LoadOpenAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	maxLen := int(*doc.Components.Schemas["Cursor"].Value.MaxLength)

	resources := "collections/orders/resources"
	topics := []string{resources}
	var channels []string
	for i := len(topics); i < 32; i++ {
		ch := fmt.Sprintf("c%02d", i) + strings.Repeat(".", 125) // the longest channel name, 128 characters
		channels = append(channels, ch)
		topics = append(topics, "channels/"+ch+"/messages")
	}
	q := url.Values{"topic": topics, "labels": {"env=prod"}}.Encode()

	st := s.sse(t, q, "")
	var want []string
	for i, ch := range channels {
		s.publish(t, ch, fmt.Sprintf(`"m%d"`, i))
		want = append(want, fmt.Sprintf("channels/%s/messages m%d", ch, i))
	}
	s.put(t, "orders", "r1", `{}`, map[string]string{"env": "prod"})
	want = append(want, resources+" r1")
	st.nextEvents(t, want...)
	// The id of the last event covers every topic; a bookmark carries the
	// same position, so the same id.
	bm := st.next("bookmark", 10*time.Second)
	id := bm.ID
	if !strings.HasPrefix(id, "s1.") || len(id) > maxLen {
		t.Fatalf("composite id of %d characters (limit %d): %.80s…", len(id), maxLen, id)
	}
	t.Logf("composite id over %d topics: %d characters (Cursor maxLength %d)", len(topics), len(id), maxLen)
	st.close()

	// Missed while disconnected: r2 matches the selector, r3 does not.
	s.put(t, "orders", "r2", `{}`, map[string]string{"env": "prod"})
	s.put(t, "orders", "r3", `{}`, map[string]string{"env": "dev"})
	m2 := s.publish(t, channels[0], `"again"`)

	resumed := s.sse(t, q, id)
	s.publish(t, channels[1], `"live"`)
	resumed.nextEvents(t, resources+" r2", "channels/"+channels[0]+"/messages again", "channels/"+channels[1]+"/messages live")
	resumed.close()

	// The same id as the cursor of one of its topics.
	ch0 := "channels/" + channels[0] + "/messages"
	changes := s.poll(t, ch0, id, "1s")
	if len(changes.Events) != 1 || changes.Events[0].Cursor != m2.Cursor {
		t.Fatalf("long-poll since the composite id: %+v, want the one message after it (%s)", changes.Events, m2.Cursor)
	}
	hist, err := s.Client.ChannelHistoryWithResponse(context.Background(), channels[0], &client.ChannelHistoryParams{Since: &id})
	if err != nil || hist.StatusCode() != 200 || len(hist.JSON200.Items) != 1 || hist.JSON200.Items[0].Cursor != m2.Cursor {
		t.Fatalf("history since the composite id: %v %d %s", err, hist.StatusCode(), hist.Body)
	}
	ws := s.dial(t)
	ws.subscribe("channels/"+channels[1]+"/messages", map[string]any{"since": id})
	if f := ws.nextOfType("event", 10*time.Second); f["message"].(map[string]any)["data"] != "live" {
		t.Fatalf("WebSocket subscribe since the composite id replayed %v, want the message after it", f)
	}

	// A topic the id does not cover.
	resp, p := s.do(t, "GET", "/v1/changes?wait=1s&topic=channels/other/messages&since="+url.QueryEscape(id), "", "")
	if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(p), "holds no position for topic channels/other/messages") {
		t.Fatalf("long-poll on a topic the composite id does not cover: %d %v", resp.StatusCode, p)
	}
	resp, p = s.do(t, "GET", "/v1/events?topic=channels/other/messages", "", "", "Last-Event-ID", id)
	if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(p), "holds no position for any topic of this stream") {
		t.Fatalf("SSE over topics the composite id does not cover: %d %v", resp.StatusCode, p)
	}
}
