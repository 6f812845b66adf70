// Package specval enforces Tandem's contracts at runtime: responses against
// spec/openapi.yaml (in tests always, live under --strict) and WebSocket/SSE
// frames against spec/asyncapi.yaml.
package specval

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tandemhq/tandem/spec"
)

// OpenAPI validates HTTP exchanges against spec/openapi.yaml.
type OpenAPI struct {
	doc    *openapi3.T
	router routers.Router
	// sseEvents (or sseErr) is what GET /v1/events declares, read once.
	sseEvents []string
	sseErr    error
}

// LoadOpenAPI parses and validates the embedded OpenAPI document. Errors:
// the document is invalid (a build defect).
func LoadOpenAPI() (*OpenAPI, error) {
	doc, err := LoadOpenAPIDoc()
	if err != nil {
		return nil, err
	}
	// Match any host: tests and servers listen on arbitrary ports.
	doc.Servers = nil
	r, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("openapi router: %w", err)
	}
	v := &OpenAPI{doc: doc, router: r}
	v.sseEvents, v.sseErr = sseEvents(doc)
	return v, nil
}

// LoadOpenAPIDoc parses and validates the embedded OpenAPI document.
func LoadOpenAPIDoc() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(spec.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is invalid: %w", err)
	}
	return doc, nil
}

// Doc returns the parsed document.
func (v *OpenAPI) Doc() *openapi3.T { return v.doc }

// ValidateResponse checks one response (status, headers, body) to req
// against the spec. A request outside the spec's routes may only get a
// 404/405 problem (validated against the Problem schema). Errors: the
// response does not match the spec (the error says where), or a request
// outside the spec got anything else.
func (v *OpenAPI) ValidateResponse(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s: no route in spec, yet status %d: %w", req.Method, req.URL.Path, status, err)
		}
		return v.validateProblem(header, body)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true},
		},
		Status:  status,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("%s %s → %d does not match spec/openapi.yaml: %w", req.Method, req.URL.Path, status, err)
	}
	resp := Declared(route.Operation, status)
	if resp == nil {
		return fmt.Errorf("%s %s → %d: operation %s declares no %d response (only default covers it): declare it in spec/openapi.yaml", req.Method, req.URL.Path, status, route.Operation.OperationID, status)
	}
	if HookStatus(route.Operation, status) {
		return nil // a hook's refusal carries the application's own type
	}
	return checkProblemType(route.Operation.OperationID, status, resp, header, body)
}

// HooksExtension lists, on an operation of spec/openapi.yaml, the
// application hooks it calls (connect, subscribe, publish). A hook
// refuses with its own problem: status 400, 403, 409, 422 or 429 and any
// type, so those statuses of such an operation are not type-checked.
const HooksExtension = "x-tandem-hooks"

// hookStatuses are the statuses a hook's refusal may carry.
var hookStatuses = []int{400, 403, 409, 422, 429}

// HookStatus reports whether status, on op, may be a hook's refusal with
// the application's own problem type. It returns no error.
func HookStatus(op *openapi3.Operation, status int) bool {
	if _, ok := op.Extensions[HooksExtension]; !ok {
		return false
	}
	return slices.Contains(hookStatuses, status)
}

// ProblemTypesExtension lists, on a response of spec/openapi.yaml, the
// problem types (slugs after wire.ProblemBase) its body may carry; a
// response without it may carry any type (e.g. a hook's own problem).
const ProblemTypesExtension = "x-tandem-problem-types"

// Declared returns the response op declares for status itself: its exact
// code, else its range ("4XX"); nil when only default covers status. It
// returns no error.
func Declared(op *openapi3.Operation, status int) *openapi3.Response {
	if op == nil || op.Responses == nil {
		return nil
	}
	for _, key := range []string{strconv.Itoa(status), strconv.Itoa(status/100) + "XX"} {
		if ref := op.Responses.Value(key); ref != nil && ref.Value != nil {
			return ref.Value
		}
	}
	return nil
}

// ProblemTypes returns the problem type slugs resp declares through
// ProblemTypesExtension (nil: any). Errors: the extension is not a list of
// strings (a spec defect).
func ProblemTypes(resp *openapi3.Response) ([]string, error) {
	raw, ok := resp.Extensions[ProblemTypesExtension]
	if !ok {
		return nil, nil
	}
	return stringList(ProblemTypesExtension, raw)
}

// stringList converts the value of the extension name to the non-empty
// list of strings it must be. Errors: it is something else (a spec
// defect).
func stringList(name string, raw any) ([]string, error) {
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, fmt.Errorf("%s must be a non-empty list of strings, not %v", name, raw)
	}
	out := make([]string, len(list))
	for i, v := range list {
		if out[i], ok = v.(string); !ok {
			return nil, fmt.Errorf("%s must be a non-empty list of strings, not %v", name, raw)
		}
	}
	return out, nil
}

// ProblemBase prefixes every problem type (wire.ProblemBase is this).
const ProblemBase = "https://tandem.dev/problems/"

// checkProblemType checks that a problem body's type is one its response
// declares.
func checkProblemType(opID string, status int, resp *openapi3.Response, header http.Header, body []byte) error {
	if header.Get("Content-Type") != "application/problem+json" {
		return nil
	}
	types, err := ProblemTypes(resp)
	if err != nil || types == nil {
		return err
	}
	var p struct{ Type string }
	if err := json.Unmarshal(body, &p); err != nil {
		return fmt.Errorf("%s → %d: problem body is not JSON: %w", opID, status, err)
	}
	for _, t := range types {
		if p.Type == ProblemBase+t {
			return nil
		}
	}
	return fmt.Errorf("%s → %d: problem type %q is not among those the response declares (%s: %s)", opID, status, p.Type, ProblemTypesExtension, strings.Join(types, ", "))
}

// validateProblem checks an RFC 9457 problem against the Problem schema.
func (v *OpenAPI) validateProblem(header http.Header, body []byte) error {
	if ct := header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("problem response has Content-Type %q", ct)
	}
	ref := v.doc.Components.Schemas["Problem"]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("spec has no Problem schema")
	}
	var val any
	if err := json.Unmarshal(body, &val); err != nil {
		return fmt.Errorf("problem body is not JSON: %w", err)
	}
	if err := ref.Value.VisitJSON(val, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("problem body does not match the Problem schema: %w", err)
	}
	return nil
}

// RoundTripper wraps next so that every response it returns is validated;
// a mismatch is reported to fail (e.g. t.Errorf) and the response is still
// returned unchanged.
func (v *OpenAPI) RoundTripper(next http.RoundTripper, fail func(format string, args ...any)) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err != nil {
			return resp, err
		}
		body, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr != nil {
			return nil, rerr
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if verr := v.ValidateResponse(req, resp.StatusCode, resp.Header, body); verr != nil {
			fail("contract violation: %v\nbody: %s", verr, truncate(body))
		}
		return resp, nil
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func truncate(b []byte) string {
	if len(b) > 2048 {
		return string(b[:2048]) + "…"
	}
	return string(b)
}

// ValidateSchema checks a JSON document against the named schema of
// components/schemas (e.g. the webhook payloads, which no response
// carries). Errors: no such schema, body not JSON, or the mismatch.
func (v *OpenAPI) ValidateSchema(name string, body []byte) error {
	ref := v.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("spec has no %s schema", name)
	}
	var val any
	if err := json.Unmarshal(body, &val); err != nil {
		return fmt.Errorf("%s body is not JSON: %w", name, err)
	}
	if err := ref.Value.VisitJSON(val, openapi3.MultiErrors()); err != nil {
		return fmt.Errorf("body does not match the %s schema: %w", name, err)
	}
	return nil
}

// SSEEventsExtension lists, on the text/event-stream content of
// GET /v1/events, the SSE event names the stream may carry; each names
// the type of the server frame (spec/asyncapi.yaml) in its data.
const SSEEventsExtension = "x-tandem-sse-events"

// SSEEvents returns the SSE event names GET /v1/events declares. Errors:
// the spec does not declare them (a spec defect).
func (v *OpenAPI) SSEEvents() ([]string, error) { return v.sseEvents, v.sseErr }

func sseEvents(doc *openapi3.T) ([]string, error) {
	item := doc.Paths.Value("/v1/events")
	if item == nil || item.Get == nil {
		return nil, fmt.Errorf("spec has no GET /v1/events")
	}
	resp := Declared(item.Get, http.StatusOK)
	if resp == nil || resp.Content["text/event-stream"] == nil {
		return nil, fmt.Errorf("GET /v1/events declares no text/event-stream 200 response")
	}
	raw, ok := resp.Content["text/event-stream"].Extensions[SSEEventsExtension]
	if !ok {
		return nil, fmt.Errorf("GET /v1/events has no %s list", SSEEventsExtension)
	}
	return stringList(SSEEventsExtension, raw)
}

// ValidateSSEEvent checks one event of a GET /v1/events stream: its name
// is one the spec declares, and its data is a server frame of
// spec/asyncapi.yaml (frames) whose type is that name. Errors: the event
// breaks either contract (the error says how).
func (v *OpenAPI) ValidateSSEEvent(frames *AsyncAPI, name string, data []byte) error {
	names, err := v.SSEEvents()
	if err != nil {
		return err
	}
	if !slices.Contains(names, name) {
		return fmt.Errorf("SSE event %q is not declared by GET /v1/events (%s: %s)", name, SSEEventsExtension, strings.Join(names, ", "))
	}
	typ, err := validateFrame(frames.server, data)
	if err != nil {
		return fmt.Errorf("SSE event %q: %w", name, err)
	}
	if typ != name {
		return fmt.Errorf("SSE event %q carries a frame of type %q", name, typ)
	}
	return nil
}
