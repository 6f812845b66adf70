package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// TestRESTWebhooks drives the webhook API over HTTP (every response
// validated against spec/openapi.yaml by the test client) against a
// receiver that verifies each delivery with the Go SDK.
func TestRESTWebhooks(t *testing.T) {
	s := startServer(t, "--webhook-allow-private", "--webhook-retry-min", "10ms", "--webhook-retry-max", "50ms")
	var mu sync.Mutex
	var secret string
	var bodies []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := tandem.VerifyWebhook(secret, r.Header, body); err != nil {
			t.Errorf("delivery does not verify: %v", err)
		}
		bodies = append(bodies, string(body))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer recv.Close()

	if resp, _ := s.do(t, "POST", "/v1/collections", "application/json", `{"name":"orders"}`); resp.StatusCode != 201 {
		t.Fatalf("create collection: %d", resp.StatusCode)
	}
	resp, m := s.do(t, "POST", "/v1/webhooks", "application/json", `{"topic":"collections/orders/resources","url":"`+recv.URL+`/hook","description":"orders"}`)
	if resp.StatusCode != 201 || m["secret"] == nil || !strings.HasPrefix(resp.Header.Get("Location"), "/v1/webhooks/wh_") {
		t.Fatalf("create webhook: %d %v", resp.StatusCode, m)
	}
	id := m["id"].(string)
	mu.Lock()
	secret = m["secret"].(string)
	mu.Unlock()

	resp, m = s.do(t, "POST", "/v1/webhooks/"+id+"/test", "", "")
	if resp.StatusCode != 200 || m["ok"] != true {
		t.Fatalf("test ping: %d %v", resp.StatusCode, m)
	}
	if resp, _ := s.do(t, "POST", "/v1/collections/orders/resources", "application/json", `{"data":{"n":1}}`); resp.StatusCode != 201 {
		t.Fatalf("create resource: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(bodies)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no delivery")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	if !strings.Contains(bodies[0], `"webhook.ping"`) || !strings.Contains(bodies[1], `"resource.created"`) {
		t.Fatalf("bodies %q", bodies)
	}
	mu.Unlock()

	for {
		_, m = s.do(t, "GET", "/v1/webhooks/"+id, "", "")
		if m["lag"] == float64(0) && m["lastSuccessAt"] != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never settled: %v", m)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if m["secret"] != nil || m["state"] != "active" {
		t.Fatalf("get: %v", m)
	}
	if _, m = s.do(t, "GET", "/v1/webhooks", "", ""); len(m["items"].([]any)) != 1 {
		t.Fatalf("list: %v", m)
	}
	resp, m = s.do(t, "PATCH", "/v1/webhooks/"+id, "application/merge-patch+json", `{"enabled":false}`)
	if resp.StatusCode != 200 || m["state"] != "paused" || m["enabled"] != false {
		t.Fatalf("disable: %d %v", resp.StatusCode, m)
	}
	resp, m = s.do(t, "POST", "/v1/webhooks/"+id+"/resume", "application/json", `{}`)
	if resp.StatusCode != 200 || m["state"] != "active" {
		t.Fatalf("resume: %d %v", resp.StatusCode, m)
	}
	resp, m = s.do(t, "PATCH", "/v1/webhooks/"+id, "application/merge-patch+json", `{"rotateSecret":true}`)
	if resp.StatusCode != 200 || m["secret"] == nil || m["previousSecretExpiresAt"] == nil {
		t.Fatalf("rotate: %d %v", resp.StatusCode, m)
	}
	for _, tc := range []struct{ body, field string }{
		{`{"topic":"collections/orders/resources","url":"ftp://x.example/"}`, "/url"},
		{`{"topic":"channels/a/presence","url":"` + recv.URL + `"}`, "/topic"},
		{`{"topic":"collections/orders/resources","url":"` + recv.URL + `","secret":"whsec_c2hvcnQ="}`, "/secret"},
	} {
		resp, m = s.do(t, "POST", "/v1/webhooks", "application/json", tc.body)
		if resp.StatusCode != 422 && resp.StatusCode != 400 || !strings.Contains(strings.ReplaceAll(toJSON(m["errors"]), `\/`, "/"), tc.field) {
			t.Errorf("%s: %d %v, want a problem naming %s", tc.body, resp.StatusCode, m, tc.field)
		}
	}
	if resp, _ = s.do(t, "GET", "/v1/webhooks/wh_00000000000000000000", "", ""); resp.StatusCode != 404 {
		t.Fatalf("missing webhook: %d", resp.StatusCode)
	}
	// The CLI over the same API.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"webhooks", "list"}, `"id":"` + id + `"`},
		{[]string{"webhooks", "get", id}, `"state":"active"`},
		{[]string{"webhooks", "test", id}, `"ok":true`},
		{[]string{"webhooks", "resume", id}, `"id":"` + id + `"`},
		{[]string{"webhooks", "create", "channels/room/messages", recv.URL, "--max-batch", "5"}, `"secret":"whsec_`},
	} {
		out, errOut, err := cliRun(t, s.URL, tc.args...)
		if err != nil || !strings.Contains(out, tc.want) {
			t.Errorf("tandem %v: %v\n%s%s", tc.args, err, out, errOut)
		}
	}
	if _, _, err := cliRun(t, s.URL, "webhooks", "create", "collections/orders/resources", "ftp://x.example/"); err == nil || !strings.Contains(err.Error(), "url") {
		t.Errorf("tandem webhooks create with a bad URL: %v", err)
	}
	if resp, _ = s.do(t, "DELETE", "/v1/webhooks/"+id, "", ""); resp.StatusCode != 204 {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
