package main

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rawGet is a GET through the validating client, with its body as sent.
func (s *testServer) rawGet(t *testing.T, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// rawPut is a PUT of a resource's data; it returns the reply's body as sent
// and its ETag.
func (s *testServer) rawPut(t *testing.T, path, data string) (string, string) {
	t.Helper()
	req, err := http.NewRequest("PUT", s.URL+path, strings.NewReader(`{"data":`+data+`}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 && resp.StatusCode != 201 {
		t.Fatalf("PUT %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b), resp.Header.Get("ETag")
}

// mustGet GETs path and checks that it answers 200 with exactly body and
// tag (a GET answers the bytes the write replied with).
func (s *testServer) mustGet(t *testing.T, path, body, tag string) {
	t.Helper()
	resp, got := s.rawGet(t, path)
	if resp.StatusCode != 200 || got != body || resp.Header.Get("ETag") != tag || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s = %d %q ETag %s (%s), want 200 %q ETag %s", path, resp.StatusCode, got, resp.Header.Get("ETag"), resp.Header.Get("Content-Type"), body, tag)
	}
}

// TestResourceCacheE2E: through the resource cache (on by default), a GET
// after a write on the same node answers the new body and ETag,
// If-None-Match still answers 304 for the current ETag only, and a
// deleted resource is 404 (every response checked against the spec).
func TestResourceCacheE2E(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
	}{{"Cache", nil}, {"NoCache", []string{"--resource-cache-bytes", "0"}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.args...)
			s.mkcoll(t, "notes")
			const path = "/v1/collections/notes/resources/n1"
			body, tag := s.rawPut(t, path, `{"v":1,"html":"<b>&</b>"}`)
			for range 3 {
				s.mustGet(t, path, body, tag)
			}
			body2, tag2 := s.rawPut(t, path, `{"v":2}`)
			if tag2 == tag {
				t.Fatalf("ETag unchanged by a write: %s", tag)
			}
			s.mustGet(t, path, body2, tag2)
			s.mustGet(t, path, body2, tag2)

			if resp, got := s.rawGet(t, path, "If-None-Match", tag2); resp.StatusCode != 304 || got != "" || resp.Header.Get("ETag") != tag2 {
				t.Fatalf("If-None-Match current: %d %q ETag %s", resp.StatusCode, got, resp.Header.Get("ETag"))
			}
			if resp, _ := s.rawGet(t, path, "If-None-Match", `W/"1", `+tag2); resp.StatusCode != 304 {
				t.Fatalf("If-None-Match list with the current tag: %d", resp.StatusCode)
			}
			if resp, _ := s.rawGet(t, path, "If-None-Match", "*"); resp.StatusCode != 304 {
				t.Fatalf("If-None-Match *: %d", resp.StatusCode)
			}
			resp, got := s.rawGet(t, path, "If-None-Match", tag)
			if resp.StatusCode != 200 || got != body2 || resp.Header.Get("ETag") != tag2 {
				t.Fatalf("If-None-Match with the old tag: %d %q ETag %s", resp.StatusCode, got, resp.Header.Get("ETag"))
			}
			if resp, _ := s.rawGet(t, path, "If-None-Match", "nonsense"); resp.StatusCode != 400 {
				t.Fatalf("If-None-Match malformed: %d, want 400", resp.StatusCode)
			}

			resp, patched := s.do(t, "PATCH", path, "application/merge-patch+json", `{"data":{"w":3}}`)
			if resp.StatusCode != 200 {
				t.Fatalf("PATCH: %d %v", resp.StatusCode, patched)
			}
			resp, got = s.rawGet(t, path)
			if resp.StatusCode != 200 || !strings.Contains(got, `"w":3`) || resp.Header.Get("ETag") == tag2 {
				t.Fatalf("GET after PATCH: %d %s ETag %s", resp.StatusCode, got, resp.Header.Get("ETag"))
			}
			if want := strconv.Quote(strconv.Itoa(int(patched["revision"].(float64)))); resp.Header.Get("ETag") != want {
				t.Fatalf("GET after PATCH: ETag %s, want %s", resp.Header.Get("ETag"), want)
			}

			if resp, _ := s.do(t, "DELETE", path, "", ""); resp.StatusCode != 200 && resp.StatusCode != 204 {
				t.Fatalf("DELETE: %d", resp.StatusCode)
			}
			for range 2 {
				if resp, _ := s.rawGet(t, path); resp.StatusCode != 404 {
					t.Fatalf("GET after DELETE: %d, want 404", resp.StatusCode)
				}
			}

			body3, tag3 := s.rawPut(t, path, `{"v":"again"}`)
			s.mustGet(t, path, body3, tag3)
			if resp, _ := s.do(t, "DELETE", "/v1/collections/notes", "", ""); resp.StatusCode != 204 && resp.StatusCode != 200 {
				t.Fatalf("DELETE collection: %d", resp.StatusCode)
			}
			if resp, _ := s.rawGet(t, path); resp.StatusCode != 404 {
				t.Fatalf("GET after the collection's deletion: %d, want 404", resp.StatusCode)
			}

			hits := metricValue(t, s.metrics(t), "tandem_resource_cache_hits_total")
			if tc.args == nil && hits == 0 {
				t.Fatal("no GET was answered from the cache")
			}
			if tc.args != nil && hits != 0 {
				t.Fatalf("%v hits with the cache off", hits)
			}
		})
	}
}

// TestResourceCacheTwoNodes runs two nodes on one PostgreSQL database: a
// write on node A is seen by a GET on node B once B's change feed has
// delivered it (B had the older revision cached), and so is a deletion.
func TestResourceCacheTwoNodes(t *testing.T) {
	dsn := freshPostgres(t)
	a, b := startServer(t, "--store", dsn), startServer(t, "--store", dsn)
	a.mkcoll(t, "notes")
	const path = "/v1/collections/notes/resources/n1"
	body, tag := a.rawPut(t, path, `{"v":1}`)
	waitFeed(t, b, tag)
	for range 3 {
		b.mustGet(t, path, body, tag)
	}
	if hits := metricValue(t, b.metrics(t), "tandem_resource_cache_hits_total"); hits == 0 {
		t.Fatal("node B answered no GET from its cache")
	}
	for i := range 5 {
		body2, tag2 := a.rawPut(t, path, `{"v":`+strconv.Itoa(i+2)+`}`)
		waitFeed(t, b, tag2)
		b.mustGet(t, path, body2, tag2)
		b.mustGet(t, path, body2, tag2)
		if resp, _ := b.rawGet(t, path, "If-None-Match", tag); resp.StatusCode != 200 {
			t.Fatalf("node B: If-None-Match with an old tag: %d", resp.StatusCode)
		}
		tag = tag2
	}
	resp, _ := a.do(t, "DELETE", path, "", "")
	if resp.StatusCode != 200 && resp.StatusCode != 204 {
		t.Fatalf("DELETE on A: %d", resp.StatusCode)
	}
	waitFeed(t, b, "")
	if resp, _ := b.rawGet(t, path); resp.StatusCode != 404 {
		t.Fatalf("node B after the deletion on A was delivered: %d, want 404", resp.StatusCode)
	}
}

// waitFeed waits until node s's change feed has delivered the store's
// newest revision (tag is its ETag, "" for whatever it is now): every
// change up to it has reached s's resource cache.
func waitFeed(t *testing.T, s *testServer, tag string) {
	t.Helper()
	want := 0.0
	if tag != "" {
		n, err := strconv.Unquote(tag)
		if err != nil {
			t.Fatalf("ETag %q", tag)
		}
		v, _ := strconv.Atoi(n)
		want = float64(v)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		text := s.metrics(t)
		head := metricValue(t, text, "tandem_store_revision")
		target := max(want, head)
		if metricValue(t, text, "tandem_change_feed_revision") >= target {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the change feed did not reach revision %v", s.URL, target)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
