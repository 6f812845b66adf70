package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestConsoleRoutes checks the pages served from the binary next to the
// API: the console at /, the AsyncAPI page and its JSON, the assets, and
// that the pages do not shadow the API's own routes or its 404 problems.
func TestConsoleRoutes(t *testing.T) {
	for _, srv := range []struct {
		name string
		args []string
	}{
		{"NoAuth", nil},
		// The pages are public even with auth configured: the token is
		// entered in the page and sent by its script.
		{"WithAuth", []string{"--jwt-secret", testJWTSecret}},
	} {
		t.Run(srv.name, func(t *testing.T) {
			s := startServer(t, srv.args...)
			for _, tc := range []struct {
				path, ct, contains string
			}{
				{"/", "text/html; charset=utf-8", "<title>Tandem console</title>"},
				{"/console/console.js", "text/javascript; charset=utf-8", "import"},
				{"/console/realtime.js", "text/javascript; charset=utf-8", "/v1/ws"},
				{"/console/console.css", "text/css; charset=utf-8", ".grid"},
				{"/docs/asyncapi", "text/html; charset=utf-8", "/console/asyncapi.js"},
				{"/console/asyncapi.js", "text/javascript; charset=utf-8", "/asyncapi.json"},
				{"/asyncapi.json", "application/json", `"asyncapi":"3.0.0"`},
				// What was there before still is.
				{"/docs/", "text/html", "swagger"},
				{"/openapi.yaml", "application/yaml", "openapi: 3.0.3"},
				{"/asyncapi.yaml", "application/yaml", "asyncapi: 3.0.0"},
				{"/metrics", "text/plain", "tandem_http_requests_total"},
				{"/healthz", "application/json", `"ok"`},
			} {
				t.Run(tc.path, func(t *testing.T) {
					// Not every path is in the OpenAPI spec, so a plain client.
					resp, err := http.Get(s.URL + tc.path)
					if err != nil {
						t.Fatal(err)
					}
					defer resp.Body.Close()
					b, _ := io.ReadAll(resp.Body)
					if resp.StatusCode != 200 {
						t.Fatalf("status %d: %.200s", resp.StatusCode, b)
					}
					if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.ct) {
						t.Errorf("Content-Type %q, want %q", ct, tc.ct)
					}
					if !strings.Contains(strings.ToLower(string(b)), strings.ToLower(tc.contains)) {
						t.Errorf("body does not contain %q: %.200s", tc.contains, b)
					}
				})
			}
			var doc map[string]any
			resp, err := http.Get(s.URL + "/asyncapi.json")
			if err != nil {
				t.Fatal(err)
			}
			err = json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			if err != nil || doc["operations"] == nil || doc["components"] == nil {
				t.Errorf("/asyncapi.json is not the AsyncAPI document: %v", err)
			}
			// The metrics label the console by its route, not by raw path.
			mresp, err := http.Get(s.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			mb, _ := io.ReadAll(mresp.Body)
			mresp.Body.Close()
			for _, route := range []string{`route="GET /{$}"`, `route="GET /console/console.js"`, `route="GET /docs/asyncapi"`} {
				if !strings.Contains(string(mb), route) {
					t.Errorf("metrics have no %s series", route)
				}
			}
		})
	}
}

// TestConsoleDoesNotShadowNotFound: paths near the console's are still the
// API router's 404 problems (validated against spec/openapi.yaml by s.HTTP).
func TestConsoleDoesNotShadowNotFound(t *testing.T) {
	s := startServer(t)
	for _, path := range []string{"/nothing", "/console/", "/console/missing.js", "/console/index.html", "/index.html", "/asyncapi.json/x"} {
		t.Run(path, func(t *testing.T) {
			resp, err := s.HTTP.Get(s.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
				t.Fatalf("not JSON: %v", err)
			}
			if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" || p["status"] != float64(404) {
				t.Errorf("GET %s → %d %s %v, want a 404 problem", path, resp.StatusCode, resp.Header.Get("Content-Type"), p)
			}
		})
	}
	// Other methods on / are not the console's either.
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("POST / → %d %s, want a problem", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
