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
	return &OpenAPI{doc: doc, router: r}, nil
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
	return nil
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
