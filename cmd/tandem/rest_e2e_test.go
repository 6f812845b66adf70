package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/sdk/go/client"
)

func ptr[T any](v T) *T { return &v }

// do sends a raw request through the validating client and decodes the body.
func (s *testServer) do(t *testing.T, method, path, contentType, body string, hdr ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: body is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	return resp, m
}

func TestRESTResources(t *testing.T) {
	s := startServer(t)
	ctx := context.Background()
	c := s.Client

	schema := json.RawMessage(`{"type":"object","required":["title"],"properties":{"title":{"type":"string"},"qty":{"type":"integer","minimum":0}}}`)
	cc, err := c.CreateCollectionWithResponse(ctx, nil, client.CollectionCreate{Name: "orders", Schema: schema})
	if err != nil || cc.StatusCode() != 201 {
		t.Fatalf("create collection: %v %d %s", err, cc.StatusCode(), cc.Body)
	}
	if got := cc.HTTPResponse.Header.Get("Location"); got != "/v1/collections/orders" {
		t.Errorf("Location = %q", got)
	}
	dup, _ := c.CreateCollectionWithResponse(ctx, nil, client.CollectionCreate{Name: "orders"})
	if dup.StatusCode() != 409 || dup.ApplicationproblemJSON409 == nil {
		t.Errorf("duplicate collection: %d %s", dup.StatusCode(), dup.Body)
	}

	// Create with a server-made ID.
	cr, err := c.CreateResourceWithResponse(ctx, "orders", nil, client.ResourceCreate{Data: json.RawMessage(`{"title":"a","qty":1}`), Labels: &client.Labels{"env": "prod"}})
	if err != nil || cr.StatusCode() != 201 {
		t.Fatalf("create: %v %d %s", err, cr.StatusCode(), cr.Body)
	}
	r1 := cr.JSON201
	if len(r1.Id) != 26 || r1.Revision <= 0 {
		t.Errorf("server-made resource: %+v", r1)
	}
	if got, want := cr.HTTPResponse.Header.Get("ETag"), fmt.Sprintf(`"%d"`, r1.Revision); got != want {
		t.Errorf("ETag = %q, want %q", got, want)
	}
	if got := cr.HTTPResponse.Header.Get("Location"); got != "/v1/collections/orders/resources/"+r1.Id {
		t.Errorf("Location = %q", got)
	}

	t.Run("GetAndNotModified", func(t *testing.T) {
		g, _ := c.GetResourceWithResponse(ctx, "orders", r1.Id, nil)
		if g.StatusCode() != 200 || g.JSON200.Revision != r1.Revision || string(g.JSON200.Data) != `{"title":"a","qty":1}` {
			t.Fatalf("get: %d %s", g.StatusCode(), g.Body)
		}
		nm, _ := c.GetResourceWithResponse(ctx, "orders", r1.Id, &client.GetResourceParams{IfNoneMatch: ptr(fmt.Sprintf(`"%d"`, r1.Revision))})
		if nm.StatusCode() != 304 {
			t.Errorf("If-None-Match: %d", nm.StatusCode())
		}
		other, _ := c.GetResourceWithResponse(ctx, "orders", r1.Id, &client.GetResourceParams{IfNoneMatch: ptr(`"999999"`)})
		if other.StatusCode() != 200 {
			t.Errorf("If-None-Match mismatch: %d", other.StatusCode())
		}
	})

	t.Run("PutCreateOnlyAndIfMatch", func(t *testing.T) {
		p, _ := c.ReplaceResourceWithResponse(ctx, "orders", "o-1", &client.ReplaceResourceParams{IfNoneMatch: ptr("*")}, client.ResourceReplace{Data: json.RawMessage(`{"title":"one"}`)})
		if p.StatusCode() != 201 || p.HTTPResponse.Header.Get("Location") == "" {
			t.Fatalf("create-only PUT: %d %s", p.StatusCode(), p.Body)
		}
		again, _ := c.ReplaceResourceWithResponse(ctx, "orders", "o-1", &client.ReplaceResourceParams{IfNoneMatch: ptr("*")}, client.ResourceReplace{Data: json.RawMessage(`{"title":"two"}`)})
		if again.StatusCode() != 412 {
			t.Errorf("create-only on existing: %d %s", again.StatusCode(), again.Body)
		}
		stale, _ := c.ReplaceResourceWithResponse(ctx, "orders", "o-1", &client.ReplaceResourceParams{IfMatch: ptr(`"1"`)}, client.ResourceReplace{Data: json.RawMessage(`{"title":"two"}`)})
		if stale.StatusCode() != 412 || stale.ApplicationproblemJSON412 == nil {
			t.Errorf("stale If-Match: %d %s", stale.StatusCode(), stale.Body)
		}
		ok, _ := c.ReplaceResourceWithResponse(ctx, "orders", "o-1", &client.ReplaceResourceParams{IfMatch: ptr(fmt.Sprintf(`"%d"`, p.JSON201.Revision))}, client.ResourceReplace{Data: json.RawMessage(`{"title":"two"}`)})
		if ok.StatusCode() != 200 || ok.JSON200.Revision <= p.JSON201.Revision || !ok.JSON200.CreatedAt.Equal(p.JSON201.CreatedAt) {
			t.Errorf("matching If-Match: %d %s", ok.StatusCode(), ok.Body)
		}
		missing, _ := c.ReplaceResourceWithResponse(ctx, "orders", "nope", &client.ReplaceResourceParams{IfMatch: ptr(`"3"`)}, client.ResourceReplace{Data: json.RawMessage(`{"title":"x"}`)})
		if missing.StatusCode() != 404 {
			t.Errorf("If-Match on missing: %d", missing.StatusCode())
		}
	})

	t.Run("MergePatch", func(t *testing.T) {
		_, _ = c.ReplaceResourceWithResponse(ctx, "orders", "p-1", nil, client.ResourceReplace{Data: json.RawMessage(`{"title":"t","qty":2,"note":"x"}`), Labels: &client.Labels{"a": "1", "b": "2"}})
		pr, err := c.PatchResourceWithApplicationMergePatchPlusJSONBodyWithResponse(ctx, "orders", "p-1", nil, json.RawMessage(`{"data":{"qty":3,"note":null},"labels":{"b":null,"c":"3"}}`))
		if err != nil || pr.StatusCode() != 200 {
			t.Fatalf("patch: %v %d %s", err, pr.StatusCode(), pr.Body)
		}
		var data map[string]any
		_ = json.Unmarshal(pr.JSON200.Data, &data)
		if data["qty"] != float64(3) || data["title"] != "t" || data["note"] != nil {
			t.Errorf("patched data = %v", data)
		}
		if fmt.Sprint(pr.JSON200.Labels) != "map[a:1 c:3]" {
			t.Errorf("patched labels = %v", pr.JSON200.Labels)
		}
		bad, _ := c.PatchResourceWithApplicationMergePatchPlusJSONBodyWithResponse(ctx, "orders", "p-1", nil, json.RawMessage(`{"data":{"qty":-1}}`))
		if bad.StatusCode() != 422 || !strings.Contains(string(bad.Body), `"/data/qty"`) {
			t.Errorf("patch violating schema: %d %s", bad.StatusCode(), bad.Body)
		}
		stale, _ := c.PatchResourceWithApplicationMergePatchPlusJSONBodyWithResponse(ctx, "orders", "p-1", &client.PatchResourceParams{IfMatch: ptr(`"1"`)}, json.RawMessage(`{"data":{"qty":4}}`))
		if stale.StatusCode() != 412 {
			t.Errorf("patch stale If-Match: %d", stale.StatusCode())
		}
	})

	t.Run("ListPaginationAndSelector", func(t *testing.T) {
		if _, err := c.CreateCollectionWithResponse(ctx, nil, client.CollectionCreate{Name: "items"}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 7; i++ {
			env := "prod"
			if i%2 == 1 {
				env = "dev"
			}
			r, _ := c.ReplaceResourceWithResponse(ctx, "items", fmt.Sprintf("i-%d", i), nil, client.ResourceReplace{Data: json.RawMessage(`{}`), Labels: &client.Labels{"env": env}})
			if r.StatusCode() != 201 {
				t.Fatalf("put: %d %s", r.StatusCode(), r.Body)
			}
		}
		var ids []string
		params := &client.ListResourcesParams{Limit: ptr(3)}
		for pages := 0; pages < 10; pages++ {
			l, err := c.ListResourcesWithResponse(ctx, "items", params)
			if err != nil || l.StatusCode() != 200 {
				t.Fatalf("list: %v %d %s", err, l.StatusCode(), l.Body)
			}
			if l.JSON200.Revision <= 0 {
				t.Errorf("list revision = %d", l.JSON200.Revision)
			}
			for _, it := range l.JSON200.Items {
				ids = append(ids, it.Id)
			}
			if l.JSON200.NextPageToken == nil {
				if l.HTTPResponse.Header.Get("Link") != "" {
					t.Errorf("Link on last page")
				}
				break
			}
			if !strings.Contains(l.HTTPResponse.Header.Get("Link"), `rel="next"`) {
				t.Errorf("Link = %q", l.HTTPResponse.Header.Get("Link"))
			}
			params.PageToken = l.JSON200.NextPageToken
		}
		if strings.Join(ids, ",") != "i-0,i-1,i-2,i-3,i-4,i-5,i-6" {
			t.Errorf("paged ids = %v", ids)
		}
		l, _ := c.ListResourcesWithResponse(ctx, "items", &client.ListResourcesParams{Labels: ptr("env=prod")})
		if l.StatusCode() != 200 || len(l.JSON200.Items) != 4 {
			t.Errorf("selector env=prod: %d %s", l.StatusCode(), l.Body)
		}
		l, _ = c.ListResourcesWithResponse(ctx, "items", &client.ListResourcesParams{Labels: ptr("env!=prod")})
		if l.StatusCode() != 200 || len(l.JSON200.Items) != 3 {
			t.Errorf("selector env!=prod: %d %s", l.StatusCode(), l.Body)
		}
		bad, _ := c.ListResourcesWithResponse(ctx, "items", &client.ListResourcesParams{Labels: ptr("env=(")})
		if bad.StatusCode() != 400 || !strings.Contains(string(bad.Body), `"labels"`) {
			t.Errorf("bad selector: %d %s", bad.StatusCode(), bad.Body)
		}
		badTok, _ := c.ListResourcesWithResponse(ctx, "items", &client.ListResourcesParams{PageToken: ptr("garbage!")})
		if badTok.StatusCode() != 400 || !strings.Contains(string(badTok.Body), `"pageToken"`) {
			t.Errorf("bad page token: %d %s", badTok.StatusCode(), badTok.Body)
		}
	})

	t.Run("Idempotency", func(t *testing.T) {
		params := &client.CreateResourceParams{IdempotencyKey: ptr("k-1")}
		body := client.ResourceCreate{Data: json.RawMessage(`{"title":"idem"}`)}
		a, _ := c.CreateResourceWithResponse(ctx, "orders", params, body)
		b, _ := c.CreateResourceWithResponse(ctx, "orders", params, body)
		if a.StatusCode() != 201 || b.StatusCode() != 201 || a.JSON201.Id != b.JSON201.Id || a.JSON201.Revision != b.JSON201.Revision {
			t.Fatalf("replay: %d %s / %d %s", a.StatusCode(), a.Body, b.StatusCode(), b.Body)
		}
		if b.HTTPResponse.Header.Get("Idempotent-Replayed") != "true" || b.HTTPResponse.Header.Get("ETag") != a.HTTPResponse.Header.Get("ETag") {
			t.Errorf("replay headers: %v", b.HTTPResponse.Header)
		}
		other, _ := c.CreateResourceWithResponse(ctx, "orders", params, client.ResourceCreate{Data: json.RawMessage(`{"title":"different"}`)})
		if other.StatusCode() != 409 {
			t.Errorf("reused key: %d %s", other.StatusCode(), other.Body)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		d, _ := c.DeleteResourceWithResponse(ctx, "orders", r1.Id, &client.DeleteResourceParams{IfMatch: ptr(`"1"`)})
		if d.StatusCode() != 412 {
			t.Errorf("delete stale: %d", d.StatusCode())
		}
		d, _ = c.DeleteResourceWithResponse(ctx, "orders", r1.Id, nil)
		if d.StatusCode() != 204 {
			t.Errorf("delete: %d %s", d.StatusCode(), d.Body)
		}
		g, _ := c.GetResourceWithResponse(ctx, "orders", r1.Id, nil)
		if g.StatusCode() != 404 || g.ApplicationproblemJSON404 == nil {
			t.Errorf("get deleted: %d", g.StatusCode())
		}
		dc, _ := c.DeleteCollectionWithResponse(ctx, "items")
		if dc.StatusCode() != 204 {
			t.Errorf("delete collection: %d", dc.StatusCode())
		}
		gc, _ := c.GetCollectionWithResponse(ctx, "items")
		if gc.StatusCode() != 404 {
			t.Errorf("get deleted collection: %d", gc.StatusCode())
		}
	})
}

// TestRESTBadInput: each malformed request gets a problem naming what is wrong.
func TestRESTBadInput(t *testing.T) {
	s := startServer(t)
	s.do(t, "POST", "/v1/collections", "application/json", `{"name":"things","schema":{"type":"object","properties":{"n":{"type":"integer"}}}}`)
	cases := []struct {
		name, method, path, ct, body string
		hdr                          []string
		status                       int
		mention                      string
	}{
		{"MalformedJSON", "POST", "/v1/collections/things/resources", "application/json", `{"data":`, nil, 400, "malformed JSON"},
		{"UnknownField", "POST", "/v1/collections/things/resources", "application/json", `{"data":{},"colour":"red"}`, nil, 400, `"/colour"`},
		{"WrongFieldType", "POST", "/v1/collections/things/resources", "application/json", `{"data":"nope"}`, nil, 400, `"/data"`},
		{"MissingRequired", "POST", "/v1/collections/things/resources", "application/json", `{"labels":{}}`, nil, 400, `"/data"`},
		{"BadID", "POST", "/v1/collections/things/resources", "application/json", `{"id":"../etc","data":{}}`, nil, 400, `"/id"`},
		{"BadLabel", "POST", "/v1/collections/things/resources", "application/json", `{"data":{},"labels":{"bad key":"x"}}`, nil, 400, `/labels/bad key`},
		{"SchemaViolation", "POST", "/v1/collections/things/resources", "application/json", `{"data":{"n":"x"}}`, nil, 422, `"/data/n"`},
		{"WrongContentType", "POST", "/v1/collections/things/resources", "text/plain", `{"data":{}}`, nil, 415, "Content-Type"},
		{"NoContentType", "POST", "/v1/collections/things/resources", "", `{"data":{}}`, nil, 415, "Content-Type"},
		{"PatchAsJSON", "PATCH", "/v1/collections/things/resources/x", "application/json", `{"data":{}}`, nil, 415, "merge-patch"},
		{"BadIfMatch", "PUT", "/v1/collections/things/resources/x", "application/json", `{"data":{}}`, []string{"If-Match", "yesterday"}, 400, "If-Match"},
		{"BadLimit", "GET", "/v1/collections/things/resources?limit=0", "", "", nil, 400, `"limit"`},
		{"LimitNotNumber", "GET", "/v1/collections/things/resources?limit=ten", "", "", nil, 400, `"limit"`},
		{"BadCollectionName", "GET", "/v1/collections/-x-", "", "", nil, 400, `"collection"`},
		{"InvalidSchema", "POST", "/v1/collections", "application/json", `{"name":"bad","schema":{"type":"nonsense"}}`, nil, 422, `"/schema"`},
		{"CyclicSchema", "POST", "/v1/collections", "application/json", `{"name":"loop","schema":{"$defs":{"a":{"allOf":[{"$ref":"#/$defs/a"}]}},"properties":{"x":{"$ref":"#/$defs/a"}}}}`, nil, 422, `"/schema/$defs/a"`},
		{"UnknownRoute", "GET", "/v1/nothing", "", "", nil, 404, "no such endpoint"},
		{"MethodNotAllowed", "PUT", "/v1/collections", "application/json", `{}`, nil, 405, "not allowed"},
		{"MissingCollection", "GET", "/v1/collections/ghost/resources", "", "", nil, 404, "ghost"},
		{"TooLarge", "POST", "/v1/collections/things/resources", "application/json", `{"data":{"s":"` + strings.Repeat("x", 2<<20) + `"}}`, nil, 413, "exceeds"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, p := s.do(t, tc.method, tc.path, tc.ct, tc.body, tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %v", resp.StatusCode, tc.status, p)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("Content-Type = %q", ct)
			}
			raw, _ := json.Marshal(p)
			if !strings.Contains(string(raw), tc.mention) {
				t.Errorf("problem does not mention %q: %s", tc.mention, raw)
			}
			if p["type"] == nil || p["title"] == nil || p["status"] != float64(tc.status) {
				t.Errorf("not a problem object: %s", raw)
			}
		})
	}
	// Nothing was written by any of them.
	resp, list := s.do(t, "GET", "/v1/collections/things/resources", "", "")
	if resp.StatusCode != 200 || len(list["items"].([]any)) != 0 {
		t.Errorf("bad input wrote something: %v", list)
	}
}

func TestOperationalEndpoints(t *testing.T) {
	s := startServer(t)
	for _, tc := range []struct {
		path, ct, contains string
	}{
		{"/healthz", "application/json", `"ok"`},
		{"/readyz", "application/json", `"store":"ok"`},
		{"/metrics", "text/plain", "tandem_http_requests_total"},
		{"/openapi.yaml", "application/yaml", "openapi: 3.0.3"},
		{"/asyncapi.yaml", "application/yaml", "asyncapi: 3.0.0"},
		{"/docs/", "text/html", "swagger"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			// Not every path is in the OpenAPI spec, so use a plain client here.
			resp, err := http.Get(s.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), tc.ct) || !strings.Contains(strings.ToLower(string(b)), strings.ToLower(tc.contains)) {
				t.Errorf("%s: %d %s %.200s", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), b)
			}
		})
	}
	// The Swagger UI assets are served from the binary (no CDN).
	resp, err := http.Get(s.URL + "/docs/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(b), "cdn") || strings.Contains(string(b), "unpkg") {
		t.Errorf("docs page references a CDN")
	}
}

// TestEscapedPathParams: clients that percent-encode ':' (openapi-fetch,
// encodeURIComponent) reach the same channel; an encoded '/' is no path
// separator and is refused.
func TestEscapedPathParams(t *testing.T) {
	s := startServer(t)
	s.publish(t, "chat:esc", `{"n":1}`)
	resp, p := s.do(t, "GET", "/v1/channels/chat%3Aesc/messages", "", "")
	if resp.StatusCode != 200 || len(p["items"].([]any)) != 1 {
		t.Fatalf("escaped ':' = %d %v", resp.StatusCode, p)
	}
	if resp, p := s.do(t, "GET", "/v1/channels/chat%2Fesc/messages", "", ""); resp.StatusCode != 400 {
		t.Fatalf("escaped '/' = %d %v", resp.StatusCode, p)
	}
}
