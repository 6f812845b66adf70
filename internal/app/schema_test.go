package app

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

// TestCheckRefCycles: schemas that would send every validation round in
// circles are refused at creation, naming the subschema; recursive schemas
// that descend into members or items are accepted and still validate.
func TestCheckRefCycles(t *testing.T) {
	tests := []struct {
		name, schema string
		pointer      string // "" when the schema is fine
	}{
		{"self ref", `{"$ref":"#"}`, "/schema"},
		{"two defs", `{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"}`, "/schema/$defs/a"},
		{"through allOf", `{"allOf":[{"$ref":"#"}]}`, "/schema"},
		{"through not", `{"not":{"$ref":"#"}}`, "/schema"},
		{"through if", `{"if":{"$ref":"#"}}`, "/schema"},
		{"under a property", `{"properties":{"x":{"anyOf":[{"type":"string"},{"$ref":"#/properties/x"}]}}}`, "/schema/properties/x"},
		{"dependentSchemas", `{"dependentSchemas":{"a":{"$ref":"#"}}}`, "/schema"},
		{"recursive tree", `{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#"}}}}`, ""},
		{"recursive property", `{"properties":{"next":{"$ref":"#"}}}`, ""},
		{"shared def", `{"$defs":{"n":{"type":"integer"}},"properties":{"a":{"$ref":"#/$defs/n"},"b":{"allOf":[{"$ref":"#/$defs/n"}]}}}`, ""},
		{"unused cyclic-looking defs", `{"$defs":{"a":{"properties":{"b":{"$ref":"#/$defs/a"}}}},"$ref":"#/$defs/a"}`, ""},
		{"boolean", `true`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := compileSchema(json.RawMessage(tt.schema))
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			err = checkRefCycles(s)
			if tt.pointer == "" {
				if err != nil {
					t.Fatalf("checkRefCycles: %v, want nil", err)
				}
				cs, err := newCollectionSchema([]byte(tt.schema), ValidationBudget{})
				if err != nil {
					t.Fatalf("newCollectionSchema: %v", err)
				}
				if err := validateData(t.Context(), cs, json.RawMessage(`{"children":[{"children":[]}],"next":{},"a":1,"b":2}`), "/data"); err != nil {
					t.Fatalf("a valid instance: %v", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Code != store.CodeUnprocessable || len(ve.Fields) != 1 || ve.Fields[0].Pointer != tt.pointer {
				t.Fatalf("checkRefCycles = %#v, want one unprocessable field at %s", err, tt.pointer)
			}
		})
	}
}
