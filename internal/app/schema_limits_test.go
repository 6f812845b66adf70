package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tandemhq/tandem/internal/store"
)

// allOfBomb is $defs l0…l(levels-1), each {"allOf":[{"$ref":"#/$defs/l(i+1)"} × width]},
// and a last {"type":"object"}, with root {"$ref":"#/$defs/l0"}: 3 KB that
// apply width^levels subschemas to every value (10^12 for 12 × 10).
func allOfBomb(levels, width int) string {
	var b strings.Builder
	b.WriteString(`{"$ref":"#/$defs/l0","$defs":{`)
	for i := 0; i < levels; i++ {
		fmt.Fprintf(&b, `"l%d":{"allOf":[`, i)
		for j := 0; j < width; j++ {
			if j > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"$ref":"#/$defs/l%d"}`, i+1)
		}
		b.WriteString("]},")
	}
	fmt.Fprintf(&b, `"l%d":{"type":"object"}}}`, levels)
	return b.String()
}

// nestedSchema nests open…close n times around {}.
func nestedSchema(n int, open, close string) string {
	return strings.Repeat(open, n) + "{}" + strings.Repeat(close, n)
}

// Schemas that pass every creation check yet are exponential in the
// data: the growth check assumes a member name matches one pattern, but
// "a" matches both ^a and a$, so every level of {"a":{"a":…}} applies
// the schema twice to the next.
const (
	twoPatterns      = `{"type":"object","patternProperties":{"^a":{"$ref":"#"},"a$":{"$ref":"#"}}}`
	twoPatternsInNot = `{"not":{"$ref":"#/$defs/p"},"$defs":{"p":{"type":"object","patternProperties":{"^a":{"$ref":"#/$defs/p"},"a$":{"$ref":"#/$defs/p"}}}}}`
	// In the boolean pass allOf stops at its first failing branch, so only
	// finding where the data fails is exponential.
	twoBranches = `{"type":"object","allOf":[{"patternProperties":{"^a":{"$ref":"#"}}},{"patternProperties":{"a$":{"$ref":"#"}}}]}`
)

// nestedA is {"a":{"a":…leaf…}} depth levels deep.
func nestedA(depth int, leaf string) string {
	return strings.Repeat(`{"a":`, depth) + leaf + strings.Repeat("}", depth)
}

func wideSchema(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"p%04d":{"type":"string"}`, i)
	}
	b.WriteString("}}")
	return b.String()
}

// costBombs are schemas whose validation (or compilation) cost can blow
// up, with the pointer their refusal must name.
func costBombs() []struct{ name, schema, pointer string } {
	deepProps := func(n int) string { return "/schema" + strings.Repeat("/properties/a", n) }
	manyPatterns := func(n int) string {
		var b strings.Builder
		b.WriteString(`{"properties":{`)
		for i := 0; i < n; i++ {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `"p%02d":{"pattern":"^x%d\\p{L}{1000}$"}`, i, i)
		}
		b.WriteString("}}")
		return b.String()
	}
	deepWide := strings.Repeat(`{"properties":{"a":`, 15) + wideSchema(1490) + strings.Repeat("}}", 15)
	return []struct{ name, schema, pointer string }{
		{"allOf bomb 10^12", allOfBomb(12, 10), "/schema/$defs/l9"},
		{"allOf bomb 3^40", allOfBomb(40, 2), "/schema/$defs/l32"},
		{"anyOf bomb", strings.ReplaceAll(allOfBomb(12, 10), "allOf", "anyOf"), "/schema/$defs/l9"},
		{"oneOf in not", strings.Replace(strings.ReplaceAll(allOfBomb(12, 10), "allOf", "oneOf"), `{"$ref":"#/$defs/l0"`, `{"not":{"$ref":"#/$defs/l0"}`, 1), "/schema/$defs/l9"},
		{"properties 1000 deep", nestedSchema(1000, `{"properties":{"a":`, `}}`), deepProps(32)},
		{"properties 2000 deep", nestedSchema(2000, `{"properties":{"a":`, `}}`), deepProps(32)},
		{"not 1000 deep", nestedSchema(1000, `{"not":`, `}`), "/schema" + strings.Repeat("/not", 64)},
		{"not 2000 deep", nestedSchema(2000, `{"not":`, `}`), "/schema" + strings.Repeat("/not", 64)},
		{"allOf 1000 deep", nestedSchema(1000, `{"allOf":[`, `]}`), "/schema" + strings.Repeat("/allOf/0", 32)},
		{"allOf 2000 deep", nestedSchema(2000, `{"allOf":[`, `]}`), "/schema" + strings.Repeat("/allOf/0", 32)},
		{"items 2000 deep", nestedSchema(2000, `{"items":`, `}`), "/schema" + strings.Repeat("/items", 64)},
		{"deep in an enum", `{"enum":[` + nestedSchema(100, `[`, `]`) + `]}`, "/schema/enum" + strings.Repeat("/0", 63)},
		{"too many subschemas", wideSchema(2500), "/schema/properties/p1499"},
		{"too many booleans", `{"allOf":[` + strings.TrimSuffix(strings.Repeat("true,", 5000), ",") + `]}`, "/schema/allOf/1499"},
		// 15 levels sum to 225, the wide one adds 31, each of its properties 33.
		{"wide and deep", deepWide, "/schema" + strings.Repeat("/properties/a", 15) + "/properties/p0719"},
		{"too large", `{"description":"` + strings.Repeat("x", MaxSchemaBytes) + `"}`, "/schema"},
		{"many large patterns", manyPatterns(30), "/schema/properties/p09/pattern"},
		{"one huge pattern", `{"pattern":"^(` + strings.Repeat(`ab|`, 8000) + `c)$"}`, "/schema/pattern"},
		{"off-grid ref to many subschemas", `{"$ref":"#/x-lib","x-lib":{"allOf":[` + strings.TrimSuffix(strings.Repeat("{},", 3000), ",") + `]}}`, "/schema/x-lib/allOf/1498"},
		{"doubling recursion", `{"allOf":[{"$ref":"#/$defs/x"},{"$ref":"#/$defs/x"}],"$defs":{"x":{"properties":{"a":{"$ref":"#"}}}}}`, "/schema/$defs/x/properties/a"},
		{"doubling through items", `{"type":"array","items":{"anyOf":[{"$ref":"#"},{"type":"array","items":{"$ref":"#/items"}}]}}`, "/schema/items"},
		{"redeclared recursive property", `{"allOf":[{"$ref":"#/$defs/base"}],"properties":{"children":{"items":{"$ref":"#"}}},"$defs":{"base":{"properties":{"children":{"items":{"$ref":"#"}}}}}}`, "/schema/properties/children"},
	}
}

// TestSchemaCostBombsRefused: schemas whose validation cost can blow up —
// in-place reference expansion, nesting 1,000 and 2,000 deep, too many or
// too deep subschemas, patterns too large, recursion that doubles with
// each level of the data — are refused at creation with a 422 naming the
// subschema under /schema (formerly (a) was accepted and every write to
// it never answered; (b) took seconds of CPU to create).
func TestSchemaCostBombsRefused(t *testing.T) {
	for _, tt := range costBombs() {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newCollectionSchema([]byte(tt.schema), ValidationBudget{})
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Code != store.CodeUnprocessable || len(ve.Fields) != 1 {
				t.Fatalf("newCollectionSchema = %v, want a 422 with one field", err)
			}
			if ve.Fields[0].Pointer != tt.pointer {
				t.Fatalf("refused at %s, want %s: %s", ve.Fields[0].Pointer, tt.pointer, ve.Message)
			}
			if !errors.Is(err, &store.Error{Code: store.CodeUnprocessable}) {
				t.Fatalf("errors.Is(unprocessable) is false for %v", err)
			}
		})
	}
}

// fakeStore is the part of a store that collection creation and writes
// use; it holds collections and records resource writes.
type fakeStore struct {
	store.Store // nil: any other call panics

	mu          sync.Mutex
	collections map[string]store.Collection
	puts        int
}

func newFakeStore() *fakeStore { return &fakeStore{collections: map[string]store.Collection{}} }

func (f *fakeStore) CreateCollection(_ context.Context, c store.Collection) (store.Collection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.collections[c.Name]; ok {
		return store.Collection{}, store.ErrConflict
	}
	c.Revision = int64(len(f.collections) + 1)
	f.collections[c.Name] = c
	return c, nil
}

func (f *fakeStore) GetCollection(_ context.Context, name string) (store.Collection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.collections[name]
	if !ok {
		return store.Collection{}, store.Errorf(store.CodeNotFound, "no collection %q", name)
	}
	return c, nil
}

func (f *fakeStore) PutResource(_ context.Context, r store.Resource, _ store.Precondition) (store.Resource, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.puts++
	return r, true, nil
}

// TestCreateCollectionRefusesCostBombs: through App, a refused schema
// creates nothing; a stored schema that predates the limits is checked
// when first used, so a write to it is refused instead of hanging.
func TestCreateCollectionRefusesCostBombs(t *testing.T) {
	fs := newFakeStore()
	a := New(fs, Options{})
	for _, tt := range costBombs() {
		_, err := a.CreateCollection(t.Context(), everyone, "bomb", json.RawMessage(tt.schema))
		if store.ErrorCode(err) != store.CodeUnprocessable {
			t.Fatalf("%s: CreateCollection = %v, want unprocessable", tt.name, err)
		}
	}
	if len(fs.collections) != 0 {
		t.Fatalf("refused schemas created %d collections", len(fs.collections))
	}
	fs.collections["old"] = store.Collection{Name: "old", Revision: 7, Schema: json.RawMessage(allOfBomb(12, 10))}
	_, err := a.CreateResource(t.Context(), everyone, "old", "x", json.RawMessage(`{}`), nil)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Code != store.CodeUnprocessable || ve.Fields[0].Pointer != "/schema/$defs/l9" {
		t.Fatalf("write to a stored bomb = %v, want 422 naming /schema/$defs/l9", err)
	}
	if fs.puts != 0 {
		t.Fatalf("%d writes reached the store", fs.puts)
	}
}

// realisticSchemas must keep being accepted and validate as before.
func realisticSchemas() []struct{ name, schema, valid, invalid, pointer string } {
	// A large catalogue schema: 300 typed properties, 40 $defs used
	// through $ref, enums, patterns, formats, a oneOf on a discriminator,
	// nested objects and arrays of references.
	var b strings.Builder
	b.WriteString(`{"$schema":"https://json-schema.org/draft/2020-12/schema","title":"Product","type":"object","required":["sku","price"],"$defs":{`)
	b.WriteString(`"money":{"type":"object","required":["amount","currency"],"properties":{"amount":{"type":"number","minimum":0},"currency":{"type":"string","pattern":"^[A-Z]{3}$"}},"additionalProperties":false},`)
	b.WriteString(`"address":{"type":"object","properties":{"street":{"type":"string","maxLength":200},"city":{"type":"string"},"zip":{"type":"string","pattern":"^[0-9]{4,10}$"},"country":{"enum":["DE","FR","US","GB","JP"]}},"required":["city"]},`)
	b.WriteString(`"physical":{"type":"object","properties":{"kind":{"const":"physical"},"weight":{"$ref":"#/$defs/d0"},"ships_from":{"$ref":"#/$defs/address"}},"required":["kind"]},`)
	b.WriteString(`"digital":{"type":"object","properties":{"kind":{"const":"digital"},"url":{"type":"string","format":"uri"}},"required":["kind","url"]},`)
	for i := 0; i < 36; i++ {
		fmt.Fprintf(&b, `"d%d":{"type":"object","properties":{"value":{"type":"number"},"unit":{"enum":["g","kg","m","cm"]},"note":{"type":["string","null"],"maxLength":500},"at":{"$ref":"#/$defs/money"}}},`, i)
	}
	b.WriteString(`"tag":{"type":"string","minLength":1,"maxLength":40,"pattern":"^[a-z0-9-]+$"}},"properties":{`)
	b.WriteString(`"sku":{"type":"string","pattern":"^[A-Z0-9]{8}$"},"price":{"$ref":"#/$defs/money"},"tags":{"type":"array","items":{"$ref":"#/$defs/tag"},"uniqueItems":true,"maxItems":50},`)
	b.WriteString(`"variant":{"oneOf":[{"$ref":"#/$defs/physical"},{"$ref":"#/$defs/digital"}]},"warehouses":{"type":"array","items":{"$ref":"#/$defs/address"}},`)
	for i := 0; i < 300; i++ {
		switch i % 5 {
		case 0:
			fmt.Fprintf(&b, `"attr%d":{"type":"string","maxLength":100,"description":"attribute %d"},`, i, i)
		case 1:
			fmt.Fprintf(&b, `"attr%d":{"type":"integer","minimum":0,"maximum":100000},`, i)
		case 2:
			fmt.Fprintf(&b, `"attr%d":{"$ref":"#/$defs/d%d"},`, i, i%36)
		case 3:
			fmt.Fprintf(&b, `"attr%d":{"type":"array","items":{"type":"object","properties":{"k":{"type":"string"},"v":{"type":["string","number","boolean"]}},"required":["k"]}},`, i)
		case 4:
			fmt.Fprintf(&b, `"attr%d":{"anyOf":[{"type":"null"},{"$ref":"#/$defs/money"}]},`, i)
		}
	}
	b.WriteString(`"meta":{"type":"object","additionalProperties":{"type":"string"},"propertyNames":{"maxLength":64}}}}`)
	large := b.String()

	tree := `{"type":"object","required":["name"],"properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#"}}}}`
	deepTree := func(n int, leaf string) string {
		return strings.Repeat(`{"name":"n","children":[`, n) + leaf + strings.Repeat(`]}`, n)
	}
	thread := `{"type":"object","properties":{"thread":{"$ref":"#/$defs/comment"}},"$defs":{"comment":{"type":"object","required":["id","body"],"properties":{"id":{"type":"string"},"author":{"type":"string"},"body":{"type":"string","maxLength":10000},"votes":{"type":"integer"},"replies":{"type":"array","items":{"$ref":"#/$defs/comment"}}},"additionalProperties":false}}}`
	deepThread := func(n int, leaf string) string {
		return `{"thread":` + strings.Repeat(`{"id":"c","body":"hi","replies":[`, n) + leaf + strings.Repeat(`]}`, n) + `}`
	}
	jsonValue := `{"$defs":{"v":{"anyOf":[{"type":["null","boolean","number","string"]},{"type":"array","items":{"$ref":"#/$defs/v"}},{"type":"object","additionalProperties":{"$ref":"#/$defs/v"}}]}},"type":"object","properties":{"payload":{"$ref":"#/$defs/v"},"n":{"type":"integer"}}}`
	composed := `{"$ref":"#/$defs/node","$defs":{"base":{"type":"object","properties":{"id":{"type":"string"},"parent":{"$ref":"#/$defs/node"}},"required":["id"]},"node":{"allOf":[{"$ref":"#/$defs/base"},{"properties":{"children":{"type":"array","items":{"$ref":"#/$defs/node"}}}}]}}}`
	// The "generic list" pattern of the 2020-12 specification.
	dynamic := `{"$id":"https://example.com/strings","$dynamicAnchor":"item","$defs":{"list":{"$id":"list","type":"array","items":{"$dynamicRef":"#item"},"$defs":{"default":{"$dynamicAnchor":"item"}}}},"type":"object","properties":{"names":{"$ref":"list"}},"$comment":"items resolve to the outermost #item: this root, an object"}`
	draft7 := `{"$schema":"http://json-schema.org/draft-07/schema#","definitions":{"rule":{"type":"object","properties":{"re":{"type":"string","format":"regex"},"email":{"type":"string","format":"email"}}}},"type":"object","properties":{"rules":{"type":"array","items":{"$ref":"#/definitions/rule"}}}}`
	metaschema := `{"type":"object","properties":{"schema":{"$ref":"https://json-schema.org/draft/2020-12/schema"}}}`

	var catalogue strings.Builder
	catalogue.WriteString(`{"sku":"AB12CD34","price":{"amount":12.5,"currency":"EUR"},"tags":["red","large"],"variant":{"kind":"physical","weight":{"value":2,"unit":"kg"}},"warehouses":[{"city":"Berlin","zip":"10115","country":"DE"}]`)
	for i := 0; i < 300; i += 5 {
		fmt.Fprintf(&catalogue, `,"attr%d":"v","attr%d":%d,"attr%d":{"value":1,"unit":"g"},"attr%d":[{"k":"a","v":1}],"attr%d":null`, i, i+1, i, i+2, i+3, i+4)
	}
	catalogue.WriteString(`,"meta":{"origin":"x"}}`)
	validCatalogue := catalogue.String()

	return []struct{ name, schema, valid, invalid, pointer string }{
		{"large catalogue", large, validCatalogue, strings.Replace(validCatalogue, `"currency":"EUR"`, `"currency":"euro"`, 1), "/data/price/currency"},
		{"tree 300 deep", tree, deepTree(300, `{"name":"leaf"}`), deepTree(300, `{"name":7}`), "/data" + strings.Repeat("/children/0", 300) + "/name"},
		{"comment thread 200 deep", thread, deepThread(200, `{"id":"c","body":"leaf"}`), deepThread(200, `{"id":"c","body":"leaf","spam":true}`), "/data/thread" + strings.Repeat("/replies/0", 200)},
		{"any JSON value", jsonValue, `{"payload":{"a":[1,"x",{"b":null}],"c":{"d":[[true]]}},"n":3}`, `{"payload":{"a":[1]},"n":1.5}`, "/data/n"},
		// The library's flat output reports a failing allOf under a $ref at
		// the value the $ref applies to.
		{"allOf composition with recursion", composed, `{"id":"r","children":[{"id":"a","parent":{"id":"r"},"children":[{"id":"b"}]}]}`, `{"id":"r","children":[{"id":"a","children":[{"parent":{"id":"r"}}]}]}`, "/data"},
		{"dynamic anchors", dynamic, `{"names":[{},{"x":1}]}`, `{"names":[{},"not an object"]}`, "/data/names/1"},
		{"draft-07 formats", draft7, `{"rules":[{"re":"^a+$","email":"a@b.de"}]}`, `{"rules":[{"re":"(unclosed"}]}`, "/data/rules/0/re"},
		{"refers to the metaschema", metaschema, `{"schema":{"type":"object","properties":{"a":{"anyOf":[{"type":"string"},{"$ref":"#"}]}}}}`, `{"schema":{"type":"object","properties":{"a":{"minimum":"ten"}}}}`, "/data/schema"},
	}
}

// TestRealisticSchemasAccepted: large and recursive schemas of the kinds
// people write are accepted and validate as the library always did —
// valid data passes, invalid data is refused naming the value.
func TestRealisticSchemasAccepted(t *testing.T) {
	for _, tt := range realisticSchemas() {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := newCollectionSchema([]byte(tt.schema), ValidationBudget{})
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if err := validateData(t.Context(), cs, json.RawMessage(tt.valid), "/data"); err != nil {
				t.Fatalf("valid data refused: %v", err)
			}
			err = validateData(t.Context(), cs, json.RawMessage(tt.invalid), "/data")
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Code != store.CodeUnprocessable {
				t.Fatalf("invalid data: %v, want a 422", err)
			}
			for _, f := range ve.Fields {
				if f.Pointer == tt.pointer {
					return
				}
			}
			t.Fatalf("invalid data refused at %v, want a field at %s", ve.Fields, tt.pointer)
		})
	}
}

// TestHiddenDynamicAnchorMetered: a subschema that only a $dynamicRef
// reaches (nothing refers to it statically) is part of the checked graph
// and of the metered copy, and validation resolves to it.
func TestHiddenDynamicAnchorMetered(t *testing.T) {
	doc := `{"$ref":"#/$defs/inner","$defs":{"hidden":{"$dynamicAnchor":"n","type":"string"},"inner":{"$id":"inner","$dynamicAnchor":"n","properties":{"a":{"$dynamicRef":"#n"}}}}}`
	patterns := &patternSet{}
	v, counts, err := parseSchema([]byte(doc), patterns)
	if err != nil {
		t.Fatal(err)
	}
	g, _, err := compileParsed(v, counts.anchors, patterns)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range g.all {
		found = found || strings.HasSuffix(s.Location, "#/$defs/hidden")
	}
	if !found {
		t.Fatalf("the hidden anchor is not in the graph (anchors %v)", counts.anchors)
	}
	cs, err := newCollectionSchema([]byte(doc), ValidationBudget{})
	if err != nil {
		t.Fatal(err)
	}
	if err := validateData(t.Context(), cs, json.RawMessage(`{"a":"x"}`), "/data"); err != nil {
		t.Fatalf("a string under a: %v", err)
	}
	if err := validateData(t.Context(), cs, json.RawMessage(`{"a":1}`), "/data"); store.ErrorCode(err) != store.CodeUnprocessable {
		t.Fatalf("a number under a: %v, want 422 (the dynamic reference resolves to the hidden anchor)", err)
	}
}

// TestValidationBudget: a schema that passes the creation checks but is
// exponential in the data's depth is stopped when its validation passes
// the budget, with a 422 naming /data — in normal and in boolean
// (inside not) mode, by steps and by time, and for a pattern too costly
// for the string it meets; data that is only invalid, where finding where
// would pass the budget, is refused without the details. Within the
// budget the same schemas validate normally.
func TestValidationBudget(t *testing.T) {
	bigPattern := `{"type":"object","properties":{"s":{"type":"string","pattern":"\\p{L}{1000}x"}}}`
	long := `{"s":"` + strings.Repeat("a", 1<<20) + `"}`
	steps := ValidationBudget{Steps: 20000, Timeout: time.Hour}
	tests := []struct {
		name, schema, shallow, data string
		budget                      ValidationBudget
		detail                      string
	}{
		{"steps", twoPatterns, nestedA(8, "{}"), nestedA(60, "{}"), steps, "budget of 20000 steps"},
		{"steps, failing leaf", twoPatterns, nestedA(8, "{}"), nestedA(60, "1"), steps, "budget of 20000 steps"},
		{"inside not", twoPatternsInNot, nestedA(8, "1"), nestedA(60, "1"), steps, "budget of 20000 steps"},
		{"default budget", twoPatterns, nestedA(8, "{}"), nestedA(100, "{}"), ValidationBudget{}, "exceeded its budget"},
		// Shallow data here is a bare object: under a loaded -race run even
		// small data can take 20 ms.
		{"time", twoPatterns, "{}", nestedA(100, "{}"), ValidationBudget{Steps: 1 << 60, Timeout: 20 * time.Millisecond}, "budget of 20ms"},
		{"details", twoBranches, nestedA(8, "{}"), nestedA(60, "1"), steps, "where was not worked out"},
		{"costly pattern", bigPattern, `{"s":"short"}`, long, ValidationBudget{}, "exceeded its budget"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := newCollectionSchema([]byte(tt.schema), tt.budget)
			if err != nil {
				t.Fatalf("refused at creation: %v", err)
			}
			shallow := validateData(t.Context(), cs, json.RawMessage(tt.shallow), "/data")
			if shallow != nil && strings.Contains(shallow.Error(), "budget") {
				t.Fatalf("shallow data: %v", shallow)
			}
			done := make(chan error, 1)
			go func() { done <- validateData(context.Background(), cs, json.RawMessage(tt.data), "/data") }()
			select {
			case err = <-done:
			case <-time.After(2 * time.Minute):
				t.Fatal("validation still running after 2 minutes")
			}
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Code != store.CodeUnprocessable || len(ve.Fields) != 1 || ve.Fields[0].Pointer != "/data" || !strings.Contains(ve.Fields[0].Detail, tt.detail) {
				t.Fatalf("validateData = %v, want a 422 at /data saying %q", err, tt.detail)
			}
			// The copy went back to the pool disarmed and still works.
			if err := validateData(t.Context(), cs, json.RawMessage(tt.shallow), "/data"); (err == nil) != (shallow == nil) {
				t.Fatalf("shallow data afterwards: %v, before: %v", err, shallow)
			}
		})
	}
}

// TestValidationCancelled: cancelling the request's context stops a
// validation that would run for hours, promptly, with the context's error.
func TestValidationCancelled(t *testing.T) {
	cs, err := newCollectionSchema([]byte(twoPatterns), ValidationBudget{Steps: 1 << 60, Timeout: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- validateData(ctx, cs, json.RawMessage(nestedA(200, "{}")), "/data") }()
	select {
	case err := <-done:
		t.Fatalf("2^200 applications finished before the cancel: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("validation still running 30 s after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) || store.ErrorCode(err) != "" {
		t.Fatalf("validateData = %v, want context.Canceled", err)
	}
	// Already cancelled: no validation at all.
	if err := validateData(ctx, cs, json.RawMessage(`{}`), "/data"); !errors.Is(err, context.Canceled) {
		t.Fatalf("with a cancelled context: %v", err)
	}
}

// TestValidationPassesOnForeignPanics: only the meter's own stop is
// recovered; any other panic inside validation goes on up.
func TestValidationPassesOnForeignPanics(t *testing.T) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	c.RegisterFormat(&jsonschema.Format{Name: "boom", Validate: func(any) error { panic("boom") }})
	if err := c.AddResource("tandem:///boom.json", map[string]any{"format": "boom"}); err != nil {
		t.Fatal(err)
	}
	root, err := c.Compile("tandem:///boom.json")
	if err != nil {
		t.Fatal(err)
	}
	ms := instrument(newSchemaGraph(root), root)
	defer func() {
		if r := recover(); r != "boom" {
			t.Fatalf("recovered %v, want the format's panic", r)
		}
		if ms.m.armed {
			t.Fatal("meter left armed")
		}
	}()
	ms.validate(t.Context(), ValidationBudget{}.withDefaults(), "x", 0)
	t.Fatal("the panic was swallowed")
}

// TestWriteValidationUsesRequestContext: App's writes validate with the
// request's context and the configured budget.
func TestWriteValidationUsesRequestContext(t *testing.T) {
	fs := newFakeStore()
	a := New(fs, Options{Validation: ValidationBudget{Steps: 5000}})
	if _, err := a.CreateCollection(t.Context(), everyone, "alt", json.RawMessage(twoPatterns)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateResource(t.Context(), everyone, "alt", "ok", json.RawMessage(nestedA(4, "{}")), nil); err != nil {
		t.Fatalf("valid write: %v", err)
	}
	_, err := a.CreateResource(t.Context(), everyone, "alt", "bomb", json.RawMessage(nestedA(60, "{}")), nil)
	if store.ErrorCode(err) != store.CodeUnprocessable || !strings.Contains(err.Error(), "budget of 5000 steps") {
		t.Fatalf("write over budget: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := a.ReplaceResource(ctx, everyone, "alt", "x", json.RawMessage(`{}`), nil, store.Precondition{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("write with a cancelled request: %v", err)
	}
	if fs.puts != 1 {
		t.Fatalf("%d writes reached the store, want 1", fs.puts)
	}
}

// TestConcurrentValidationsUseSeparateCopies: concurrent writes to one
// collection each get their own metered copy, so one write's budget is
// not spent by another.
func TestConcurrentValidationsUseSeparateCopies(t *testing.T) {
	cs, err := newCollectionSchema([]byte(twoPatterns), ValidationBudget{Steps: 3000, Timeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 8; i++ {
				// 2^8 applications fit the budget, whatever runs beside.
				if err := validateData(context.Background(), cs, json.RawMessage(nestedA(8, "{}")), "/data"); err != nil {
					errs <- err
				}
				if err := validateData(context.Background(), cs, json.RawMessage(nestedA(40, "{}")), "/data"); err == nil || !strings.Contains(err.Error(), "budget") {
					errs <- fmt.Errorf("deep data: %v, want the budget error", err)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestMeteredCopiesShareNothing: each compiled copy has subschemas of its
// own — including those of a metaschema it refers to — so instrumenting
// one never touches another's (or a package-level metaschema's) hooks; and
// its boolean check wraps its own root.
func TestMeteredCopiesShareNothing(t *testing.T) {
	doc := []byte(`{"type":"object","properties":{"schema":{"$ref":"https://json-schema.org/draft/2020-12/schema"}}}`)
	patterns := &patternSet{}
	seen := map[*jsonschema.Schema]bool{}
	for i := 0; i < 2; i++ {
		v, counts, err := parseSchema(doc, patterns)
		if err != nil {
			t.Fatal(err)
		}
		g, check, err := compileParsed(v, counts.anchors, patterns)
		if err != nil {
			t.Fatal(err)
		}
		if check.Not == nil || check.Not.Ref != g.all[0] {
			t.Fatalf("copy %d: the check does not wrap its own root", i)
		}
		for _, s := range g.all {
			if seen[s] {
				t.Fatalf("copy %d shares subschema %s with copy 0", i, s.Location)
			}
		}
		for _, s := range g.all {
			seen[s] = true
		}
		if len(g.all) < 50 {
			t.Fatalf("copy %d has %d subschemas; the metaschema's are missing", i, len(g.all))
		}
	}
}

// TestValidationCopiesBounded: concurrent writes to one collection share
// at most GOMAXPROCS compiled copies of its schema (a large schema takes
// tens of milliseconds to compile, and a validation holds memory), the
// others wait for one, and a request that ends while waiting stops.
func TestValidationCopiesBounded(t *testing.T) {
	cs, err := newCollectionSchema([]byte(`{"type":"object","properties":{"n":{"type":"integer"}}}`), ValidationBudget{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if err := validateData(context.Background(), cs, json.RawMessage(fmt.Sprintf(`{"n":%d}`, i)), "/data"); err != nil {
				t.Errorf("validate: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if n := len(cs.copies); n > cap(cs.copies) || len(cs.idle) != n {
		t.Fatalf("%d copies made (at most %d), %d idle", n, cap(cs.copies), len(cs.idle))
	}
	// Borrow every copy there can be; the next borrower waits until its
	// context ends.
	var held []*meteredSchema
	for i := 0; i < cap(cs.copies); i++ {
		ms, err := cs.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, ms)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := validateData(ctx, cs, json.RawMessage(`{"n":1}`), "/data"); !errors.Is(err, context.Canceled) {
		t.Fatalf("validate with every copy borrowed and the request gone: %v", err)
	}
	for _, ms := range held {
		cs.put(ms)
	}
}
