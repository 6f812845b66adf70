package main

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// presenceFold applies presence frames as the SDKs do: state replaces,
// join adds or replaces, leave removes.
type presenceFold struct {
	members map[string]bool
	frames  map[string]int // action → frames
}

func (p *presenceFold) apply(t *testing.T, f map[string]any) {
	t.Helper()
	if f["type"] != "presence" {
		return
	}
	action := f["action"].(string)
	if p.members == nil || action == "state" {
		p.members = map[string]bool{}
	}
	if p.frames == nil {
		p.frames = map[string]int{}
	}
	p.frames[action]++
	for _, m := range f["members"].([]any) {
		id := m.(map[string]any)["id"].(string)
		if action == "leave" {
			delete(p.members, id)
		} else {
			p.members[id] = true
		}
	}
}

// await folds w's frames until cond holds or the deadline passes.
func (p *presenceFold) await(t *testing.T, w *wsClient, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %d members, frames %v", what, len(p.members), p.frames)
		}
		p.apply(t, w.nextOfType("presence", time.Until(deadline)))
	}
}

// walkPresence reads every page of the channel's presence through the
// validating client, limit members a page (0: the default).
func walkPresence(t *testing.T, s *testServer, channel string, limit int) (ids []string, pages int) {
	t.Helper()
	params := &client.ChannelPresenceParams{}
	if limit > 0 {
		params.Limit = &limit
	}
	for {
		r, err := s.Client.ChannelPresenceWithResponse(context.Background(), channel, params)
		if err != nil || r.StatusCode() != 200 {
			t.Fatalf("presence page %d: %v %d %s", pages, err, r.StatusCode(), r.Body)
		}
		pages++
		if limit > 0 && len(r.JSON200.Members) > limit {
			t.Fatalf("page %d lists %d members, limit %d", pages, len(r.JSON200.Members), limit)
		}
		for _, m := range r.JSON200.Members {
			ids = append(ids, m.Id)
			if len(m.Connections) != 1 {
				t.Errorf("member %s has %d connections, want 1", m.Id, len(m.Connections))
			}
		}
		if r.JSON200.NextPageToken == nil {
			return ids, pages
		}
		if len(r.JSON200.Members) == 0 || *r.JSON200.NextPageToken == "" {
			t.Fatalf("page %d: empty page or token, but a next page: %s", pages, r.Body)
		}
		params.PageToken = r.JSON200.NextPageToken
		if pages > 1000 {
			t.Fatal("the pages do not end")
		}
	}
}

// TestPresencePagesAndBatches: members joining one by one reach a
// presence subscriber in batched join frames (every frame validated
// against spec/asyncapi.yaml), the REST presence is walked page by page
// (every member once, in order, no next on the last page), and bad page
// parameters are 400 problems naming the parameter.
func TestPresencePagesAndBatches(t *testing.T) {
	s := startServer(t, "--presence-batch-window", "40ms")
	const room, n = "chat:big", 45
	watcher := s.dial(t)
	watcher.subscribe("channels/"+room+"/presence", nil)
	var fold presenceFold
	fold.apply(t, watcher.nextOfType("presence", 5*time.Second))
	if fold.frames["state"] != 1 || len(fold.members) != 0 {
		t.Fatalf("first presence frame: %v", fold)
	}

	members := make([]*wsClient, n)
	for i := range members {
		members[i] = s.dial(t)
		members[i].subscribe("channels/"+room+"/messages", map[string]any{"meta": map[string]any{"i": i}})
	}
	fold.await(t, watcher, "every member's join", func() bool { return len(fold.members) == n })
	t.Logf("%d joins in %d join frames", n, fold.frames["join"])
	if fold.frames["join"] >= n {
		t.Errorf("%d joins came in %d join frames: not batched", n, fold.frames["join"])
	}

	var want []string
	for id := range fold.members {
		want = append(want, id)
	}
	slices.Sort(want)
	for _, limit := range []int{0, 1, 7, n, 1000} {
		ids, pages := walkPresence(t, s, room, limit)
		if !slices.Equal(ids, want) {
			t.Errorf("limit %d: pages list %d members %v, want %d %v", limit, len(ids), ids, len(want), want)
		}
		per := limit
		if per == 0 {
			per = 100
		}
		if wantPages := (n + per - 1) / per; pages != wantPages {
			t.Errorf("limit %d: %d pages, want %d", limit, pages, wantPages)
		}
	}

	// Bad parameters: 400 naming the parameter.
	first, err := s.Client.ChannelPresenceWithResponse(context.Background(), room, &client.ChannelPresenceParams{Limit: ptr(10)})
	if err != nil || first.JSON200 == nil || first.JSON200.NextPageToken == nil {
		t.Fatalf("first page: %v %s", err, first.Body)
	}
	for _, tc := range []struct{ query, param string }{
		{"limit=0", "limit"},
		{"limit=1001", "limit"},
		{"limit=ten", "limit"},
		{"pageToken=bogus!", "pageToken"},
		{"pageToken=" + url.QueryEscape(*first.JSON200.NextPageToken), ""}, // fine here…
	} {
		for _, ch := range []string{room, "chat:other"} {
			resp, p := s.do(t, "GET", "/v1/channels/"+ch+"/presence?"+tc.query, "", "")
			param := tc.param
			if param == "" && ch != room {
				param = "pageToken" // …but not for another channel
			}
			if param == "" {
				if resp.StatusCode != 200 {
					t.Errorf("%s on %s: %d %v", tc.query, ch, resp.StatusCode, p)
				}
				continue
			}
			if resp.StatusCode != 400 || !strings.Contains(resp.Header.Get("Content-Type"), "application/problem+json") || !strings.Contains(fmt.Sprint(p), param) {
				t.Errorf("%s on %s: %d %v, want a 400 problem naming %s", tc.query, ch, resp.StatusCode, p, param)
			}
		}
	}

	// A third of the members leave: the subscriber and the pages agree.
	for i := 0; i < n; i += 3 {
		members[i].c.Close()
	}
	fold.await(t, watcher, "the leaves", func() bool { return len(fold.members) == n-(n+2)/3 })
	want = want[:0]
	for id := range fold.members {
		want = append(want, id)
	}
	slices.Sort(want)
	if ids, _ := walkPresence(t, s, room, 4); !slices.Equal(ids, want) {
		t.Errorf("after the leaves the pages list %v, want %v", ids, want)
	}
}
