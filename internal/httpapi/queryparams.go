package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/wire"
)

// maxUnknownFields bounds the unknown parameters one problem names.
const maxUnknownFields = 16

// queryParams knows the query parameters each operation of the spec
// declares (its own and its path's), so that a request carrying any other
// is refused instead of having it silently ignored.
type queryParams struct {
	mux     *http.ServeMux      // the spec's paths, to find a request's operation
	fast    *fastRoutes         // the same, for the paths it matches
	allowed map[string][]string // "METHOD /path/{template}" → sorted names
}

// newQueryParams reads the declared query parameters of every operation
// of doc.
func newQueryParams(doc *openapi3.T, fast *fastRoutes) *queryParams {
	q := &queryParams{mux: http.NewServeMux(), fast: fast, allowed: map[string][]string{}}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			names := []string{}
			for _, p := range slices.Concat(item.Parameters, op.Parameters) {
				if p != nil && p.Value != nil && p.Value.In == openapi3.ParameterInQuery && !slices.Contains(names, p.Value.Name) {
					names = append(names, p.Value.Name)
				}
			}
			slices.Sort(names)
			pattern := method + " " + path
			q.allowed[pattern] = names
			q.mux.Handle(pattern, http.NotFoundHandler())
		}
	}
	return q
}

// check returns the 400 problem of a request to an operation of the spec
// that carries query parameters the operation does not declare; ok is
// false when there are none (or the request matches no operation: the
// validator answers it).
// m is r's fastRoutes lookup (m.t nil when it found none).
func (q *queryParams) check(r *http.Request, m *fastMatch) (api.Problem, bool) {
	if r.URL.RawQuery == "" {
		return api.Problem{}, false
	}
	var pattern string
	if m.route(r.Method) != nil {
		pattern = m.t.patterns[r.Method]
	} else {
		_, pattern = q.mux.Handler(r)
	}
	allowed, found := q.allowed[pattern]
	if !found {
		return api.Problem{}, false
	}
	return unknownQuery(r.URL.Query(), allowed)
}

// unknownQuery is the problem naming each parameter of query not in
// allowed (sorted); ok is false when there is none.
func unknownQuery(query url.Values, allowed []string) (api.Problem, bool) {
	var unknown []string
	for name := range query {
		if _, ok := slices.BinarySearch(allowed, name); !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return api.Problem{}, false
	}
	slices.Sort(unknown)
	takes := "this operation takes no query parameters"
	if len(allowed) > 0 {
		takes = "this operation takes " + strings.Join(allowed, ", ")
	}
	fields := make([]api.ProblemField, 0, min(len(unknown), maxUnknownFields))
	quoted := make([]string, 0, len(fields))
	for _, name := range unknown[:min(len(unknown), maxUnknownFields)] {
		fields = append(fields, wire.ParamField(api.Query, name, fmt.Sprintf("unknown query parameter %q; %s", name, takes)))
		quoted = append(quoted, fmt.Sprintf("%q", name))
	}
	detail := "unknown query parameter " + quoted[0]
	if len(unknown) > 1 {
		detail = "unknown query parameters " + strings.Join(quoted, ", ")
		if len(unknown) > len(quoted) {
			detail += fmt.Sprintf(" (and %d more)", len(unknown)-len(quoted))
		}
	}
	return wire.NewProblem(wire.KindInvalid, detail+"; "+takes, fields), true
}

// refuseQuery serves next, an endpoint outside the spec's operations that
// takes no query parameters (the WebSocket upgrade), answering a request
// that carries any with a 400 problem naming them.
func refuseQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.RawQuery != "" {
			if p, ok := unknownQuery(r.URL.Query(), nil); ok {
				writeProblem(w, r, p)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
