package app

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// FuzzCollectionSchema: any JSON offered as a collection schema is either
// refused with a 422 naming a field under /schema, or accepted; and an
// accepted schema never sends validation into a reference cycle, whatever
// the instance (the promise behind refusing cycles at creation).
func FuzzCollectionSchema(f *testing.F) {
	for _, s := range []string{
		`{"$ref":"#"}`,
		`{"type":"object","properties":{"children":{"type":"array","items":{"$ref":"#"}}}}`,
		`{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"anyOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}`,
		`{"$dynamicAnchor":"n","properties":{"x":{"$dynamicRef":"#n"}}}`,
		`{"$dynamicAnchor":"n","allOf":[{"$dynamicRef":"#n"}]}`,
		`{"if":{"required":["a"]},"then":{"$ref":"#/$defs/t"},"$defs":{"t":{"properties":{"a":{"type":"string"}}}}}`,
		`{"dependentSchemas":{"a":{"not":{"$ref":"#"}}}}`,
		`{"additionalProperties":{"$ref":"#"},"propertyNames":{"maxLength":3}}`,
		`true`,
		`{"type":"nonsense"}`,
	} {
		f.Add([]byte(s))
	}
	instances := []string{`{}`, `{"a":"x","b":[1,{"c":null}],"children":[{}],"x":{"x":{}}}`, `[]`, `[[1]]`, `1`, `"s"`, `null`, `true`}
	f.Fuzz(func(t *testing.T, doc []byte) {
		if len(doc) > 4096 {
			return
		}
		// A schema that makes compiling or checking hang is a denial of
		// service: turn it into a crash that records the input.
		finished := make(chan struct{})
		defer close(finished)
		go func() {
			select {
			case <-finished:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("schema %q: no answer after 10s", doc))
			}
		}()
		s, err := compileSchema(doc)
		if err == nil {
			err = checkRefCycles(s)
		}
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || len(ve.Fields) == 0 || !strings.HasPrefix(ve.Fields[0].Pointer, "/schema") {
				t.Fatalf("refused without a field under /schema: %#v", err)
			}
			return
		}
		for _, in := range instances {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader([]byte(in)))
			if err != nil {
				t.Fatal(err)
			}
			if c := refCycle(s.Validate(v)); c != nil {
				t.Fatalf("accepted schema %s loops on %s: %v", doc, in, c)
			}
		}
	})
}

// refCycle finds a reference-cycle error in a validation result.
func refCycle(err error) *kind.RefCycle {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return nil
	}
	if c, ok := ve.ErrorKind.(*kind.RefCycle); ok {
		return c
	}
	for _, cause := range ve.Causes {
		if c := refCycle(cause); c != nil {
			return c
		}
	}
	return nil
}
