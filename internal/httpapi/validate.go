package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/wire"
)

// requestValidator returns kin-openapi request validation as middleware:
// every request to a route of the spec is checked before its handler runs,
// and failures become 400/404/405/415 problems naming the field. A query
// parameter the operation does not declare is a 400 problem naming it
// (queryParams), checked first. The request's operation is found by fast
// (a segment match, see fastRoutes) and otherwise by kin-openapi's
// gorilla/mux router; either way openapi3filter.ValidateRequest checks
// every request. Errors: the spec's paths do not build a router.
func requestValidator(doc *openapi3.T, auth openapi3filter.AuthenticationFunc, fast *fastRoutes) (func(http.Handler) http.Handler, error) {
	// As oapi-codegen's nethttp-middleware configured it: every error
	// reported (MultiError), no defaults set, the validated body not kept
	// (handlers decode the raw body, so JSON member order is preserved),
	// no Host validation.
	opts := &openapi3filter.Options{MultiError: true, AuthenticationFunc: auth, SkipSettingDefaults: true}
	if auth == nil {
		opts.AuthenticationFunc = openapi3filter.NoopAuthenticationFunc
	}
	doc.Servers = nil
	general, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	params := newQueryParams(doc, fast)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			r = decodedPath(r)
			var m fastMatch
			fast.lookup(r, &m)
			if p, bad := params.check(r, &m); bad {
				writeProblem(w, r, p)
				return
			}
			var (
				route      *routers.Route
				pathParams map[string]string
				err        error
			)
			if route = m.route(r.Method); route != nil {
				pathParams = m.pathParams()
			} else if route, pathParams, err = general.FindRoute(r); err != nil {
				writeProblem(w, r, validationProblem(err, nil))
				return
			}
			in := &openapi3filter.RequestValidationInput{Request: r, PathParams: pathParams, Route: route, Options: opts}
			if err = openapi3filter.ValidateRequest(r.Context(), in); err != nil {
				switch err.(type) {
				case openapi3.MultiError, *openapi3filter.RequestError, *openapi3filter.SecurityRequirementsError:
				default:
					err = fmt.Errorf("error validating route: %w", err)
				}
				writeProblem(w, r, validationProblem(err, route))
				return
			}
			next.ServeHTTP(w, r)
		})
	}, nil
}

// decodedPath drops the escaped form of r's path when it only escapes
// characters that need none in a path (e.g. "chat%3Alobby"), so the
// validator and the router see path parameters decoded, as clients that
// escape ':' expect. An escaped "/" keeps its meaning (it stays escaped).
func decodedPath(r *http.Request) *http.Request {
	if r.URL.RawPath == "" || strings.Contains(strings.ToLower(r.URL.RawPath), "%2f") {
		return r
	}
	u := *r.URL
	u.RawPath = ""
	r2 := new(http.Request)
	*r2 = *r
	r2.URL = &u
	return r2
}

// validationProblem converts a kin-openapi validation error to a problem;
// route is the request's route (nil when none matched).
func validationProblem(err error, route *routers.Route) api.Problem {
	if route == nil {
		if errors.Is(err, routers.ErrMethodNotAllowed) {
			return wire.NewProblem(wire.KindMethodNotAllowed, "this method is not allowed on this path", nil)
		}
		return wire.NewProblem(wire.KindRouteNotFound, "no such endpoint", nil)
	}
	var fields []api.ProblemField
	unsupported := false
	var sec *openapi3filter.SecurityRequirementsError
	if errors.As(err, &sec) {
		return wire.Problem(sec.Errors[0])
	}
	var collect func(error)
	collect = func(e error) {
		// A RequestError wraps a MultiError of schema errors, so test for
		// it before unwrapping multi-errors.
		re, isRequest := e.(*openapi3filter.RequestError)
		if me, ok := e.(openapi3.MultiError); ok && !isRequest {
			for _, x := range me {
				collect(x)
			}
			return
		}
		if !isRequest && !errors.As(e, &re) {
			if errors.As(e, &sec) && len(sec.Errors) > 0 {
				fields = append(fields, api.ProblemField{In: api.Header, Detail: "authentication failed"})
			}
			return
		}
		switch {
		case re.Parameter != nil:
			in := api.ProblemFieldIn(re.Parameter.In)
			fields = append(fields, wire.ParamField(in, re.Parameter.Name, paramDetail(re)))
		case re.RequestBody != nil && strings.HasPrefix(re.Reason, "header Content-Type has unexpected value"):
			unsupported = true
			fields = append(fields, wire.ParamField(api.Header, "Content-Type", "must be one of "+strings.Join(contentTypes(re.RequestBody), ", ")))
		case re.RequestBody != nil:
			fields = append(fields, bodyFields(re)...)
		default:
			fields = append(fields, api.ProblemField{In: api.Body, Detail: re.Reason})
		}
	}
	collect(err)
	if len(fields) == 0 {
		fields = append(fields, api.ProblemField{In: api.Body, Detail: "the request does not match the API description"})
	}
	sort.SliceStable(fields, func(i, j int) bool { return fieldKey(fields[i]) < fieldKey(fields[j]) })
	detail := describe(fields[0])
	if len(fields) > 1 {
		detail += fmt.Sprintf(" (and %d more)", len(fields)-1)
	}
	if unsupported {
		return wire.NewProblem(wire.KindUnsupportedMedia, detail, fields)
	}
	return withOperation(wire.NewProblem(wire.KindInvalid, detail, fields))
}

func fieldKey(f api.ProblemField) string {
	k := string(f.In)
	if f.Name != nil {
		k += *f.Name
	}
	return k
}

func describe(f api.ProblemField) string {
	switch {
	case f.Pointer != nil && *f.Pointer != "":
		return fmt.Sprintf("body field %s: %s", *f.Pointer, f.Detail)
	case f.Name != nil && f.In == api.Body:
		return fmt.Sprintf("body: %s", f.Detail)
	case f.Name != nil:
		return fmt.Sprintf("%s %s: %s", f.In, *f.Name, f.Detail)
	}
	return f.Detail
}

func contentTypes(rb *openapi3.RequestBody) []string {
	var out []string
	for ct := range rb.Content {
		out = append(out, ct)
	}
	sort.Strings(out)
	return out
}

func paramDetail(re *openapi3filter.RequestError) string {
	var se *openapi3.SchemaError
	if errors.As(re.Err, &se) {
		return se.Reason
	}
	if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
		return "is required"
	}
	var pe *openapi3filter.ParseError
	if errors.As(re.Err, &pe) {
		return "could not be parsed: " + pe.Reason
	}
	if re.Reason != "" {
		return re.Reason
	}
	return "is invalid"
}

// bodyFields lists the schema violations of a request body with JSON pointers.
func bodyFields(re *openapi3filter.RequestError) []api.ProblemField {
	if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
		return []api.ProblemField{{In: api.Body, Detail: "a request body is required"}}
	}
	var out []api.ProblemField
	var walk func(error)
	walk = func(e error) {
		if me, ok := e.(openapi3.MultiError); ok {
			for _, x := range me {
				walk(x)
			}
			return
		}
		var se *openapi3.SchemaError
		if errors.As(e, &se) {
			ptr := se.JSONPointer()
			// Missing and unsupported properties are reported at their
			// parent in some kin-openapi versions; name the property.
			for _, suffix := range []string{"\" is missing", "\" is unsupported"} {
				if strings.HasPrefix(se.Reason, "property \"") && strings.HasSuffix(se.Reason, suffix) {
					name := strings.TrimSuffix(strings.TrimPrefix(se.Reason, "property \""), suffix)
					if len(ptr) == 0 || ptr[len(ptr)-1] != name {
						ptr = append(ptr, name)
					}
				}
			}
			out = append(out, wire.BodyField(toPointer(ptr), se.Reason))
			return
		}
		var pe *openapi3filter.ParseError
		if errors.As(e, &pe) {
			// checkJSONBody refuses malformed JSON bodies first; this is a
			// fallback that never ends in an empty reason.
			reason := pe.Reason
			if reason == "" && pe.Cause != nil {
				reason = pe.Cause.Error()
			}
			if reason == "" {
				reason = "the body could not be decoded"
			}
			out = append(out, api.ProblemField{In: api.Body, Detail: "malformed JSON: " + reason})
			return
		}
		out = append(out, api.ProblemField{In: api.Body, Detail: "could not be decoded"})
	}
	walk(re.Err)
	return out
}

func toPointer(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		b.WriteString(strings.NewReplacer("~", "~0", "/", "~1").Replace(s))
	}
	return b.String()
}

// bindingProblem describes a parameter the generated binding code could
// not bind (the request validator refuses most such requests first), as a
// 400 problem naming the parameter: one given several times where the API
// takes one value (e.g. two `topic` query parameters), a missing required
// one, or one whose value does not parse.
func bindingProblem(r *http.Request, err error) api.Problem {
	var (
		tooMany   *api.TooManyValuesForParamError
		invalid   *api.InvalidParamFormatError
		required  *api.RequiredParamError
		reqHeader *api.RequiredHeaderError
		unmarshal *api.UnmarshalingParamError
		cookie    *api.UnescapedCookieParamError
	)
	in, name, detail := api.Query, "", "could not be parsed"
	once := func(n int) string {
		if n < 2 {
			return "may appear only once"
		}
		return fmt.Sprintf("may appear only once (got %d values)", n)
	}
	switch {
	case errors.As(err, &tooMany):
		in, name, detail = api.Header, tooMany.ParamName, once(tooMany.Count)
	case errors.As(err, &invalid):
		name = invalid.ParamName
		in = paramLocation(r, name)
		switch {
		case invalid.Err == nil:
		case strings.HasPrefix(invalid.Err.Error(), "multiple values for single value parameter"):
			n := len(r.URL.Query()[name])
			if in == api.Header {
				n = len(r.Header.Values(name))
			}
			detail = once(n)
		default:
			detail = "could not be parsed: " + invalid.Err.Error()
		}
	case errors.As(err, &required):
		name, detail = required.ParamName, "is required"
	case errors.As(err, &reqHeader):
		in, name, detail = api.Header, reqHeader.ParamName, "is required"
	case errors.As(err, &unmarshal):
		name = unmarshal.ParamName
		in, detail = paramLocation(r, name), "is not valid JSON"
		if unmarshal.Err != nil {
			detail += ": " + unmarshal.Err.Error()
		}
	case errors.As(err, &cookie):
		in, name, detail = api.Header, "Cookie", "cookie "+cookie.ParamName+" could not be unescaped"
	}
	var f api.ProblemField
	if name == "" {
		f = api.ProblemField{In: in, Detail: "a parameter " + detail}
	} else {
		f = wire.ParamField(in, name, detail)
	}
	return wire.NewProblem(wire.KindInvalid, describe(f), []api.ProblemField{f})
}

// paramLocation says where a request carries the parameter name: the
// query string, else a header, else the path.
func paramLocation(r *http.Request, name string) api.ProblemFieldIn {
	switch {
	case r.URL.Query().Has(name):
		return api.Query
	case len(r.Header.Values(name)) > 0:
		return api.Header
	}
	return api.Path
}
