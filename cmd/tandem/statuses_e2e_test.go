package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tandemhq/tandem/internal/specval"
)

// statusCase is one request of the status matrix and what it must get.
type statusCase struct {
	name   string
	query  string // extra query, e.g. "zzz=1"
	header http.Header
	body   io.Reader
	ctype  string
	status int
	ptype  string // problem type slug
	detail string // part of the problem (errors included), if set
}

// specRequest builds a request for op from the spec: path parameters and
// required query parameters filled with valid values. Unknown required
// parameters fail the test (extend the tables).
func specRequest(t *testing.T, base, method, path string, op *openapi3.Operation, c statusCase) *http.Request {
	t.Helper()
	pathValues := map[string]string{"collection": "orders", "id": "o1", "channel": "chat:lobby", "webhook": "wh1", "connection": "c1", "subject": "alice"}
	queryValues := map[string]string{"topic": "collections/orders/resources"}
	for name, v := range pathValues {
		path = strings.ReplaceAll(path, "{"+name+"}", v)
	}
	if strings.Contains(path, "{") {
		t.Fatalf("%s %s: a path parameter without a value in pathValues", method, path)
	}
	q := url.Values{}
	for _, p := range op.Parameters {
		if p.Value.In == "query" && p.Value.Required {
			v, ok := queryValues[p.Value.Name]
			if !ok {
				t.Fatalf("%s: required query parameter %s without a value in queryValues", op.OperationID, p.Value.Name)
			}
			q.Set(p.Value.Name, v)
		}
	}
	target := base + path + "?" + q.Encode()
	if c.query != "" {
		target += "&" + c.query
	}
	req, err := http.NewRequest(method, target, c.body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		req.Header[k] = v
	}
	if c.ctype != "" {
		req.Header.Set("Content-Type", c.ctype)
	}
	return req
}

// TestStatusMatrix sends every operation of spec/openapi.yaml the
// requests that get the statuses the middleware answers (400 for an
// unknown parameter or a body where none is taken, 401, 403, 408 is in
// TestBadInputCatalogue, 413 by length and chunked, 415, 429), through
// the validating client: each response is checked against the spec, whose
// check fails when the operation declares the status only through default
// or the problem type is not one its response lists.
func TestStatusMatrix(t *testing.T) {
	doc, err := specval.LoadOpenAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	type op struct {
		method, path string
		op           *openapi3.Operation
	}
	var ops []op
	for path, item := range doc.Paths.Map() {
		for method, o := range item.Operations() {
			ops = append(ops, op{method, path, o})
		}
	}
	sort.Slice(ops, func(i, j int) bool { return ops[i].op.OperationID < ops[j].op.OperationID })

	const maxBody = 2048
	s := startAuthServer(t, "--max-body-bytes", fmt.Sprint(maxBody), "--channel-presence=false")
	admin := http.Header{"X-Api-Key": {testAdminKey}}
	nobody := http.Header{"Authorization": {"Bearer " + mintTest(t, "nobody", "read:nothing", time.Now().Add(time.Hour), testAudience)}}
	big := `{"data":{"x":"` + strings.Repeat("a", maxBody) + `"}}`
	check := func(t *testing.T, s *testServer, o op, c statusCase) {
		t.Helper()
		resp, err := s.HTTP.Do(specRequest(t, s.URL, o.method, o.path, o.op, c))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), `"type":"https://tandem.dev/problems/`+c.ptype+`"`) || !strings.Contains(string(b), c.detail) {
			t.Errorf("%s %s %s: %d %s; want %d %s %q", c.name, o.method, o.path, resp.StatusCode, b, c.status, c.ptype, c.detail)
		}
	}
	for _, o := range ops {
		t.Run(o.op.OperationID, func(t *testing.T) {
			cases := []statusCase{{name: "UnknownParameter", query: "zzz=1", header: admin, status: 400, ptype: "invalid-request", detail: `unknown query parameter \"zzz\"`}}
			// A well-formed body where one is taken: POST /v1/batch
			// authorises each operation once the body is decoded.
			var ctype string
			body := func() io.Reader { return nil }
			if o.op.RequestBody != nil {
				ctype = "application/json"
				body = func() io.Reader { return strings.NewReader(`{}`) }
				if o.op.OperationID == "applyBatch" {
					body = func() io.Reader {
						return strings.NewReader(`{"operations":[{"op":"create","collection":"orders","data":{}}]}`)
					}
				}
			}
			if o.op.Security == nil || len(*o.op.Security) > 0 {
				cases = append(cases, statusCase{name: "NoCredentials", ctype: ctype, body: body(), status: 401, ptype: "unauthenticated"})
			}
			if _, ok := o.op.Extensions["x-tandem-grant"]; ok {
				cases = append(cases, statusCase{name: "NoGrant", header: nobody, ctype: ctype, body: body(), status: 403, ptype: "insufficient-scope"})
			}
			if o.op.RequestBody != nil {
				cases = append(cases,
					statusCase{name: "TooLarge", header: admin, ctype: "application/json", body: strings.NewReader(big), status: 413, ptype: "too-large"},
					statusCase{name: "TooLargeChunked", header: admin, ctype: "application/json", body: chunked{strings.NewReader(big)}, status: 413, ptype: "too-large"},
					statusCase{name: "WrongMediaType", header: admin, ctype: "text/plain", body: strings.NewReader("x"), status: 415, ptype: "unsupported-media-type"},
				)
			} else {
				cases = append(cases,
					statusCase{name: "UnexpectedBody", header: admin, ctype: "application/json", body: strings.NewReader(`{}`), status: 400, ptype: "invalid-request", detail: "takes no request body"},
					statusCase{name: "UnexpectedBodyChunked", header: admin, ctype: "application/json", body: chunked{strings.NewReader(`{}`)}, status: 400, ptype: "invalid-request", detail: "takes no request body"},
				)
			}
			for _, c := range cases {
				check(t, s, o, c)
			}
		})
	}
	// The requests an outside validator found answered 400 and 413 through
	// default only, and the handlers' own statuses found by reading their
	// errors.
	for _, c := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/collections/-x", 400},
		{"GET", "/v1/collections/orders/resources/..%2Fsecret", 400},
		{"GET", "/v1/channels/chat:lobby/presence", 404}, // presence disabled
	} {
		resp, _ := s.do(t, c.method, c.path, "", "", "X-Api-Key", testAdminKey)
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
	}

	// 429: a limit of one request per 1000 s, taken by the first request;
	// every operation is then refused.
	limited := startServer(t, "--rate-limit", "0.001", "--rate-burst", "1")
	first, _ := limited.do(t, "GET", "/v1/collections", "", "")
	if first.StatusCode != 200 {
		t.Fatalf("first request: %d", first.StatusCode)
	}
	for _, o := range ops {
		if !strings.HasPrefix(o.path, "/v1/") {
			continue
		}
		c := statusCase{name: "RateLimited", status: 429, ptype: "rate-limited"}
		if o.op.RequestBody != nil {
			c.ctype, c.body = "application/json", strings.NewReader(`{}`)
		}
		check(t, limited, o, c)
	}
}
