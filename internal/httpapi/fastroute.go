package httpapi

import (
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// fastRoutes finds a request's operation of the spec by comparing path
// segments, without the regular expressions of the general routers
// (kin-openapi's gorilla/mux router, http.ServeMux). It only answers
// where the general routers would provably answer the same, and says
// "no match" everywhere else, so the caller falls back to them:
//
//   - only templates whose parameters are whole segments ("{id}", which
//     gorilla/mux and ServeMux both match as one non-empty segment) take
//     part, and none that could match a path another spec path or another
//     pattern of the handler (a mount, /docs/ …) could also match;
//   - only requests whose path needs no decoding (URL.RawPath empty) and
//     has no empty, "." or ".." segment (which ServeMux would redirect)
//     match, and only for a method the path declares (anything else —
//     HEAD, a 405 — goes to the general routers).
//
// What it returns is what gorilla/mux would: the route with its
// operation, and the parameter values as they appear in the escaped path.
type fastRoutes struct {
	// bySegs lists the templates by their number of segments.
	bySegs map[int][]*fastTemplate
}

// maxFastParams bounds the parameters of a template that takes part.
const maxFastParams = 4

type fastTemplate struct {
	// segs are the template's segments; param[i] names the parameter at
	// segment i ("" for a literal).
	segs  []string
	param []string
	// routes and patterns are per method: the route the validator checks
	// the request against, and the ServeMux pattern ("GET /v1/…") the
	// metrics label the request with.
	routes   map[string]*routers.Route
	patterns map[string]string
}

// fastMatch is the result of a lookup.
type fastMatch struct {
	t    *fastTemplate
	vals [maxFastParams]string
	n    int
}

// newFastRoutes returns the matcher of doc's paths; others are the other
// patterns (ServeMux syntax, with or without a method) served beside the
// spec, whose paths a template must not overlap.
func newFastRoutes(doc *openapi3.T, others []string) *fastRoutes {
	f := &fastRoutes{bySegs: map[int][]*fastTemplate{}}
	var all []string
	for path := range doc.Paths.Map() {
		all = append(all, path)
	}
	sort.Strings(all)
	for _, path := range all {
		segs, params, ok := parseTemplate(path)
		if !ok || overlapsAny(path, segs, all, others) {
			continue
		}
		t := &fastTemplate{segs: segs, param: params, routes: map[string]*routers.Route{}, patterns: map[string]string{}}
		item := doc.Paths.Value(path)
		for method, op := range item.Operations() {
			t.routes[method] = &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
			t.patterns[method] = method + " " + path
		}
		f.bySegs[len(segs)] = append(f.bySegs[len(segs)], t)
	}
	return f
}

// parseTemplate splits an OpenAPI path template into segments; ok is
// false when a parameter is not a whole segment or there are too many.
func parseTemplate(path string) (segs, params []string, ok bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, nil, false
	}
	n := 0
	for _, s := range strings.Split(path[1:], "/") {
		switch {
		case s == "":
			return nil, nil, false
		case strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") && !strings.ContainsAny(s[1:len(s)-1], "{}:."):
			segs, params = append(segs, ""), append(params, s[1:len(s)-1])
			n++
		case strings.ContainsAny(s, "{}"):
			return nil, nil, false
		default:
			segs, params = append(segs, s), append(params, "")
		}
	}
	return segs, params, n <= maxFastParams
}

// overlapsAny reports whether another spec path or another pattern could
// match a path that the template path (segs) matches.
func overlapsAny(path string, segs []string, specPaths, others []string) bool {
	for _, p := range specPaths {
		if p == path {
			continue
		}
		o, _, ok := parseTemplate(p)
		if !ok {
			// Not understood (a parameter inside a segment): assume the worst
			// for templates of any length it might reach.
			o = strings.Split(strings.Trim(p, "/"), "/")
			for i := range o {
				if strings.Contains(o[i], "{") {
					o[i] = ""
				}
			}
			if segsOverlap(segs, o, true) {
				return true
			}
			continue
		}
		if segsOverlap(segs, o, false) {
			return true
		}
	}
	for _, pattern := range others {
		p := pattern
		if _, rest, ok := strings.Cut(pattern, " "); ok {
			p = rest
		}
		if i := strings.Index(p, "/"); i > 0 {
			p = p[i:] // a host-qualified pattern
		}
		exact := strings.HasSuffix(p, "/{$}")
		p = strings.TrimSuffix(p, "{$}")
		prefix := strings.HasSuffix(p, "/") && !exact
		trimmed := strings.Trim(p, "/")
		var o []string
		if trimmed != "" {
			o = strings.Split(trimmed, "/")
		}
		for i := 0; i < len(o); i++ {
			if strings.HasSuffix(o[i], "...}") {
				o, prefix = o[:i], true
				break
			}
			if strings.Contains(o[i], "{") {
				o[i] = ""
			}
		}
		if segsOverlap(segs, o, prefix) {
			return true
		}
	}
	return false
}

// segsOverlap reports whether a path could match both templates a and b
// ("" is a parameter segment); with prefix, b matches any path that
// starts with its segments.
func segsOverlap(a, b []string, prefix bool) bool {
	if len(b) > len(a) || (!prefix && len(b) != len(a)) {
		return false
	}
	for i := range b {
		if a[i] != "" && b[i] != "" && a[i] != b[i] {
			return false
		}
	}
	return true
}

// lookup matches r's path against the templates; see fastRoutes for when
// it answers. The caller still checks the method (route, pattern).
func (f *fastRoutes) lookup(r *http.Request, m *fastMatch) bool {
	if f == nil || r.URL.RawPath != "" {
		return false
	}
	path := r.URL.EscapedPath() // equals r.URL.Path unless it has characters to escape
	if len(path) < 2 || path[0] != '/' {
		return false
	}
	n := strings.Count(path, "/")
	for _, t := range f.bySegs[n] {
		if t.match(path, m) {
			return true
		}
	}
	return false
}

func (t *fastTemplate) match(path string, m *fastMatch) bool {
	rest := path[1:]
	m.n = 0
	for i, lit := range t.segs {
		seg := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			seg, rest = rest[:j], rest[j+1:]
		} else {
			rest = ""
		}
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		if t.param[i] == "" {
			if seg != lit {
				return false
			}
			continue
		}
		m.vals[m.n] = seg
		m.n++
	}
	m.t = t
	return true
}

// route returns the matched template's route for method (nil when the
// path does not declare it).
func (m *fastMatch) route(method string) *routers.Route {
	if m.t == nil {
		return nil
	}
	return m.t.routes[method]
}

// pathParams returns the matched parameter values by name.
func (m *fastMatch) pathParams() map[string]string {
	out := make(map[string]string, m.n)
	k := 0
	for _, name := range m.t.param {
		if name != "" {
			out[name] = m.vals[k]
			k++
		}
	}
	return out
}
