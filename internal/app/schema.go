package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

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

// compileSchema compiles a collection's JSON Schema. Errors: a
// ValidationError (unprocessable) pointing at /schema.
func compileSchema(doc json.RawMessage) (*jsonschema.Schema, error) {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, &ValidationError{Code: store.CodeUnprocessable, Message: "schema is not valid JSON",
			Fields: []FieldError{{Pointer: "/schema", Detail: "not valid JSON"}}}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.UseLoader(noLoader{})
	const loc = "tandem:///collection-schema.json"
	if err := c.AddResource(loc, v); err != nil {
		return nil, schemaCompileError(err)
	}
	s, err := c.Compile(loc)
	if err != nil {
		return nil, schemaCompileError(err)
	}
	return s, nil
}

func schemaCompileError(err error) error {
	detail := err.Error()
	// The library prefixes messages with our internal location; keep the rest.
	detail = strings.ReplaceAll(detail, "tandem:///collection-schema.json", "schema")
	return &ValidationError{Code: store.CodeUnprocessable, Message: "schema is not a valid JSON Schema: " + detail,
		Fields: []FieldError{{Pointer: "/schema", Detail: detail}}}
}

// validateData checks data against s. Errors: a ValidationError
// (unprocessable) whose fields point into the request body under prefix
// (e.g. "/data").
func validateData(s *jsonschema.Schema, data json.RawMessage, prefix string) error {
	if s == nil {
		return nil
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return &ValidationError{Code: store.CodeInvalid, Message: "data is not valid JSON",
			Fields: []FieldError{{Pointer: prefix, Detail: "not valid JSON"}}}
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return &ValidationError{Code: store.CodeUnprocessable, Message: "data does not match the collection schema",
			Fields: []FieldError{{Pointer: prefix, Detail: "does not match the collection schema"}}}
	}
	var fields []FieldError
	seen := map[string]bool{}
	var walk func(u *jsonschema.OutputUnit)
	walk = func(u *jsonschema.OutputUnit) {
		if u.Error != nil && len(u.Errors) == 0 {
			f := FieldError{Pointer: prefix + u.InstanceLocation, Detail: u.Error.String()}
			if !seen[f.Pointer+f.Detail] {
				seen[f.Pointer+f.Detail] = true
				fields = append(fields, f)
			}
		}
		for i := range u.Errors {
			walk(&u.Errors[i])
		}
	}
	walk(ve.BasicOutput())
	if len(fields) == 0 {
		fields = []FieldError{{Pointer: prefix, Detail: "does not match the collection schema"}}
	}
	sort.SliceStable(fields, func(i, j int) bool { return fields[i].Pointer < fields[j].Pointer })
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
// evaluation path. Errors: a ValidationError (unprocessable) pointing at
// the subschema that closes the cycle, under /schema.
func checkRefCycles(root *jsonschema.Schema) error {
	// Every subschema, in a stable order, with its in-place edges, and the
	// dynamic targets.
	all := []*jsonschema.Schema{root}
	seen := map[*jsonschema.Schema]bool{root: true}
	inPlace := map[*jsonschema.Schema][]*jsonschema.Schema{}
	for i := 0; i < len(all); i++ {
		in := inPlaceSubschemas(all[i])
		inPlace[all[i]] = in
		for _, n := range append(slices.Clip(in), descendingSubschemas(all[i])...) {
			if !seen[n] {
				seen[n] = true
				all = append(all, n)
			}
		}
	}
	dynamic := map[string][]*jsonschema.Schema{}
	var recursive []*jsonschema.Schema
	for _, s := range all {
		if s.DynamicAnchor != "" {
			dynamic[s.DynamicAnchor] = append(dynamic[s.DynamicAnchor], s)
		}
		if s.RecursiveAnchor {
			recursive = append(recursive, s)
		}
	}
	edges := func(s *jsonschema.Schema) []*jsonschema.Schema {
		out := slices.Clip(inPlace[s])
		if s.DynamicRef != nil && s.DynamicRef.Anchor != "" {
			out = append(out, dynamic[s.DynamicRef.Anchor]...)
		}
		if s.RecursiveRef != nil {
			out = append(out, recursive...)
		}
		return out
	}

	const (
		unseen = iota
		onPath
		done
	)
	state := map[*jsonschema.Schema]int{}
	// visit walks the in-place edges from s depth-first and returns the
	// schema that closes a cycle, if any.
	var visit func(s *jsonschema.Schema) *jsonschema.Schema
	visit = func(s *jsonschema.Schema) *jsonschema.Schema {
		switch state[s] {
		case onPath:
			return s
		case done:
			return nil
		}
		state[s] = onPath
		for _, n := range edges(s) {
			if c := visit(n); c != nil {
				return c
			}
		}
		state[s] = done
		return nil
	}
	for _, s := range all {
		if c := visit(s); c != nil {
			_, frag, _ := strings.Cut(c.Location, "#")
			detail := fmt.Sprintf("the subschema at %s applies itself to the same value again ($ref cycle with no property or item in between)", "/schema"+frag)
			return &ValidationError{Code: store.CodeUnprocessable, Message: "schema is not a valid JSON Schema: " + detail,
				Fields: []FieldError{{Pointer: "/schema" + frag, Detail: detail}}}
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

// descendingSubschemas are the subschemas of s that apply to a member,
// an item or a decoded content of the instance.
func descendingSubschemas(s *jsonschema.Schema) []*jsonschema.Schema {
	var out []*jsonschema.Schema
	add := func(ss ...*jsonschema.Schema) { out = appendSchemas(out, ss...) }
	for _, k := range sortedKeys(s.Properties) {
		add(s.Properties[k])
	}
	for _, x := range s.PatternProperties {
		add(x)
	}
	for _, v := range []any{s.AdditionalProperties, s.Items, s.AdditionalItems} {
		switch x := v.(type) {
		case *jsonschema.Schema:
			add(x)
		case []*jsonschema.Schema:
			add(x...)
		}
	}
	add(s.PropertyNames, s.UnevaluatedProperties, s.Items2020, s.Contains, s.UnevaluatedItems, s.ContentSchema)
	add(s.PrefixItems...)
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
