package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// patchCollection sends PATCH /v1/collections/{name}?query through the
// validating client.
func (s *testServer) patchCollection(t *testing.T, name, query, body string, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	path := "/v1/collections/" + name
	if query != "" {
		path += "?" + query
	}
	return s.do(t, "PATCH", path, "application/merge-patch+json", body, hdr...)
}

// offenderIDs are the resource IDs a 422 problem's offenders list.
func offenderIDs(t *testing.T, p map[string]any) []string {
	t.Helper()
	list, _ := p["offenders"].([]any)
	var ids []string
	for _, o := range list {
		m := o.(map[string]any)
		if m["pointer"] == nil || m["detail"] == "" {
			t.Errorf("offender without pointer or detail: %v", m)
		}
		ids = append(ids, m["id"].(string))
	}
	return ids
}

// fieldPointers are the pointers of a problem's errors.
func fieldPointers(p map[string]any) []string {
	list, _ := p["errors"].([]any)
	var out []string
	for _, f := range list {
		if ptr, ok := f.(map[string]any)["pointer"].(string); ok {
			out = append(out, ptr)
		}
	}
	return out
}

func TestCollectionPatch(t *testing.T) {
	s := startServer(t)
	resp, c := s.do(t, "POST", "/v1/collections", "application/json",
		`{"name":"orders","schema":{"type":"object"},"description":"Shop orders","indexes":[{"fields":["data.item"]}]}`)
	if resp.StatusCode != 201 || c["description"] != "Shop orders" || c["updatedAt"] != c["createdAt"] || c["indexes"] == nil {
		t.Fatalf("create: %d %v", resp.StatusCode, c)
	}
	s.put(t, "orders", "o-1", `{"item":"tea","qty":2}`, map[string]string{"env": "prod"})
	s.put(t, "orders", "o-2", `{"qty":0}`, map[string]string{"env": "dev"})
	s.put(t, "orders", "o-3", `{"item":"cake","qty":"many"}`, nil)
	resp, got := s.do(t, "GET", "/v1/collections/orders", "", "")
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag != fmt.Sprintf(`"%d"`, int64(got["revision"].(float64))) {
		t.Fatalf("GET collection: %d ETag %q %v", resp.StatusCode, etag, got)
	}

	// Subscribers of the collection (with and without a selector), of one
	// resource, and over SSE.
	ws := s.dial(t)
	all := ws.subscribe("collections/orders/resources", nil)
	ws.subscribe("collections/orders/resources", map[string]any{"labels": "env=prod"})
	ws.subscribe("collections/orders/resources/o-1", nil)
	sse := s.sse(t, "topic=collections/orders/resources&labels=env%3Dqa", "")

	tighter := `{"schema":{"required":["item"],"properties":{"qty":{"type":"integer","minimum":1}}}}`
	t.Run("OffendersRefuse", func(t *testing.T) {
		resp, p := s.patchCollection(t, "orders", "", tighter)
		if resp.StatusCode != 422 || p["type"] != "https://tandem.dev/problems/schema-violation" {
			t.Fatalf("PATCH with offenders: %d %v", resp.StatusCode, p)
		}
		if ids := offenderIDs(t, p); strings.Join(ids, ",") != "o-2,o-3" {
			t.Fatalf("offenders = %v, want o-2, o-3", ids)
		}
		if !strings.Contains(p["detail"].(string), "validate=new-writes-only") {
			t.Errorf("detail does not suggest new-writes-only: %v", p["detail"])
		}
		resp, now := s.do(t, "GET", "/v1/collections/orders", "", "")
		if resp.Header.Get("ETag") != etag || now["schema"].(map[string]any)["required"] != nil {
			t.Fatalf("a refused PATCH changed the collection: %v", now)
		}
	})
	t.Run("IfMatch", func(t *testing.T) {
		resp, p := s.patchCollection(t, "orders", "validate=new-writes-only", `{"description":"x"}`, "If-Match", `"2"`)
		if resp.StatusCode != 412 || p["type"] != "https://tandem.dev/problems/precondition-failed" {
			t.Fatalf("stale If-Match: %d %v", resp.StatusCode, p)
		}
		resp, _ = s.patchCollection(t, "orders", "", `{"description":"x"}`, "If-Match", "nope")
		if resp.StatusCode != 400 {
			t.Fatalf("malformed If-Match: %d", resp.StatusCode)
		}
	})
	t.Run("BadInput", func(t *testing.T) {
		resp, p := s.patchCollection(t, "orders", "", `{"indexes":[{"fields":["id"]},{"fields":["data.a"]},{"fields":["bogus"]}]}`)
		if resp.StatusCode != 422 || strings.Join(fieldPointers(p), ",") != "/indexes/2/fields/0" {
			t.Fatalf("bad index: %d %v", resp.StatusCode, p)
		}
		resp, _ = s.do(t, "PATCH", "/v1/collections/orders", "text/plain", `{}`)
		if resp.StatusCode != 415 {
			t.Fatalf("text/plain: %d", resp.StatusCode)
		}
		resp, _ = s.patchCollection(t, "orders", "", `{"colour":1}`)
		if resp.StatusCode != 400 {
			t.Fatalf("unknown member: %d", resp.StatusCode)
		}
		resp, _ = s.patchCollection(t, "nope", "", `{"description":"x"}`)
		if resp.StatusCode != 404 {
			t.Fatalf("missing collection: %d", resp.StatusCode)
		}
		resp, _ = s.patchCollection(t, "orders", "validate=maybe", `{"description":"x"}`)
		if resp.StatusCode != 400 {
			t.Fatalf("validate=maybe: %d", resp.StatusCode)
		}
	})

	// The stored offenders stay; new writes get the new schema.
	var updated map[string]any
	t.Run("NewWritesOnly", func(t *testing.T) {
		resp, c := s.do(t, "PATCH", "/v1/collections/orders?validate=new-writes-only", "application/json", tighter, "If-Match", etag)
		if resp.StatusCode != 200 {
			t.Fatalf("PATCH new-writes-only: %d %v", resp.StatusCode, c)
		}
		updated = c
		rev := int64(c["revision"].(float64))
		if resp.Header.Get("ETag") != fmt.Sprintf(`"%d"`, rev) || c["updatedAt"] == c["createdAt"] || c["description"] != "Shop orders" {
			t.Fatalf("PATCH reply: ETag %q %v", resp.Header.Get("ETag"), c)
		}
		schema := c["schema"].(map[string]any)
		if schema["type"] != "object" || schema["required"] == nil {
			t.Fatalf("merged schema = %v, want type kept and required added", schema)
		}
		resp, p := s.do(t, "PUT", "/v1/collections/orders/resources/o-4", "application/json", `{"data":{"qty":5}}`)
		if resp.StatusCode != 422 || strings.Join(fieldPointers(p), ",") != "/data" {
			t.Fatalf("a write the new schema refuses: %d %v", resp.StatusCode, p)
		}
		resp, _ = s.do(t, "PATCH", "/v1/collections/orders/resources/o-3", "application/merge-patch+json", `{"data":{"item":"pie"}}`)
		if resp.StatusCode != 422 {
			t.Fatalf("a patch leaving qty a string: %d", resp.StatusCode)
		}
		s.put(t, "orders", "o-4", `{"item":"jam","qty":5}`, nil)
	})
	if updated == nil {
		t.FailNow()
	}
	rev := updated["revision"].(float64)

	t.Run("Events", func(t *testing.T) {
		isUpdate := func(f map[string]any) bool {
			c, _ := f["collection"].(map[string]any)
			return f["event"] == "collection.updated" && c != nil && c["revision"] == rev && f["resource"] == nil
		}
		seen := map[string]bool{}
		for len(seen) < 2 {
			f := ws.nextOfType("event", 10*time.Second)
			switch {
			case f["topic"] == "collections/orders/resources/o-1":
				t.Fatalf("the resource subscriber got %v", f)
			case isUpdate(f):
				seen[fmt.Sprint(f["labels"])] = true
			case f["event"] == "resource.created" && f["labels"] == nil: // o-4, for the unfiltered one
			default:
				t.Fatalf("unexpected event %v", f)
			}
		}
		ev := sse.next("event", 10*time.Second)
		if ev.Data["event"] != "collection.updated" || ev.Data["labels"] != "env=qa" {
			t.Fatalf("SSE got %v", ev.Data)
		}
		// The resource subscriber's next event is its own resource's.
		s.put(t, "orders", "o-1", `{"item":"tea","qty":3}`, map[string]string{"env": "prod"})
		for {
			f := ws.nextOfType("event", 10*time.Second)
			if f["topic"] == "collections/orders/resources/o-1" {
				if f["event"] != "resource.updated" {
					t.Fatalf("resource subscriber got %v", f)
				}
				break
			}
		}
		since := all["cursor"].(string)
		ch := s.poll(t, "collections/orders/resources", since, "1s")
		found := false
		for _, e := range ch.Events {
			found = found || (e.Event == "collection.updated" && e.Collection != nil && float64(e.Collection.Revision) == rev)
		}
		if !found {
			t.Fatalf("long-poll since the subscribe did not replay the collection change: %+v", ch.Events)
		}
	})

	t.Run("RemoveSchema", func(t *testing.T) {
		resp, c := s.patchCollection(t, "orders", "", `{"schema":null,"indexes":null,"description":null}`)
		if resp.StatusCode != 200 || c["schema"] != nil || c["indexes"] != nil || c["description"] != nil {
			t.Fatalf("remove: %d %v", resp.StatusCode, c)
		}
		s.put(t, "orders", "o-5", `{"anything":true}`, nil)
	})

	t.Run("AtMostTenOffenders", func(t *testing.T) {
		s.mkcoll(t, "many")
		for i := range 12 {
			s.put(t, "many", fmt.Sprintf("m-%02d", i), `{}`, nil)
		}
		resp, p := s.patchCollection(t, "many", "", `{"schema":{"type":"object","required":["x"]}}`)
		if ids := offenderIDs(t, p); resp.StatusCode != 422 || len(ids) != 10 || ids[0] != "m-00" {
			t.Fatalf("12 offenders: %d %v", resp.StatusCode, ids)
		}
	})
}
