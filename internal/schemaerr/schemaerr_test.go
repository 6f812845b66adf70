package schemaerr

import (
	"math/big"
	"slices"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// node builds a validation error at the instance location loc (a JSON
// pointer without escapes).
func node(loc string, k jsonschema.ErrorKind, causes ...*jsonschema.ValidationError) *jsonschema.ValidationError {
	var toks []string
	if loc != "" {
		toks = strings.Split(loc[1:], "/")
	}
	return &jsonschema.ValidationError{InstanceLocation: toks, ErrorKind: k, Causes: causes}
}

// root is what Schema.Validate returns around its causes.
func root(causes ...*jsonschema.ValidationError) *jsonschema.ValidationError {
	return node("", &kind.Schema{Location: "tandem:///s.json#"}, causes...)
}

func ref(loc string, causes ...*jsonschema.ValidationError) *jsonschema.ValidationError {
	return node(loc, &kind.Reference{Keyword: "$ref", URL: "tandem:///s.json#/$defs/n"}, causes...)
}

func typeErr(loc string) *jsonschema.ValidationError {
	return node(loc, &kind.Type{Got: "number", Want: []string{"string"}})
}

// TestFields: the field errors of hand-built validation errors, as the
// library's validator builds them.
func TestFields(t *testing.T) {
	extra := func(loc string, names ...string) *jsonschema.ValidationError {
		return node(loc, &kind.AdditionalProperties{Properties: names})
	}
	missing := func(loc string, names ...string) *jsonschema.ValidationError {
		return node(loc, &kind.Required{Missing: names})
	}
	tests := []struct {
		name string
		err  *jsonschema.ValidationError
		m    Members
		want []Field
	}{
		{"nil", nil, AtMember, nil},
		{"additional property", root(extra("", "b")), AtMember,
			[]Field{{"/b", "additional properties 'b' not allowed"}}},
		{"two additional properties", root(extra("/o", "c", "b")), AtMember,
			[]Field{{"/o/b", "additional properties 'c', 'b' not allowed"}, {"/o/c", "additional properties 'c', 'b' not allowed"}}},
		{"two additional properties at the object", root(extra("/o", "c", "b")), AtObject,
			[]Field{{"/o", "additional properties 'c', 'b' not allowed"}}},
		{"missing property", root(missing("", "a")), AtMember,
			[]Field{{"/a", "missing property 'a'"}}},
		{"two missing properties", root(missing("/o", "x", "y")), AtMember,
			[]Field{{"/o/x", "missing properties 'x', 'y'"}, {"/o/y", "missing properties 'x', 'y'"}}},
		{"two missing properties at the object", root(missing("/o", "x", "y")), AtObject,
			[]Field{{"/o", "missing properties 'x', 'y'"}}},
		{"nested pointer, escaped", root(typeErr("/a/0/b~c"), extra("/a/1", "x/y")), AtMember,
			[]Field{{"/a/0/b~0c", "got number, want string"}, {"/a/1/x~1y", "additional properties 'x/y' not allowed"}}},
		{"type error", root(typeErr("")), AtMember,
			[]Field{{"", "got number, want string"}}},
		{"root without causes", root(), AtMember,
			[]Field{{"", "jsonschema validation failed with 'tandem:///s.json#'"}}},
		{"de-duplicated", root(node("", &kind.AllOf{}, missing("", "z"), missing("", "z"), typeErr("/a"), typeErr("/a"))), AtMember,
			[]Field{{"", "'allOf' failed"}, {"/a", "got number, want string"}, {"/z", "missing property 'z'"}}},
		{"de-duplicated across failures", root(extra("", "a", "b"), extra("", "b")), AtMember,
			[]Field{{"/a", "additional properties 'a', 'b' not allowed"}, {"/b", "additional properties 'a', 'b' not allowed"}, {"/b", "additional properties 'b' not allowed"}}},
		{"sorted, stable", root(typeErr("/b"), node("/a", &kind.MinLength{Got: 1, Want: 2}), typeErr("/a")), AtMember,
			[]Field{{"/a", "minLength: got 1, want 2"}, {"/a", "got number, want string"}, {"/b", "got number, want string"}}},
		{"numbers as the library prints them", root(node("/n", &kind.Minimum{Got: big.NewRat(5, 1), Want: big.NewRat(1000, 1)})), AtMember,
			[]Field{{"/n", "minimum: got 5, want 1,000"}}},
		{"group keywords are failures too", root(node("", &kind.AnyOf{}, missing("", "a"), typeErr("/b"))), AtMember,
			[]Field{{"", "'anyOf' failed"}, {"/a", "missing property 'a'"}, {"/b", "got number, want string"}}},
		{"$ref with one failure", root(ref("/o", extra("/o", "x"))), AtMember,
			[]Field{{"/o", "validation failed"}}},
		{"$ref with one failure below it", root(ref("/o", ref("/o/p", typeErr("/o/p/q")))), AtMember,
			[]Field{{"/o/p/q", "validation failed"}}},
		{"$ref with two failures", root(ref("/o", typeErr("/o/q"), missing("/o", "r"))), AtMember,
			[]Field{{"/o", "validation failed"}, {"/o/q", "got number, want string"}, {"/o/r", "missing property 'r'"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Fields(tt.err, tt.m); !slices.Equal(got, tt.want) {
				t.Errorf("Fields =\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}

// compile compiles a draft 2020-12 schema document.
func compile(t *testing.T, doc string) *jsonschema.Schema {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("tandem:///s.json", v); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile("tandem:///s.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// validate validates the JSON document inst against s and returns the
// validation error.
func validate(t *testing.T, s *jsonschema.Schema, inst string) *jsonschema.ValidationError {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(inst))
	if err != nil {
		t.Fatal(err)
	}
	ve, _ := s.Validate(v).(*jsonschema.ValidationError)
	if ve == nil {
		t.Fatalf("%s: valid", inst)
	}
	return ve
}

// TestFieldsFromValidator: the field errors of what the validator returns.
func TestFieldsFromValidator(t *testing.T) {
	tests := []struct {
		name, schema, inst string
		m                  Members
		want               []Field
	}{
		{"additional property", `{"properties":{"a":true},"additionalProperties":false}`, `{"a":1,"b":2}`, AtMember,
			[]Field{{"/b", "additional properties 'b' not allowed"}}},
		{"two missing properties", `{"properties":{"o":{"required":["x","y"]}}}`, `{"o":{}}`, AtMember,
			[]Field{{"/o/x", "missing properties 'x', 'y'"}, {"/o/y", "missing properties 'x', 'y'"}}},
		{"two missing properties at the object", `{"properties":{"o":{"required":["x","y"]}}}`, `{"o":{}}`, AtObject,
			[]Field{{"/o", "missing properties 'x', 'y'"}}},
		{"nested type errors", `{"properties":{"a":{"items":{"properties":{"b/c":{"type":"string"}}}}}}`, `{"a":[{"b/c":"ok"},{"b/c":1}]}`, AtMember,
			[]Field{{"/a/1/b~1c", "got number, want string"}}},
		{"type error", `{"type":"string"}`, `1`, AtMember,
			[]Field{{"", "got number, want string"}}},
		{"de-duplicated", `{"allOf":[{"required":["z"]},{"required":["z"]}]}`, `{}`, AtMember,
			[]Field{{"", "'allOf' failed"}, {"/z", "missing property 'z'"}}},
		{"$ref", `{"$defs":{"n":{"properties":{"q":{"type":"integer"}}}},"properties":{"o":{"$ref":"#/$defs/n"}}}`, `{"o":{"q":"s"}}`, AtMember,
			[]Field{{"/o/q", "validation failed"}}},
		{"minimum", `{"properties":{"n":{"minimum":1000}}}`, `{"n":5}`, AtMember,
			[]Field{{"/n", "minimum: got 5, want 1,000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ve := validate(t, compile(t, tt.schema), tt.inst)
			if got := Fields(ve, tt.m); !slices.Equal(got, tt.want) {
				t.Errorf("Fields =\n  %q\nwant\n  %q", got, tt.want)
			}
		})
	}
}

// TestBasicUnits: the walk of the causes finds the units of the library's
// Basic output, in its order, with the same kinds at the same places.
func TestBasicUnits(t *testing.T) {
	tests := [][2]string{
		{`{"type":"object","properties":{"a":{"type":"string"}},"additionalProperties":false,"required":["x","y"]}`, `{"a":1,"b":2,"c":3}`},
		{`{"$defs":{"n":{"required":["q"]}},"properties":{"o":{"$ref":"#/$defs/n"}}}`, `{"o":{}}`},
		{`{"$defs":{"n":{"additionalProperties":false,"required":["q"]}},"properties":{"o":{"$ref":"#/$defs/n"}}}`, `{"o":{"x":1}}`},
		{`{"$defs":{"m":{"$ref":"#/$defs/n"},"n":{"additionalProperties":false}},"properties":{"o":{"$ref":"#/$defs/m"}}}`, `{"o":{"x":1,"y":2}}`},
		{`{"$defs":{"m":{"$ref":"#/$defs/n"},"n":{"properties":{"a":{"type":"string"},"b":{"type":"string"}}}},"$ref":"#/$defs/m"}`, `{"a":1,"b":2}`},
		{`{"allOf":[{"required":["a"]},{"properties":{"b":{"type":"string"}}}]}`, `{"b":1}`},
		{`{"anyOf":[{"required":["a"]},{"$ref":"#/$defs/s"}],"$defs":{"s":{"properties":{"b":{"type":"string"}}}}}`, `{"b":1}`},
		{`{"oneOf":[{"type":"string"},{"type":"integer"}]}`, `true`},
		{`{"not":{"type":"string"}}`, `"x"`},
		{`{"items":{"type":"string","minLength":2}}`, `[1,"a",2]`},
		{`{"if":{"required":["a"]},"then":{"required":["b"]},"else":{"required":["c"]}}`, `{"a":1}`},
		{`{"dependentRequired":{"a":["b","c"]},"propertyNames":{"maxLength":2}}`, `{"a":1,"abc":2}`},
		{`{"allOf":[{"$ref":"#/$defs/a"},{"$ref":"#/$defs/a"}],"$defs":{"a":{"required":["z"]}}}`, `{}`},
		{`{"unevaluatedProperties":false,"properties":{"a":true}}`, `{"a":1,"b":2}`},
		{`{"uniqueItems":true,"contains":{"type":"string"}}`, `[1,1]`},
		{`{"$ref":"#/$defs/t","$defs":{"t":{"properties":{"c":{"items":{"$ref":"#/$defs/t"}},"n":{"type":"string"}},"additionalProperties":false}}}`, `{"c":[{"c":[{"n":1,"x":0}]}]}`},
		{`false`, `1`},
	}
	for _, tt := range tests {
		t.Run(tt[0], func(t *testing.T) {
			ve := validate(t, compile(t, tt[0]), tt[1])
			type place struct {
				pointer string
				kind    jsonschema.ErrorKind
			}
			var want, got []place
			var walk func(u *jsonschema.OutputUnit)
			walk = func(u *jsonschema.OutputUnit) {
				if u.Error != nil && len(u.Errors) == 0 {
					want = append(want, place{u.InstanceLocation, u.Error.Kind})
				}
				for i := range u.Errors {
					walk(&u.Errors[i])
				}
			}
			walk(ve.BasicOutput())
			for _, u := range basicUnits(ve) {
				got = append(got, place{pointer(u.location), u.kind})
			}
			// The kinds are pointers: the same kind is the same failure.
			if !slices.Equal(got, want) {
				t.Errorf("units =\n  %+v\nwant\n  %+v", got, want)
			}
		})
	}
}
