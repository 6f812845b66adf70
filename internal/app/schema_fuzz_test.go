package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// FuzzCollectionSchema: any JSON offered as a collection schema is either
// refused with a 422 naming a field under /schema, or accepted, within
// seconds either way; an accepted schema never sends validation into a
// reference cycle, whatever the instance (the promise behind refusing
// cycles at creation), and its metered validation of any instance ends in
// a match, a 422, or a budget refusal — never a panic or another error.
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
		`{"$ref":"#/$defs/l0","$defs":{"l0":{"allOf":[{"$ref":"#/$defs/l1"},{"$ref":"#/$defs/l1"},{"$ref":"#/$defs/l1"}]},"l1":{"anyOf":[{"$ref":"#/$defs/l2"},{"$ref":"#/$defs/l2"},{"$ref":"#/$defs/l2"}]},"l2":{"type":"object"}}}`,
		strings.Repeat(`{"not":`, 70) + `{}` + strings.Repeat(`}`, 70),
		`{"allOf":[{"$ref":"#/$defs/x"},{"$ref":"#/$defs/x"}],"$defs":{"x":{"properties":{"a":{"$ref":"#"}}}}}`,
		`{"type":"object","patternProperties":{"^a":{"$ref":"#"},"a$":{"$ref":"#"}}}`,
		`{"properties":{"s":{"pattern":"^\p{L}{1000}$"},"t":{"pattern":"(a{1000}){20}"}}}`,
		`{"$ref":"#/x","x":{"properties":{"a":{"$dynamicRef":"#n"}}},"$dynamicAnchor":"n"}`,
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
		cs, err := newCollectionSchema(doc, ValidationBudget{Steps: 50000, Timeout: 2 * time.Second})
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
			ms, err := cs.get(context.Background())
			if err != nil {
				t.Fatalf("accepted schema %s does not compile again: %v", doc, err)
			}
			res, _ := ms.validate(context.Background(), cs.budget, v, depthOf(v))
			cs.put(ms)
			if c := refCycle(res); c != nil {
				t.Fatalf("accepted schema %s loops on %s: %v", doc, in, c)
			}
			err = validateData(context.Background(), cs, json.RawMessage(in), "/data")
			var ve *ValidationError
			if err != nil && (!errors.As(err, &ve) || len(ve.Fields) == 0 || !strings.HasPrefix(ve.Fields[0].Pointer, "/data")) {
				t.Fatalf("accepted schema %s on %s: %#v, want nil or a 422 under /data", doc, in, err)
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
