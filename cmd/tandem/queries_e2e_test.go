package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// listIDs pages through GET …/resources with query q (filter, orderBy,
// labels) and page size n, following nextPageToken, and returns the IDs.
func (s *testServer) listIDs(t *testing.T, coll string, q url.Values, n int) []string {
	t.Helper()
	var ids []string
	q.Set("limit", fmt.Sprint(n))
	for range 100 {
		resp, body := s.do(t, "GET", "/v1/collections/"+coll+"/resources?"+q.Encode(), "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("list %s?%s: %d %v", coll, q.Encode(), resp.StatusCode, body)
		}
		for _, it := range body["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		tok, ok := body["nextPageToken"].(string)
		if !ok {
			return ids
		}
		if link := resp.Header.Get("Link"); !strings.Contains(link, "pageToken=") {
			t.Fatalf("Link %q does not carry the page token", link)
		}
		q.Set("pageToken", tok)
	}
	t.Fatal("more than 100 pages")
	return nil
}

// TestQueriesREST lists with filter and orderBy: the same results over
// every page size, bad expressions refused naming their position, tokens
// bound to their query, and a scan beyond --max-scan refused advising an
// index.
func TestQueriesREST(t *testing.T) {
	s := startServer(t, "--max-scan", "1000")
	s.mkcoll(t, "orders")
	for i := range 40 {
		s.put(t, "orders", fmt.Sprintf("o%02d", i), fmt.Sprintf(`{"qty":%d,"status":%q,"score":%d}`, i%7, []string{"new", "paid"}[i%2], (i*11)%17), map[string]string{"env": []string{"prod", "dev"}[i%3%2]})
	}
	for _, tc := range []struct {
		filter, order string
		want          []string
	}{
		{`data.qty > 5`, "", []string{"o06", "o13", "o20", "o27", "o34"}},
		{`data.qty > 5 && labels.env == "prod"`, "data.score desc", []string{"o20", "o06", "o27"}},
		{`data.status == "paid" && data.qty >= 5`, "data.qty, id desc", []string{"o33", "o19", "o05", "o27", "o13"}},
		{`startsWith(id, "o3") && !(data.status == "new")`, "id desc", []string{"o39", "o37", "o35", "o33", "o31"}},
	} {
		for _, n := range []int{1, 2, 100} {
			q := url.Values{"filter": {tc.filter}}
			if tc.order != "" {
				q.Set("orderBy", tc.order)
			}
			if got := s.listIDs(t, "orders", q, n); !slices.Equal(got, tc.want) {
				t.Errorf("filter %q orderBy %q pages of %d: %v, want %v", tc.filter, tc.order, n, got, tc.want)
			}
		}
	}

	for _, tc := range []struct{ query, param, detail string }{
		{"filter=" + url.QueryEscape("data.qty >"), "filter", "position 11"},
		{"filter=" + url.QueryEscape("qty > 1"), "filter", `unknown field "qty"`},
		{"orderBy=" + url.QueryEscape("data.qty sideways"), "orderBy", `unexpected "sideways"`},
		{"orderBy=" + url.QueryEscape(`data["a b"]`), "orderBy", "cannot order by"},
		{"filter=" + url.QueryEscape(strings.Repeat("(", 40)+"id == 'a'"+strings.Repeat(")", 40)), "filter", "nested deeper than 32"},
	} {
		resp, body := s.do(t, "GET", "/v1/collections/orders/resources?"+tc.query, "", "")
		detail := fmt.Sprint(body["detail"], body["invalidParams"], body["errors"])
		if resp.StatusCode != 400 || !strings.Contains(detail, tc.param) || !strings.Contains(detail, tc.detail) {
			t.Errorf("%s: %d %v, want 400 naming %s and %q", tc.query, resp.StatusCode, body, tc.param, tc.detail)
		}
	}

	// A token continues only the query that issued it.
	_, body := s.do(t, "GET", "/v1/collections/orders/resources?limit=2&orderBy=data.qty", "", "")
	tok := body["nextPageToken"].(string)
	resp, body := s.do(t, "GET", "/v1/collections/orders/resources?limit=2&orderBy=data.score&pageToken="+tok, "", "")
	if resp.StatusCode != 400 || !strings.Contains(fmt.Sprint(body), "another query") {
		t.Errorf("token of another order: %d %v", resp.StatusCode, body)
	}

	// Beyond the scan budget: 1,100 resources, a filter nothing matches.
	s.mkcoll(t, "big")
	for i := range 1100 {
		s.put(t, "big", fmt.Sprintf("b%04d", i), fmt.Sprintf(`{"n":%d}`, i), nil)
	}
	for _, q := range []string{"filter=" + url.QueryEscape("data.n < 0"), "orderBy=data.n"} {
		resp, body = s.do(t, "GET", "/v1/collections/big/resources?"+q, "", "")
		if resp.StatusCode != 422 || !strings.HasSuffix(fmt.Sprint(body["type"]), "/needs-index") || !strings.Contains(fmt.Sprint(body["detail"]), "data.n") {
			t.Errorf("%s on 1,100 resources with --max-scan 1000: %d %v, want 422 needs-index naming data.n", q, resp.StatusCode, body)
		}
	}
	// Declaring the index the problem advises makes both queries work.
	resp, body = s.do(t, "PATCH", "/v1/collections/big", "application/merge-patch+json", `{"indexes":[{"fields":["data.n"]}]}`)
	if resp.StatusCode != 200 {
		t.Fatalf("PATCH indexes: %d %v", resp.StatusCode, body)
	}
	if got := s.listIDs(t, "big", url.Values{"filter": {"data.n < 0"}}, 10); len(got) != 0 {
		t.Errorf("indexed filter: %v", got)
	}
	if got := s.listIDs(t, "big", url.Values{"filter": {"data.n >= 1090"}, "orderBy": {"data.n desc"}}, 4); !slices.Equal(got, []string{"b1099", "b1098", "b1097", "b1096", "b1095", "b1094", "b1093", "b1092", "b1091", "b1090"}) {
		t.Errorf("indexed filter and order: %v", got)
	}
	resp, body = s.do(t, "POST", "/v1/collections", "application/json", `{"name":"ix","indexes":[{"fields":["data.status","data.qty"]},{"fields":["nope"]}]}`)
	if resp.StatusCode != 422 || !strings.Contains(fmt.Sprint(body), "/indexes/1/fields/0") {
		t.Errorf("a bad index: %d %v, want 422 naming /indexes/1/fields/0", resp.StatusCode, body)
	}

	// A filter whose every page fills (or reaches the end) within the
	// budget pages on; the last page of a sparse one would not.
	if got := s.listIDs(t, "big", url.Values{"filter": {"data.n >= 50"}}, 100); len(got) != 1050 {
		t.Errorf("a filter whose pages fill within the budget: %d items", len(got))
	}
}

// TestQueriesStreams checks one filter on every transport: a WebSocket
// snapshot holds only matching resources, a resource entering the filter
// arrives as resource.created and one leaving it as resource.deleted; SSE
// and long-poll see the same events; channel topics refuse filters.
func TestQueriesStreams(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "orders")
	s.put(t, "orders", "a", `{"qty":5}`, nil)
	s.put(t, "orders", "b", `{"qty":1}`, nil)
	const filter = `data.qty>2`
	const canon = `data.qty > 2`

	ws := s.dial(t)
	res := ws.subscribe("collections/orders/resources", map[string]any{"filter": filter, "snapshot": true})
	if res["filter"] != canon {
		t.Errorf("subscribe reply filter = %v, want the canonical %q", res["filter"], canon)
	}
	snap := ws.nextOfType("event", 5*time.Second)
	if snap["event"] != "resource.snapshot" || snap["resource"].(map[string]any)["id"] != "a" || snap["filter"] != canon {
		t.Fatalf("snapshot = %v, want only a", snap)
	}
	if f := ws.nextOfType("synced", 5*time.Second); f["filter"] != canon {
		t.Errorf("synced = %v", f)
	}
	since := res["cursor"].(string)
	sse := s.sse(t, "topic=collections/orders/resources&filter="+url.QueryEscape(filter), "")
	defer sse.close()

	s.put(t, "orders", "b", `{"qty":3}`, nil) // enters
	s.put(t, "orders", "a", `{"qty":2}`, nil) // leaves
	s.put(t, "orders", "c", `{"qty":0}`, nil) // never matches
	s.put(t, "orders", "b", `{"qty":4}`, nil) // stays
	want := []string{"resource.created b", "resource.deleted a", "resource.updated b"}
	var got []string
	for range want {
		f := ws.nextOfType("event", 5*time.Second)
		got = append(got, fmt.Sprint(f["event"], " ", f["resource"].(map[string]any)["id"]))
		if f["filter"] != canon {
			t.Errorf("event filter = %v", f["filter"])
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("WebSocket events %v, want %v", got, want)
	}
	got = nil
	for range want {
		ev := sse.next("event", 5*time.Second)
		got = append(got, fmt.Sprint(ev.Data["event"], " ", ev.Data["resource"].(map[string]any)["id"]))
	}
	if !slices.Equal(got, want) {
		t.Errorf("SSE events %v, want %v", got, want)
	}
	f := filter
	r, err := s.Client.PollChangesWithResponse(context.Background(), &client.PollChangesParams{Topic: "collections/orders/resources", Since: &since, Filter: &f, Wait: ptr("1s")})
	if err != nil || r.JSON200 == nil {
		t.Fatalf("poll: %v %s", err, r.Body)
	}
	got = nil
	for _, ev := range r.JSON200.Events {
		got = append(got, fmt.Sprint(ev.Event, " ", ev.Resource.Id))
	}
	if !slices.Equal(got, want) {
		t.Errorf("long-poll events %v, want %v", got, want)
	}

	// A resource topic of one resource honours the filter too.
	one := ws.subscribe("collections/orders/resources/c", map[string]any{"filter": filter, "snapshot": true})
	if one["filter"] != canon {
		t.Errorf("reply %v", one)
	}
	if f := ws.nextOfType("synced", 5*time.Second); f["topic"] != "collections/orders/resources/c" {
		t.Errorf("c does not match: want synced at once, got %v", f)
	}

	for _, tc := range []struct{ frame map[string]any }{
		{map[string]any{"type": "subscribe", "topic": "collections/orders/resources", "filter": "data.qty >"}},
		{map[string]any{"type": "subscribe", "topic": "channels/room/messages", "filter": "data.qty > 1"}},
	} {
		reply := ws.request(tc.frame)
		p, _ := reply["problem"].(map[string]any)
		if reply["ok"] != false || !strings.Contains(fmt.Sprint(p), "filter") {
			t.Errorf("%v: reply %v, want an error naming filter", tc.frame, reply)
		}
	}
}

// TestQueriesWebhook delivers a filtered webhook: only the events the
// filter lets through, with enter as resource.created and leave as
// resource.deleted, in order; a bad filter is a 422 naming /filter.
func TestQueriesWebhook(t *testing.T) {
	s := startServer(t, "--webhook-allow-private", "--webhook-retry-min", "10ms", "--webhook-retry-max", "50ms")
	var mu sync.Mutex
	var got []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			Event    string `json:"event"`
			Filter   string `json:"filter"`
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
		}
		_ = json.NewDecoder(r.Body).Decode(&ev)
		mu.Lock()
		got = append(got, ev.Event+" "+ev.Resource.ID+" "+ev.Filter)
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()
	s.mkcoll(t, "orders")
	resp, body := s.do(t, "POST", "/v1/webhooks", "application/json", `{"topic":"collections/orders/resources","url":"`+recv.URL+`","filter":"data.qty>2 || labels.vip == 'yes'"}`)
	if resp.StatusCode != 201 || body["filter"] != `data.qty > 2 || labels.vip == "yes"` {
		t.Fatalf("create webhook: %d %v", resp.StatusCode, body)
	}
	resp, body = s.do(t, "POST", "/v1/webhooks", "application/json", `{"topic":"collections/orders/resources","url":"`+recv.URL+`","filter":"data.qty >"}`)
	if resp.StatusCode != 422 || !strings.Contains(fmt.Sprint(body), "/filter") {
		t.Errorf("bad filter: %d %v, want 422 naming /filter", resp.StatusCode, body)
	}
	s.put(t, "orders", "a", `{"qty":1}`, nil)                             // outside
	s.put(t, "orders", "a", `{"qty":5}`, nil)                             // enters
	s.put(t, "orders", "b", `{"qty":0}`, map[string]string{"vip": "yes"}) // created matching
	s.put(t, "orders", "a", `{"qty":0}`, nil)                             // leaves
	if r, err := s.Client.DeleteResourceWithResponse(context.Background(), "orders", "b", nil); err != nil || r.StatusCode() != 204 {
		t.Fatalf("delete b: %v", err)
	}
	canon := `data.qty > 2 || labels.vip == "yes"`
	want := []string{"resource.created a " + canon, "resource.created b " + canon, "resource.deleted a " + canon, "resource.deleted b " + canon}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond) // waiting for deliveries (asynchronous by design)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(got, want) {
		t.Errorf("deliveries %q, want %q", got, want)
	}
}
