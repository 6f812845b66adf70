package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tandemhq/tandem/internal/schemaerr"
	"github.com/tandemhq/tandem/internal/store"
)

// FieldError names one invalid member of a request or resource by its JSON
// pointer (RFC 6901) relative to the request body.
type FieldError struct {
	Pointer string
	Detail  string
}

// ValidationError is returned when a resource's data violates its
// collection's JSON Schema (code unprocessable) or a request is invalid
// (code invalid). Fields lists every violation found.
type ValidationError struct {
	Code    store.Code
	Message string
	Fields  []FieldError
}

func (e *ValidationError) Error() string { return e.Message }

// Is makes errors.Is(err, store.ErrInvalid) work for the invalid code.
func (e *ValidationError) Is(target error) bool {
	t, ok := target.(*store.Error)
	return ok && t.Code == e.Code
}

// As lets store.ErrorCode and store.ErrorMessage read a ValidationError.
func (e *ValidationError) As(target any) bool {
	if t, ok := target.(**store.Error); ok {
		*t = &store.Error{Code: e.Code, Message: e.Message}
		return true
	}
	return false
}

// noLoader refuses every external $ref: schemas come from clients and must
// not make the server read files or fetch URLs.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external $ref %q is not allowed", url)
}

// schemaLocation is where the compiler keeps a collection's schema, and
// checkLocation the boolean check around it (see meteredSchema).
const (
	schemaLocation = "tandem:///collection-schema.json"
	checkLocation  = "tandem:///collection-schema-check.json"
)

// parseSchema checks a schema document's size and depth on its bytes,
// parses it, counts its subschemas and sizes its patterns into patterns —
// all before the compiler, whose time grows with each. Errors: a
// ValidationError (unprocessable) naming the offending place under
// /schema.
func parseSchema(doc []byte, patterns *patternSet) (any, schemaCounts, error) {
	if err := checkSchemaBytes(doc); err != nil {
		return nil, schemaCounts{}, err
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, schemaCounts{}, &ValidationError{Code: store.CodeUnprocessable, Message: "schema is not valid JSON",
			Fields: []FieldError{{Pointer: "/schema", Detail: "not valid JSON"}}}
	}
	counts, err := countSubschemas(v)
	if err != nil {
		return nil, schemaCounts{}, err
	}
	// Size the patterns in document order, before the compiler compiles
	// them (in no particular order); a syntax error is the compiler's to
	// report.
	for _, p := range counts.patterns {
		if _, err := patterns.measure(p.pattern); errors.Is(err, errPatternLimit) {
			return nil, schemaCounts{}, schemaLimitError(p.pointer, err.Error())
		}
	}
	return v, counts, nil
}

// compileParsed compiles a parsed schema document and collects every
// subschema validation can reach, including the dynamic anchors at
// anchors (document pointers) that only a $dynamicRef reaches; patterns
// compiles (and keeps) its regular expressions. It also compiles check,
// {"not": {"$ref": root}}, which shares root's subschemas. Errors: a
// ValidationError (unprocessable) pointing at /schema, naming the
// subschema past MaxSchemaSubschemas, or the pattern that is invalid or
// past MaxSchemaPatternSize.
func compileParsed(v any, anchors []string, patterns *patternSet) (g *schemaGraph, check *jsonschema.Schema, err error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	c.UseRegexpEngine(patterns.compile)
	if err := c.AddResource(schemaLocation, v); err != nil {
		return nil, nil, schemaCompileError(err)
	}
	root, err := c.Compile(schemaLocation)
	if err != nil {
		return nil, nil, schemaCompileError(err)
	}
	// The boolean check around root (see meteredSchema); its $ref finds
	// the root compiled above.
	if err := c.AddResource(checkLocation, map[string]any{"not": map[string]any{"$ref": schemaLocation}}); err != nil {
		return nil, nil, err
	}
	if check, err = c.Compile(checkLocation); err != nil {
		return nil, nil, err
	}
	var extra []*jsonschema.Schema
	for _, ptr := range anchors {
		// Already compiled with the resource that holds it: this finds it.
		if s, err := c.Compile(schemaLocation + "#" + pointerFragment(ptr)); err == nil {
			extra = append(extra, s)
		}
	}
	g = newSchemaGraph(root, extra...)
	if len(g.all) > MaxSchemaSubschemas {
		s := g.all[MaxSchemaSubschemas]
		detail := fmt.Sprintf("the schema has more than %d subschemas, counting those of the metaschemas it refers to (the first one over is at %s)", MaxSchemaSubschemas, describeSchema(s))
		return nil, nil, schemaLimitError(schemaPointer(s), detail)
	}
	return g, check, nil
}

// pointerFragment percent-encodes a JSON pointer's tokens for a URI
// fragment, as the compiler decodes it.
func pointerFragment(ptr string) string {
	toks := strings.Split(ptr, "/")
	for i, t := range toks {
		toks[i] = url.PathEscape(t)
	}
	return strings.Join(toks, "/")
}

// compileSchema checks a collection's JSON Schema document against the
// size, depth and subschema limits and compiles it; it does not look for
// cycles or costly references (newCollectionSchema does everything).
// Errors: a ValidationError (unprocessable) pointing under /schema.
func compileSchema(doc json.RawMessage) (*jsonschema.Schema, error) {
	patterns := &patternSet{}
	v, counts, err := parseSchema(doc, patterns)
	if err != nil {
		return nil, err
	}
	g, _, err := compileParsed(v, counts.anchors, patterns)
	if err != nil {
		return nil, err
	}
	return g.all[0], nil
}

// maxDetail bounds the text of a compile error (the compiler quotes whole
// values).
const maxDetail = 2000

// schemaCompileError turns a compiler error into a 422 naming /schema, or
// the pattern for an invalid regular expression.
func schemaCompileError(err error) error {
	var ire *jsonschema.InvalidRegexError
	if errors.As(err, &ire) {
		if loc, frag, _ := strings.Cut(ire.URL, "#"); loc == schemaLocation {
			if f, err := url.PathUnescape(frag); err == nil {
				frag = f
			}
			detail := fmt.Sprintf("invalid regular expression %.200q: %v", ire.Regex, ire.Err)
			return &ValidationError{Code: store.CodeUnprocessable, Message: "schema is not a valid JSON Schema: /schema" + frag + ": " + detail,
				Fields: []FieldError{{Pointer: "/schema" + frag, Detail: detail}}}
		}
	}
	detail := err.Error()
	// The library prefixes messages with our internal location; keep the rest.
	detail = strings.ReplaceAll(detail, schemaLocation, "schema")
	if len(detail) > maxDetail {
		detail = strings.ToValidUTF8(detail[:maxDetail], "") + " …"
	}
	return &ValidationError{Code: store.CodeUnprocessable, Message: "schema is not a valid JSON Schema: " + detail,
		Fields: []FieldError{{Pointer: "/schema", Detail: detail}}}
}

// validateData checks data against the collection schema cs (nil: no
// schema) within cs's budget, stopping as soon as ctx is done. Errors: a
// ValidationError (invalid) when data is not JSON; a ValidationError
// (unprocessable) whose fields point into the request body under prefix
// (e.g. "/data") when data does not match, or naming prefix when the
// validation went over its budget (ValidationBudget); ctx's error, wrapped,
// when ctx ended first; an error without a code when a copy of the schema
// could not be compiled (which its checks at creation rule out).
func validateData(ctx context.Context, cs *collectionSchema, data json.RawMessage, prefix string) error {
	if cs == nil {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &ValidationError{Code: store.CodeInvalid, Message: "data is not valid JSON",
			Fields: []FieldError{{Pointer: prefix, Detail: "not valid JSON"}}}
	}
	ms, err := cs.get(ctx)
	if err != nil {
		return fmt.Errorf("the collection schema: %w", err)
	}
	err, stopped := ms.validate(ctx, cs.budget, v, depthOf(v))
	cs.put(ms)
	switch stopped {
	case stopCancelled:
		return fmt.Errorf("validation of %s stopped: %w", prefix, context.Cause(ctx))
	case stopSteps, stopTime:
		detail := "validation against the collection schema exceeded its budget of " + stopped.describe(cs.budget)
		return &ValidationError{Code: store.CodeUnprocessable, Message: prefix + ": " + detail,
			Fields: []FieldError{{Pointer: prefix, Detail: detail}}}
	case stopDetails:
		detail := "does not match the collection schema (where was not worked out: that would exceed the validation budget)"
		return &ValidationError{Code: store.CodeUnprocessable, Message: "data does not match the collection schema at " + prefix + ": " + detail,
			Fields: []FieldError{{Pointer: prefix, Detail: detail}}}
	}
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ValidationError{Code: store.CodeUnprocessable, Message: "data does not match the collection schema",
			Fields: []FieldError{{Pointer: prefix, Detail: "does not match the collection schema"}}}
	}
	// A missing or unexpected member is reported at its object, as the
	// library places it.
	var fields []FieldError
	for _, f := range schemaerr.Fields(ve, schemaerr.AtObject) {
		fields = append(fields, FieldError{Pointer: prefix + f.Pointer, Detail: f.Detail})
	}
	if len(fields) == 0 {
		fields = []FieldError{{Pointer: prefix, Detail: "does not match the collection schema"}}
	}
	msg := fmt.Sprintf("%s: %s", fields[0].Pointer, fields[0].Detail)
	if len(fields) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(fields)-1)
	}
	return &ValidationError{Code: store.CodeUnprocessable, Message: "data does not match the collection schema at " + msg, Fields: fields}
}

// checkRefCycles refuses a schema in which a subschema applies itself to
// the same instance again, through $ref, $dynamicRef, $recursiveRef, allOf,
// anyOf, oneOf, not, if/then/else or dependentSchemas, without descending
// into a member or item first: validating any instance that reaches it
// would never end (the validator stops with a reference-cycle error), so
// every write would be refused. A recursive schema that descends
// ({"properties": {"child": {"$ref": "#"}}}) is fine. A $dynamicRef or
// $recursiveRef counts as reaching every subschema with the matching
// dynamic or recursive anchor, since which one applies depends on the
// evaluation path; extra are subschemas only such references reach.
// Errors: a ValidationError (unprocessable) pointing at the subschema
// that closes the cycle, under /schema.
func checkRefCycles(root *jsonschema.Schema, extra ...*jsonschema.Schema) error {
	return newSchemaGraph(root, extra...).checkCycles()
}

// checkCycles is checkRefCycles on a collected graph.
func (g *schemaGraph) checkCycles() error {
	const (
		unseen = iota
		onPath
		done
	)
	state := make([]int, len(g.all))
	// visit walks the in-place edges from s depth-first and returns the
	// schema that closes a cycle, or -1.
	var visit func(i int) int
	visit = func(i int) int {
		switch state[i] {
		case onPath:
			return i
		case done:
			return -1
		}
		state[i] = onPath
		for _, edges := range [][]int{g.inPlace[i], g.dynamic(i)} {
			for _, n := range edges {
				if c := visit(n); c >= 0 {
					return c
				}
			}
		}
		state[i] = done
		return -1
	}
	for i := range g.all {
		if c := visit(i); c >= 0 {
			ptr := schemaPointer(g.all[c])
			detail := fmt.Sprintf("the subschema at %s applies itself to the same value again ($ref cycle with no property or item in between)", describeSchema(g.all[c]))
			return &ValidationError{Code: store.CodeUnprocessable, Message: "schema is not a valid JSON Schema: " + detail,
				Fields: []FieldError{{Pointer: ptr, Detail: detail}}}
		}
	}
	return nil
}

// inPlaceSubschemas are the subschemas of s that apply to the same
// instance as s.
func inPlaceSubschemas(s *jsonschema.Schema) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	add := func(ss ...*jsonschema.Schema) { out = appendSchemas(out, ss...) }
	add(s.Ref, s.RecursiveRef, s.Not, s.If, s.Then, s.Else)
	if s.DynamicRef != nil {
		add(s.DynamicRef.Ref)
	}
	add(s.AllOf...)
	add(s.AnyOf...)
	add(s.OneOf...)
	for _, k := range sortedKeys(s.DependentSchemas) {
		add(s.DependentSchemas[k])
	}
	for _, k := range sortedKeys(s.Dependencies) {
		if x, ok := s.Dependencies[k].(*jsonschema.Schema); ok {
			add(x)
		}
	}
	return out
}

// appendSchemas appends the non-nil schemas of ss to out.
func appendSchemas(out []*jsonschema.Schema, ss ...*jsonschema.Schema) []*jsonschema.Schema {
	for _, x := range ss {
		if x != nil {
			out = append(out, x)
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
