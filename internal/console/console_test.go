package console

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tandemhq/tandem/spec"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRoutes(t *testing.T) {
	h := Handler()
	for _, tc := range []struct {
		name, path string
		status     int
		ct         string
		contains   string
		csp        bool
	}{
		{"Console", "/", 200, "text/html; charset=utf-8", "<title>Tandem console</title>", true},
		{"AsyncAPIPage", "/docs/asyncapi", 200, "text/html; charset=utf-8", "/console/asyncapi.js", true},
		{"Script", "/console/console.js", 200, "text/javascript; charset=utf-8", "from './live.js'", false},
		{"Core", "/console/core.js", 200, "text/javascript; charset=utf-8", "function rest(", false},
		{"Realtime", "/console/realtime.js", 200, "text/javascript; charset=utf-8", "class Realtime", false},
		{"Live", "/console/live.js", 200, "text/javascript; charset=utf-8", "function subscribeFromForm", false},
		{"Snippets", "/console/snippets.js", 200, "text/javascript; charset=utf-8", "function goSnippet", false},
		{"Query", "/console/query.js", 200, "text/javascript; charset=utf-8", "nextPageToken", false},
		{"Collections", "/console/collections.js", 200, "text/javascript; charset=utf-8", "/v1/collections", false},
		{"Editor", "/console/editor.js", 200, "text/javascript; charset=utf-8", "If-Match", false},
		{"Connections", "/console/connections.js", 200, "text/javascript; charset=utf-8", "/v1/connections", false},
		{"Node", "/console/node.js", 200, "text/javascript; charset=utf-8", "/readyz", false},
		{"AsyncAPIScript", "/console/asyncapi.js", 200, "text/javascript; charset=utf-8", "/asyncapi.json", false},
		{"Style", "/console/console.css", 200, "text/css; charset=utf-8", ".grid", false},
		{"Icon", "/console/favicon.svg", 200, "image/svg+xml", "<svg", false},
		{"AsyncAPIJSON", "/asyncapi.json", 200, "application/json", `"asyncapi":"3.0.0"`, false},
		{"TrailingSlash", "/docs/asyncapi/", 301, "", "", false},
		{"ErrNotFoundDir", "/console/", 404, "", "", false},
		{"ErrNotFoundAsset", "/console/missing.js", 404, "", "", false},
		{"ErrNotFoundHTMLAsAsset", "/console/index.html", 404, "", "", false},
		{"ErrNotFoundOther", "/index.html", 404, "", "", false},
		{"ErrNotFoundBelowRoot", "/nothing", 404, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, h, tc.path)
			b := body(t, r)
			if r.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", r.StatusCode, tc.status)
			}
			if tc.status == 301 {
				if loc := r.Header.Get("Location"); loc != "/docs/asyncapi" {
					t.Errorf("Location %q", loc)
				}
				return
			}
			if tc.status != 200 {
				return
			}
			if got := r.Header.Get("Content-Type"); got != tc.ct {
				t.Errorf("Content-Type %q, want %q", got, tc.ct)
			}
			if !strings.Contains(b, tc.contains) {
				t.Errorf("body does not contain %q", tc.contains)
			}
			if got := r.Header.Get("X-Content-Type-Options"); got != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", got)
			}
			csp := r.Header.Get("Content-Security-Policy")
			if tc.csp && (!strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'")) {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if r.Header.Get("ETag") == "" {
				t.Error("no ETag")
			}
		})
	}
}

func TestMethods(t *testing.T) {
	h := Handler()
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		t.Run(m, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(m, "/", nil))
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s / → %d, want 405", m, rec.Code)
			}
		})
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/console/console.js", nil))
	if rec.Code != 200 || rec.Body.Len() != 0 {
		t.Errorf("HEAD → %d with %d bytes", rec.Code, rec.Body.Len())
	}
}

func TestRevalidation(t *testing.T) {
	h := Handler()
	for _, path := range []string{"/", "/console/console.js", "/asyncapi.json"} {
		t.Run(path, func(t *testing.T) {
			first := get(t, h, path)
			etag := first.Header.Get("ETag")
			if cc := first.Header.Get("Cache-Control"); cc != "no-cache" {
				t.Errorf("Cache-Control %q", cc)
			}
			again := get(t, h, path, "If-None-Match", etag)
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("If-None-Match %s → %d, want 304", etag, again.StatusCode)
			}
			other := get(t, h, path, "If-None-Match", `"something-else"`)
			if other.StatusCode != 200 {
				t.Errorf("stale If-None-Match → %d, want 200", other.StatusCode)
			}
		})
	}
}

// The pages must work offline and behind a strict CSP: nothing they load,
// import or connect to may live on another host.
var externalLoad = []*regexp.Regexp{
	regexp.MustCompile(`(?i)\b(src|href|action|srcset|poster|data)\s*=\s*["']?\s*(https?:)?//`),
	regexp.MustCompile(`(?i)url\(\s*["']?\s*(https?:)?//`),
	regexp.MustCompile(`(?i)@import`),
	regexp.MustCompile(`(?i)\bimport\s*(\(|[^;]*\bfrom\s*)["']\s*(https?:)?//`),
	regexp.MustCompile(`(?i)\b(fetch|EventSource|WebSocket|importScripts)\s*\(\s*["'\x60]\s*(https?:|wss?:)?//`),
	regexp.MustCompile(`(?i)\bintegrity\s*=`),
}

// absoluteURL is any http(s) or ws(s) URL with a host; the pages build
// theirs from location (same origin) and use relative paths otherwise. The
// only one allowed is an XML namespace name, which nothing fetches.
var (
	absoluteURL  = regexp.MustCompile(`(?i)\b(https?|wss?):\/\/`)
	xmlNamespace = regexp.MustCompile(`xmlns(:[a-z]+)?="https?://`)
)

func TestNoExternalLoads(t *testing.T) {
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		for _, re := range externalLoad {
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s loads from elsewhere: %q", p, b[loc[0]:min(len(b), loc[1]+40)])
			}
		}
		for _, loc := range absoluteURL.FindAllIndex(b, -1) {
			if !xmlNamespace.Match(b[max(0, loc[0]-7):loc[1]]) {
				t.Errorf("%s mentions an absolute URL: %q", p, b[loc[0]:min(len(b), loc[1]+40)])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The check itself must catch what it is meant to.
	for _, bad := range []string{
		`<script src="https://cdn.example/x.js">`, `<link href='//fonts.example/css'>`,
		`background: url(https://x/y.png)`, `@import "x.css";`, `import x from "https://esm.example/x"`,
		`fetch("https://api.example/")`, `new WebSocket('wss://elsewhere/ws')`,
	} {
		caught := false
		for _, re := range externalLoad {
			caught = caught || re.MatchString(bad)
		}
		if !caught {
			t.Errorf("check misses %s", bad)
		}
	}
	for _, bad := range []string{`const u = "https://api.example/v1";`, `'wss://elsewhere/ws'`, `<a href="http://x.example/">`} {
		if loc := absoluteURL.FindStringIndex(bad); loc == nil || xmlNamespace.MatchString(bad[max(0, loc[0]-7):loc[1]]) {
			t.Errorf("absolute URL check misses %s", bad)
		}
	}
	if ns := `<svg xmlns="http://www.w3.org/2000/svg">`; !xmlNamespace.MatchString(ns[strings.Index(ns, "http")-7 : strings.Index(ns, "://")+3]) {
		t.Errorf("the XML namespace allowance does not match %s", ns)
	}
}

// The page's JavaScript is ES modules: every module one imports is served,
// and every embedded script is reached from the page (none is dead).
func TestModuleImportsResolve(t *testing.T) {
	routes := Routes()
	imp := regexp.MustCompile(`(?m)^import\s+(?:[^'"]*?\s+from\s+)?'\./([^']+)';`)
	reached := map[string]bool{}
	var visit func(name string)
	visit = func(name string) {
		if reached[name] {
			return
		}
		reached[name] = true
		if routes["GET /console/"+name] == nil {
			t.Errorf("%s is imported but not served", name)
			return
		}
		b, err := assets.ReadFile("assets/" + name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range imp.FindAllSubmatch(b, -1) {
			visit(string(m[1]))
		}
	}
	page, err := assets.ReadFile("assets/index.html")
	if err != nil {
		t.Fatal(err)
	}
	entry := regexp.MustCompile(`<script type="module" src="/console/([^"]+)"></script>`).FindSubmatch(page)
	if entry == nil {
		t.Fatal("index.html loads no module")
	}
	visit(string(entry[1]))
	if len(reached) < 8 {
		t.Fatalf("reached only %v from %s; the import pattern is broken", reached, entry[1])
	}
	scripts, err := fs.Glob(assets, "assets/*.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range scripts {
		name := strings.TrimPrefix(s, "assets/")
		if !reached[name] && name != "asyncapi.js" {
			t.Errorf("%s is embedded but no module imports it", name)
		}
	}
}

// Every /console/ asset a page references is served.
func TestPageReferencesResolve(t *testing.T) {
	routes := Routes()
	ref := regexp.MustCompile(`(?:src|href)="(/console/[^"]+)"`)
	for _, page := range []string{"assets/index.html", "assets/asyncapi.html"} {
		b, err := assets.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		refs := ref.FindAllStringSubmatch(string(b), -1)
		if len(refs) < 2 {
			t.Fatalf("%s references %d assets; the pattern is broken", page, len(refs))
		}
		for _, m := range refs {
			if routes["GET "+m[1]] == nil {
				t.Errorf("%s references %s, which is not served", page, m[1])
			}
		}
	}
}

func TestAsyncAPIJSONMatchesYAML(t *testing.T) {
	r := get(t, Handler(), "/asyncapi.json")
	var got any
	if err := json.Unmarshal([]byte(body(t, r)), &got); err != nil {
		t.Fatal(err)
	}
	var want any
	if err := yaml.Unmarshal(spec.AsyncAPI, &want); err != nil {
		t.Fatal(err)
	}
	wantJSON, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var wantVal any
	if err := json.Unmarshal(wantJSON, &wantVal); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantVal) {
		t.Error("/asyncapi.json differs from spec/asyncapi.yaml")
	}
	// The author's order is kept: info before channels before components.
	s := body(t, get(t, Handler(), "/asyncapi.json"))
	if !(strings.Index(s, `"info"`) < strings.Index(s, `"channels"`) && strings.Index(s, `"channels"`) < strings.Index(s, `"components"`)) {
		t.Error("key order not kept")
	}
}

func TestYAMLToJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, err string
	}{
		{"OrderKept", "b: 1\na: 2\n", `{"b":1,"a":2}`, ""},
		{"Scalars", "s: x\nq: \"200\"\ni: 200\nf: 1.5\nt: true\nn: null\ne: ~\n", `{"s":"x","q":"200","i":200,"f":1.5,"t":true,"n":null,"e":null}`, ""},
		{"NonStringKeys", "200: ok\ntrue: yes\n", `{"200":"ok","true":"yes"}`, ""},
		{"Nested", "a:\n  - {x: 1}\n  - [1, two]\n", `{"a":[{"x":1},[1,"two"]]}`, ""},
		{"Alias", "base: &b {x: 1}\nuse: *b\n", `{"base":{"x":1},"use":{"x":1}}`, ""},
		{"Empty", "", "null", ""},
		{"Unicode", "k: \"é → ✓\"\n", `{"k":"é → ✓"}`, ""},
		{"ErrMultiDoc", "a: 1\n---\nb: 2\n", "", "more than one"},
		{"ErrDuplicateKey", "a: 1\na: 2\n", "", "duplicate key"},
		{"ErrComplexKey", "? [a, b]\n: 1\n", "", "scalar mapping keys"},
		{"ErrMergeKey", "base: &b {x: 1}\nm:\n  <<: *b\n", "", "merge keys"},
		{"ErrInfinity", "x: .inf\n", "", "no JSON form"},
		{"ErrMalformed", "a: [1, 2\n", "", "line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := YAMLToJSON([]byte(tc.in))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one mentioning %q (got %s)", err, tc.err, got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got %s, want %s", got, tc.want)
			}
		})
	}
}

func TestYAMLToJSONDepthBound(t *testing.T) {
	in := strings.Repeat("[", 300) + strings.Repeat("]", 300)
	if _, err := YAMLToJSON([]byte(in)); err == nil || !strings.Contains(err.Error(), "nested too deeply") {
		t.Errorf("err %v, want nested too deeply", err)
	}
}
