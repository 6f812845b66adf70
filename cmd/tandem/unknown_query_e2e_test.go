package main

import (
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tandemhq/tandem/spec"
)

// pathValues fill the path parameters of the spec's operations with values
// their schemas accept.
var pathValues = map[string]string{
	"collection": "orders",
	"id":         "o-1",
	"channel":    "chat:lobby",
	"webhook":    "wh_00000000000000000000",
	"connection": "c1",
	"subject":    "alice",
}

// TestUnknownQuery calls every operation of spec/openapi.yaml with an
// undeclared query parameter and expects a 400 problem naming it (the
// response validated against the spec), and the same of the WebSocket
// endpoint, which takes none.
func TestUnknownQuery(t *testing.T) {
	s := startServer(t)
	s.mkcoll(t, "orders")
	doc, err := openapi3.NewLoader().LoadFromData(spec.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	type call struct{ method, path string }
	var calls []call
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			calls = append(calls, call{method, path})
		}
	}
	sort.Slice(calls, func(i, j int) bool { return calls[i].path+calls[i].method < calls[j].path+calls[j].method })
	if len(calls) < 30 {
		t.Fatalf("only %d operations in the spec", len(calls))
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			path := c.path
			for name, v := range pathValues {
				path = strings.ReplaceAll(path, "{"+name+"}", v)
			}
			if strings.Contains(path, "{") {
				t.Fatalf("no value for a parameter of %s", path)
			}
			resp, p := s.do(t, c.method, path+"?bogus=1", "", "")
			if resp.StatusCode != 400 || p["type"] != "https://tandem.dev/problems/invalid-request" {
				t.Fatalf("%d %v", resp.StatusCode, p)
			}
			errs, _ := p["errors"].([]any)
			if len(errs) != 1 || errs[0].(map[string]any)["name"] != "bogus" || errs[0].(map[string]any)["in"] != "query" ||
				!strings.Contains(p["detail"].(string), `unknown query parameter "bogus"`) {
				t.Fatalf("problem does not name bogus: %v", p)
			}
		})
	}
	t.Run("DeclaredOnesListed", func(t *testing.T) {
		resp, p := s.do(t, "GET", "/v1/collections/orders/resources?limit=5&filtr=x&zz=1", "", "")
		d, _ := p["detail"].(string)
		if resp.StatusCode != 400 || !strings.Contains(d, `"filtr", "zz"`) || !strings.Contains(d, "labels") || !strings.Contains(d, "pageToken") {
			t.Fatalf("%d %v", resp.StatusCode, p)
		}
		if errs, _ := p["errors"].([]any); len(errs) != 2 {
			t.Fatalf("errors = %v, want filtr and zz", errs)
		}
		resp, _ = s.do(t, "GET", "/v1/collections/orders/resources?limit=5", "", "")
		if resp.StatusCode != 200 {
			t.Fatalf("declared parameters only: %d", resp.StatusCode)
		}
	})
	t.Run("WebSocket", func(t *testing.T) {
		// Not an operation of the OpenAPI document: plain client.
		resp, err := http.Get(s.URL + "/v1/ws?bogus=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), `unknown query parameter \"bogus\"`) {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
	})
}
