package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

// batchOp is one operation of a batch request.
type batchOp map[string]any

// batch POSTs the operations through the validating client (hdr: header
// name, value, …) and returns the reply.
func (s *testServer) batch(t *testing.T, ops []batchOp, hdr ...string) (*http.Response, map[string]any, []byte) {
	t.Helper()
	body, err := json.Marshal(map[string]any{"operations": ops})
	if err != nil {
		t.Fatal(err)
	}
	resp, m := s.do(t, "POST", "/v1/batch", "application/json", string(body), hdr...)
	raw, _ := json.Marshal(m)
	return resp, m, raw
}

// storeRevision is the store's revision, read from a list reply.
func (s *testServer) storeRevision(t *testing.T) int64 {
	t.Helper()
	_, m := s.do(t, "GET", "/v1/collections/logs/resources?limit=1", "", "")
	return int64(m["revision"].(float64))
}

// batchMark is an event's batch member (nil when it has none).
func batchMark(f map[string]any) map[string]any {
	b, _ := f["batch"].(map[string]any)
	return b
}

// TestBatch: a batch across two collections reaches a WebSocket
// subscriber of both as contiguous events carrying the batch, End on each
// subscription's last one (a label-filtered subscriber's included, which
// never sees the batch's last change), and the same over SSE and
// long-poll; failing batches name their operation and write nothing; an
// idempotent retry replays the reply.
func TestBatch(t *testing.T) {
	s := startServer(t, "--max-batch-ops", "8")
	resp, _ := s.do(t, "POST", "/v1/collections", "application/json",
		`{"name":"orders","schema":{"type":"object","properties":{"item":{"type":"string"},"qty":{"type":"integer","minimum":1}}}}`)
	if resp.StatusCode != 201 {
		t.Fatalf("create orders: %d", resp.StatusCode)
	}
	s.mkcoll(t, "logs")

	all := s.dial(t)
	since := all.subscribe("collections/orders/resources", nil)["cursor"].(string)
	all.subscribe("collections/logs/resources", nil)
	prod := s.dial(t)
	prod.subscribe("collections/orders/resources", map[string]any{"labels": "env=prod"})

	ops := []batchOp{
		{"op": "create", "collection": "orders", "id": "o-1", "data": map[string]any{"item": "tea", "qty": 1}, "labels": map[string]string{"env": "prod"}},
		{"op": "put", "collection": "logs", "id": "l-1", "data": map[string]any{"m": "one"}},
		{"op": "create", "collection": "orders", "data": map[string]any{"item": "cake"}, "labels": map[string]string{"env": "dev"}},
		{"op": "patch", "collection": "orders", "id": "o-1", "data": map[string]any{"qty": 2}},
		{"op": "put", "collection": "orders", "id": "o-3", "data": map[string]any{}, "labels": map[string]string{"env": "dev"}, "ifNoneMatch": "*"},
		{"op": "put", "collection": "logs", "id": "l-2", "data": map[string]any{}},
	}
	base := s.storeRevision(t)
	resp, res, first := s.batch(t, ops, "Idempotency-Key", "batch-1")
	if resp.StatusCode != 200 {
		t.Fatalf("batch: %d %s", resp.StatusCode, first)
	}
	last := base + int64(len(ops))
	if int64(res["lastRevision"].(float64)) != last {
		t.Fatalf("lastRevision = %v, want %d", res["lastRevision"], last)
	}
	results := res["results"].([]any)
	for i, want := range []int{201, 201, 201, 200, 201, 201} {
		r := results[i].(map[string]any)
		if int(r["status"].(float64)) != want || int64(r["revision"].(float64)) != base+1+int64(i) || r["op"] != ops[i]["op"] {
			t.Fatalf("result %d = %v, want status %d at %d", i, r, want, base+1+int64(i))
		}
	}
	madeID := results[2].(map[string]any)["resource"].(map[string]any)["id"].(string)

	t.Run("WebSocket", func(t *testing.T) {
		// ops 0 2 3 4 in orders (end on 4), 1 5 in logs (end on 5), in revision order.
		wantEnd := map[int]bool{4: true, 5: true}
		for i := range ops {
			f := all.nextOfType("event", 5*time.Second)
			b := batchMark(f)
			if eventRev(f) != base+1+int64(i) || b == nil || b["id"] != res["id"] || int64(b["lastRevision"].(float64)) != last || b["end"] != wantEnd[i] {
				t.Fatalf("event %d = %v, want revision %d with batch %v end %v", i, f, base+1+int64(i), res["id"], wantEnd[i])
			}
		}
		// the filtered subscriber sees ops 0 and 3 only, end on 3
		for _, i := range []int{0, 3} {
			f := prod.nextOfType("event", 5*time.Second)
			if b := batchMark(f); eventRev(f) != base+1+int64(i) || b == nil || b["end"] != (i == 3) {
				t.Fatalf("filtered event = %v, want revision %d end %v", f, base+1+int64(i), i == 3)
			}
		}
	})
	t.Run("LongPoll", func(t *testing.T) {
		ch := s.poll(t, "collections/orders/resources", since, "1s")
		if len(ch.Events) != 4 {
			t.Fatalf("%d events, want 4", len(ch.Events))
		}
		for i, ev := range ch.Events {
			if ev.Batch == nil || ev.Batch.Id != res["id"] || ev.Batch.LastRevision != last || ev.Batch.End != (i == 3) {
				t.Fatalf("event %d batch = %+v", i, ev.Batch)
			}
		}
	})
	t.Run("SSE", func(t *testing.T) {
		st := s.sse(t, "topic=collections/orders/resources&labels="+url.QueryEscape("env=prod"), since)
		for _, end := range []bool{false, true} {
			ev := st.next("event", 5*time.Second)
			if b := batchMark(ev.Data); b == nil || b["end"] != end {
				t.Fatalf("SSE event %v, want batch end %v", ev.Data, end)
			}
		}
	})
	t.Run("IdempotentReplay", func(t *testing.T) {
		resp, _, again := s.batch(t, ops, "Idempotency-Key", "batch-1")
		if resp.StatusCode != 200 || resp.Header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again, first) {
			t.Fatalf("replay: %d %q\n%s\nwant\n%s", resp.StatusCode, resp.Header.Get("Idempotent-Replayed"), again, first)
		}
		if rev := s.storeRevision(t); rev != last {
			t.Fatalf("the replay wrote: revision %d, want %d", rev, last)
		}
		if resp, m, _ := s.batch(t, ops[:1], "Idempotency-Key", "batch-1"); resp.StatusCode != 409 || m["type"] != "https://tandem.dev/problems/conflict" {
			t.Fatalf("the key with another batch: %d %v", resp.StatusCode, m)
		}
	})

	ok := batchOp{"op": "put", "collection": "logs", "id": "fine", "data": map[string]any{}}
	many := make([]batchOp, 9)
	for i := range many {
		many[i] = ok
	}
	failures := []struct {
		name    string
		ops     []batchOp
		status  int
		slug    string
		op      int    // -1: none
		pointer string // "": not checked
	}{
		{"PreconditionFailed", []batchOp{ok, {"op": "put", "collection": "orders", "id": "o-1", "data": map[string]any{}, "ifMatch": 1}}, 412, "precondition-failed", 1, ""},
		{"PatchPrecondition", []batchOp{ok, ok, {"op": "patch", "collection": "orders", "id": "o-1", "data": map[string]any{}, "ifMatch": 1}}, 412, "precondition-failed", 2, ""},
		{"Conflict", []batchOp{ok, ok, {"op": "create", "collection": "orders", "id": madeID, "data": map[string]any{}}}, 409, "conflict", 2, ""},
		{"SchemaViolation", []batchOp{ok, {"op": "put", "collection": "orders", "id": "o-9", "data": map[string]any{"qty": 0}}, ok}, 422, "schema-violation", 1, "/operations/1/data/qty"},
		{"NotFound", []batchOp{{"op": "delete", "collection": "orders", "id": "nope"}, ok}, 404, "not-found", 0, ""},
		{"MissingCollection", []batchOp{ok, {"op": "put", "collection": "nope", "id": "x", "data": map[string]any{}}}, 404, "not-found", 1, ""},
		{"InvalidOp", []batchOp{ok, ok, ok, {"op": "merge", "collection": "logs", "id": "x"}}, 400, "invalid-request", 3, "/operations/3/op"},
		{"MissingID", []batchOp{ok, {"op": "patch", "collection": "logs", "data": map[string]any{}}}, 400, "invalid-request", 1, "/operations/1/id"},
		{"Empty", []batchOp{}, 400, "invalid-request", -1, ""},
		{"TooMany", many, 413, "too-large", -1, ""},
	}
	for _, f := range failures {
		t.Run(f.name, func(t *testing.T) {
			before := s.storeRevision(t)
			resp, m, raw := s.batch(t, f.ops)
			if resp.StatusCode != f.status || m["type"] != "https://tandem.dev/problems/"+f.slug {
				t.Fatalf("%d %s, want %d %s", resp.StatusCode, raw, f.status, f.slug)
			}
			if got, has := m["operation"]; has != (f.op >= 0) || (has && int(got.(float64)) != f.op) {
				t.Fatalf("operation = %v, want %d: %s", got, f.op, raw)
			}
			if f.op >= 0 && !strings.Contains(m["detail"].(string), fmt.Sprint(f.op)) {
				t.Fatalf("detail %q does not name operation %d", m["detail"], f.op)
			}
			if f.pointer != "" && !strings.Contains(string(raw), `"pointer":"`+f.pointer+`"`) {
				t.Fatalf("no field at %s: %s", f.pointer, raw)
			}
			if rev := s.storeRevision(t); rev != before {
				t.Fatalf("a failed batch moved the revision from %d to %d", before, rev)
			}
		})
	}
	t.Run("NoEventsFromFailedBatches", func(t *testing.T) {
		r := s.put(t, "orders", "after", `{}`, map[string]string{"env": "prod"})
		for _, ws := range []*wsClient{all, prod} {
			f := ws.nextOfType("event", 5*time.Second)
			if eventRev(f) != r.Revision || batchMark(f) != nil {
				t.Fatalf("next event = %v, want the single write at %d without batch", f, r.Revision)
			}
		}
	})
}

// TestBatchForbidden: every operation is authorised like its single
// call; one the caller may not do fails the batch with 403, naming it,
// before any data is validated, and writes nothing.
func TestBatchForbidden(t *testing.T) {
	s := startAuthServer(t)
	admin := []string{"X-API-Key", testAdminKey}
	for _, c := range []string{"orders", "logs"} {
		if resp, m := s.do(t, "POST", "/v1/collections", "application/json", `{"name":"`+c+`"}`, admin...); resp.StatusCode != 201 {
			t.Fatalf("create %s: %d %v", c, resp.StatusCode, m)
		}
	}
	tok := mintTest(t, "w", "write:collections/orders/** read:**", time.Now().Add(time.Hour), testAudience)
	bearer := []string{"Authorization", "Bearer " + tok}
	ops := []batchOp{
		{"op": "create", "collection": "orders", "data": map[string]any{}},
		{"op": "put", "collection": "orders", "id": "o-1", "data": map[string]any{}},
		{"op": "put", "collection": "logs", "id": "l-1", "data": map[string]any{}},
	}
	resp, m, raw := s.batch(t, ops, bearer...)
	if resp.StatusCode != 403 || m["type"] != "https://tandem.dev/problems/insufficient-scope" || m["operation"] != 2.0 {
		t.Fatalf("%d %s, want 403 insufficient-scope naming operation 2", resp.StatusCode, raw)
	}
	if _, l := s.do(t, "GET", "/v1/collections/orders/resources", "", "", admin...); len(l["items"].([]any)) != 0 {
		t.Fatalf("the forbidden batch wrote %v", l["items"])
	}
	resp, _, raw = s.batch(t, ops[:2], bearer...)
	if resp.StatusCode != 200 {
		t.Fatalf("the allowed part: %d %s", resp.StatusCode, raw)
	}
	if resp, m, _ := s.batch(t, ops[:1]); resp.StatusCode != 401 || !reflect.DeepEqual(m["operation"], 0.0) {
		t.Fatalf("anonymous: %d %v", resp.StatusCode, m)
	}
}
