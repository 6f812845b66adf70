package httpapi

import (
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tandemhq/tandem/internal/specval"
)

// TestFastRoutesAgreeWithTheGeneralRouters: wherever the segment match
// answers, kin-openapi's gorilla/mux router finds the same operation and
// parameters and ServeMux the same pattern; the hot routes do take the
// segment match.
func TestFastRoutesAgreeWithTheGeneralRouters(t *testing.T) {
	doc, err := specval.LoadOpenAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	doc.Servers = nil
	general, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	others := []string{"GET /v1/ws", "GET /{$}", "GET /docs/", "GET /metrics"}
	fast := newFastRoutes(doc, others)
	patterns := http.NewServeMux()
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			patterns.Handle(method+" "+path, http.NotFoundHandler())
		}
	}
	for _, p := range others {
		patterns.Handle(p, http.NotFoundHandler())
	}
	values := []string{"x1", "a.b", "a%20b", "chat:lobby", "chat%3Alobby", "a%2Fb", "%2e%2e", ".", "..", "", "_batch", "resources"}
	methods := []string{"GET", "HEAD", "PUT", "PATCH", "POST", "DELETE", "OPTIONS", "BREW"}
	var targets []string
	for path := range doc.Paths.Map() {
		for _, v := range values {
			target := path
			for strings.Contains(target, "{") {
				i, j := strings.Index(target, "{"), strings.Index(target, "}")
				target = target[:i] + v + target[j+1:]
			}
			targets = append(targets, target, target+"/", "/"+target, strings.Replace(target, "/v1/", "/v1//", 1))
		}
	}
	matched := 0
	for _, target := range targets {
		for _, method := range methods {
			r := httptest.NewRequest(method, "http://h"+target, nil)
			var m fastMatch
			if !fast.lookup(r, &m) || m.route(method) == nil {
				continue
			}
			matched++
			route := m.route(method)
			want, params, err := general.FindRoute(r)
			if err != nil {
				t.Fatalf("%s %s: segment match %s, gorilla/mux: %v", method, target, route.Path, err)
			}
			if want.Path != route.Path || want.Operation != route.Operation || want.Method != route.Method || want.PathItem != route.PathItem {
				t.Fatalf("%s %s: segment match %s %s, gorilla/mux %s %s", method, target, route.Method, route.Path, want.Method, want.Path)
			}
			if got := m.pathParams(); !reflect.DeepEqual(got, params) {
				t.Fatalf("%s %s: segment match parameters %v, gorilla/mux %v", method, target, got, params)
			}
			if _, pattern := patterns.Handler(r); pattern != m.t.patterns[method] {
				t.Fatalf("%s %s: segment match pattern %q, ServeMux %q", method, target, m.t.patterns[method], pattern)
			}
		}
	}
	if matched < 100 {
		t.Fatalf("the segment match answered only %d requests", matched)
	}
	for _, hot := range []struct{ method, target string }{
		{"GET", "/v1/collections/c/resources/r"}, {"PUT", "/v1/collections/c/resources/r"},
		{"PATCH", "/v1/collections/c/resources/r"}, {"DELETE", "/v1/collections/c/resources/r"},
		{"GET", "/v1/collections/c/resources"}, {"POST", "/v1/collections/c/resources"},
	} {
		var m fastMatch
		if r := httptest.NewRequest(hot.method, hot.target, nil); !fast.lookup(r, &m) || m.route(hot.method) == nil {
			t.Errorf("%s %s does not take the segment match (does a new path or mount overlap it?)", hot.method, hot.target)
		}
	}
}

// TestFastRoutesStepAsideForOverlaps: a template another pattern could
// also match is left to the general routers.
func TestFastRoutesStepAsideForOverlaps(t *testing.T) {
	doc, err := specval.LoadOpenAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []string{"GET /v1/collections/{c}/resources/special", "/v1/collections/", "POST /v1/{rest...}"} {
		fast := newFastRoutes(doc, []string{other})
		var m fastMatch
		if fast.lookup(httptest.NewRequest("GET", "/v1/collections/c/resources/r", nil), &m) {
			t.Errorf("with %q beside the spec, the segment match still answers for %s", other, m.t.patterns["GET"])
		}
	}
	fast := newFastRoutes(doc, []string{"GET /v1/ws"})
	var m fastMatch
	if !fast.lookup(httptest.NewRequest("GET", "/v1/collections/c/resources/r", nil), &m) {
		t.Error("an unrelated pattern turned the segment match off")
	}
}
