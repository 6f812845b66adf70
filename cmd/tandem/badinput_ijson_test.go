package main

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// ijsonCatalogue: bodies and frames that are JSON but not I-JSON (RFC
// 7493) — a duplicate member, a number beyond the IEEE 754 double range,
// nesting beyond the parser's limit — are refused at the edge with a 400
// naming the member, and nothing is stored or relayed; and refusals say
// what is wrong and where (byte offset, header or parameter name).
func ijsonCatalogue() []hostile {
	const res = "/v1/collections/c/resources"
	return []hostile{
		{"REST/IJSONDuplicateInData", func(t *testing.T, s *testServer) {
			// With one qty the schema refuses -5; encoding/json alone sees
			// only the last qty (5), so the first would be stored unchecked.
			if resp, _ := s.do(t, "POST", "/v1/collections", "application/json", `{"name":"ijson","schema":{"type":"object","properties":{"qty":{"type":"integer","minimum":1}}}}`); resp.StatusCode != 201 {
				t.Fatalf("create collection: %d", resp.StatusCode)
			}
			restField(t, s, "PUT", "/v1/collections/ijson/resources/dup", "application/json", `{"data":{"qty":-5,"qty":5}}`,
				"/data/qty", `body field /data/qty: duplicate member "qty" at byte 18`)
			expectAbsent(t, s, "/v1/collections/ijson/resources/dup")
		}},
		{"REST/IJSONDuplicateTopLevel", func(t *testing.T, s *testServer) {
			restField(t, s, "PUT", res+"/dup2", "application/json", `{"data":{"a":1},"data":{"a":2}}`,
				"/data", `body field /data: duplicate member "data" at byte 16`)
			expectAbsent(t, s, res+"/dup2")
		}},
		{"REST/IJSONNumberOverflowInData", func(t *testing.T, s *testServer) {
			restField(t, s, "PUT", res+"/inf", "application/json", `{"data":{"n":1e999999}}`,
				"/data/n", "body field /data/n: number 1e999999 is beyond the range of an IEEE 754 double at byte 13")
			expectAbsent(t, s, res+"/inf")
		}},
		{"REST/IJSONNumberOverflowInPublish", func(t *testing.T, s *testServer) {
			restField(t, s, "POST", "/v1/channels/ijson/messages", "application/json", `{"data":[1,-1e400]}`,
				"/data/1", "body field /data/1: number -1e400 is beyond the range of an IEEE 754 double at byte 11")
		}},
		{"REST/IJSONInMergePatch", func(t *testing.T, s *testServer) {
			before := s.put(t, "c", "patched", `{"qty":2}`, nil)
			restField(t, s, "PATCH", res+"/patched", "application/merge-patch+json", `{"data":{"qty":1e999999}}`,
				"/data/qty", "body field /data/qty: number 1e999999 is beyond the range")
			// A duplicate would make "set" or "delete" depend on the parser.
			restField(t, s, "PATCH", res+"/patched", "application/merge-patch+json", `{"data":{"qty":3,"qty":null}}`,
				"/data/qty", `body field /data/qty: duplicate member "qty"`)
			r, err := s.Client.GetResourceWithResponse(t.Context(), "c", "patched", nil)
			if err != nil || r.JSON200 == nil || canonJSON(r.JSON200.Data) != canonJSON([]byte(`{"qty":2}`)) || r.JSON200.Revision != before.Revision {
				t.Fatalf("resource changed by refused patches: %v %s", err, r.Body)
			}
		}},
		{"REST/TruncatedBodyExplained", func(t *testing.T, s *testServer) {
			restField(t, s, "POST", res, "application/json", `{"data":{"a":`, "", "malformed JSON: unexpected end of input at byte 13")
		}},
		{"REST/SSEBadLastEventIDNamesHeader", func(t *testing.T, s *testServer) {
			f := restProblem(t, s, "GET", "/v1/events?topic=collections/c/resources", "", "", "Last-Event-ID", "../../x")
			if f["in"] != "header" || f["name"] != "Last-Event-ID" {
				t.Fatalf("field %v, want header Last-Event-ID", f)
			}
			f = restProblem(t, s, "GET", "/v1/events?topic=collections/c/resources&since=..%2F..%2Fx", "", "")
			if f["in"] != "query" || f["name"] != "since" {
				t.Fatalf("field %v, want query since", f)
			}
		}},
		{"REST/LongPollTopicTwice", func(t *testing.T, s *testServer) {
			f := restProblem(t, s, "GET", "/v1/changes?topic=collections/c/resources&topic=collections/control/resources&wait=1ms", "", "")
			if f["in"] != "query" || f["name"] != "topic" || f["detail"] != "may appear only once (got 2 values)" {
				t.Fatalf("field %v, want query topic: may appear only once", f)
			}
		}},
		{"WS/IJSONDuplicateTopic", wsField(`{"type":"subscribe","ref":"s","topic":"collections/c/resources","topic":"channels/ijson/messages"}`,
			"s", "/topic", `subscribe frame: /topic: duplicate member "topic" at byte 64`)},
		{"WS/IJSONNumberOverflowInPublish", func(t *testing.T, s *testServer) {
			sub := s.dial(t)
			sub.subscribe("channels/ijson-ws/messages", nil)
			wsField(`{"type":"publish","ref":"p","topic":"channels/ijson-ws/messages","data":{"n":1e999999}}`,
				"p", "/data/n", "publish frame: /data/n: number 1e999999 is beyond the range of an IEEE 754 double at byte 77")(t, s)
			// Nothing was relayed: the next message the subscriber sees is
			// this one.
			if r := sub.request(map[string]any{"type": "publish", "topic": "channels/ijson-ws/messages", "data": 1}); r["ok"] != true {
				t.Fatalf("publish: %v", r)
			}
			if ev := sub.nextOfType("event", 10*time.Second); ev["message"].(map[string]any)["data"] != float64(1) {
				t.Fatalf("first event %v, want data 1", ev)
			}
		}},
		{"WS/NestingBeyondParserExplained", wsField(`{"type":"publish","ref":"n","topic":"channels/deep/messages","data":`+nested(20000, "[", "]", "")+`}`,
			"n", "", "publish frame: (frame): nesting deeper than 10000 levels at byte 10067")},
	}
}

// restProblem sends a request that must be refused with a 400
// invalid-request problem and returns its single errors[] entry.
func restProblem(t *testing.T, s *testServer, method, path, ct, body string, hdr ...string) map[string]any {
	t.Helper()
	resp, p := s.do(t, method, path, ct, body, hdr...)
	if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("%s %s → %d %s, want a 400 problem: %v", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), p)
	}
	if typ, _ := p["type"].(string); !strings.HasSuffix(typ, "/problems/invalid-request") {
		t.Fatalf("problem type %q, want invalid-request", typ)
	}
	errs, _ := p["errors"].([]any)
	if len(errs) != 1 {
		t.Fatalf("problem errors %v, want one", p["errors"])
	}
	f, _ := errs[0].(map[string]any)
	if d, _ := f["detail"].(string); d == "" {
		t.Fatalf("field without detail: %v", p)
	}
	f["problemDetail"] = p["detail"]
	return f
}

// restField checks a 400 invalid-request problem whose one body field has
// pointer (none if "") and whose detail starts with detail.
func restField(t *testing.T, s *testServer, method, path, ct, body, pointer, detail string) {
	t.Helper()
	f := restProblem(t, s, method, path, ct, body)
	got, _ := f["pointer"].(string)
	if f["in"] != "body" || got != pointer {
		t.Fatalf("field %v, want in body, pointer %q", f, pointer)
	}
	if d, _ := f["problemDetail"].(string); !strings.HasPrefix(d, detail) {
		t.Fatalf("problem detail %q, want %q", d, detail)
	}
}

// expectAbsent checks that a refused write stored nothing.
func expectAbsent(t *testing.T, s *testServer, path string) {
	t.Helper()
	if resp, _ := s.do(t, "GET", path, "", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET %s → %d after a refused write, want 404", path, resp.StatusCode)
	}
}

// wsField sends one raw frame and checks its answer: a 400 reply to ref
// (an error frame if ref is "") whose one field has pointer, and whose
// detail starts with detail; the connection stays usable.
func wsField(frame, ref, pointer, detail string) func(t *testing.T, s *testServer) {
	return func(t *testing.T, s *testServer) {
		t.Helper()
		w, f := answerTo(t, s, frame)
		checkFrameStatus(t, f, 400)
		if ref != "" && (f["type"] != "reply" || f["ref"] != ref) {
			t.Fatalf("frame %v, want a reply to ref %q", f, ref)
		}
		p := f["problem"].(map[string]any)
		errs, _ := p["errors"].([]any)
		if len(errs) != 1 {
			t.Fatalf("problem errors %v, want one", p["errors"])
		}
		field, _ := errs[0].(map[string]any)
		if got, _ := field["pointer"].(string); got != pointer || field["in"] != "body" {
			t.Fatalf("field %v, want pointer %q", field, pointer)
		}
		if d, _ := p["detail"].(string); !strings.HasPrefix(d, detail) {
			t.Fatalf("problem detail %q, want %q", d, detail)
		}
		if r := w.request(map[string]any{"type": "ping"}); r["ok"] != true {
			t.Fatalf("connection unusable afterwards: %v", r)
		}
	}
}
