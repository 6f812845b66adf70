package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// schemaCatalogue: collection schemas whose validation cost could blow up
// are refused when the collection is created (422, nothing created), and
// a schema that is costly only for some data gets those writes refused
// (422) within the validation budget, while other writes to it, and every
// other client, are served.
func schemaCatalogue() []hostile {
	str := func(s string) io.Reader { return strings.NewReader(s) }
	// refused creates a collection with schema and expects a 422, then
	// checks that no collection was created.
	refused := func(name, schema string) func(t *testing.T, s *testServer) {
		return func(t *testing.T, s *testServer) {
			restStatus("POST", "/v1/collections", "application/json", str(`{"name":"`+name+`","schema":`+schema+`}`), nil, 422, "schema-violation")(t, s)
			restStatus("PUT", "/v1/collections/"+name+"/resources/x", "application/json", str(`{"data":{}}`), nil, 404, "not-found")(t, s)
		}
	}
	// 12 levels of 10 references each: 10^12 applications per value.
	var bomb strings.Builder
	bomb.WriteString(`{"$ref":"#/$defs/l0","$defs":{`)
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&bomb, `"l%d":{"allOf":[%s]},`, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf(`{"$ref":"#/$defs/l%d"},`, i+1), 10), ","))
	}
	bomb.WriteString(`"l12":{"type":"object"}}}`)
	// Two patterns that both match "a": each level of {"a":{"a":…}}
	// applies the schema twice to the next. Nothing at creation can tell
	// which names two patterns share; the validation budget stops it.
	const twoPatterns = `{"type":"object","patternProperties":{"^a":{"$ref":"#"},"a$":{"$ref":"#"}}}`
	nestedA := func(depth int) string { return nested(depth, `{"a":`, "}", "{}") }
	return []hostile{
		{"REST/SchemaReferenceBomb", refused("bomb", bomb.String())},
		{"REST/SchemaNested1000", refused("deep1000", nested(1000, `{"properties":{"a":`, "}}", "{}"))},
		{"REST/SchemaNested2000", refused("deep2000", nested(2000, `{"not":`, "}", "{}"))},
		{"REST/SchemaAllOfNested2000", refused("allof2000", nested(2000, `{"allOf":[`, "]}", "{}"))},
		{"REST/SchemaExponentialWrite", func(t *testing.T, s *testServer) {
			const res = "/v1/collections/expo/resources/"
			restStatus("POST", "/v1/collections", "application/json", str(`{"name":"expo","schema":`+twoPatterns+`}`), nil, 201, "")(t, s)
			restStatus("PUT", res+"ok", "application/json", str(`{"data":`+nestedA(6)+`}`), nil, 201, "")(t, s)
			// 2^80 applications: refused within the budget, naming /data.
			req, _ := http.NewRequest("PUT", s.URL+res+"bomb", str(`{"data":`+nestedA(80)+`}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := s.HTTP.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var p struct {
				Type, Detail string
				Errors       []struct{ Pointer string }
			}
			if err := json.NewDecoder(resp.Body).Decode(&p); err != nil || resp.StatusCode != 422 || !strings.HasSuffix(p.Type, "/schema-violation") ||
				!strings.Contains(p.Detail, "budget") || len(p.Errors) != 1 || p.Errors[0].Pointer != "/data" {
				t.Fatalf("over-budget write: %d %+v (%v), want a 422 about the budget naming /data", resp.StatusCode, p, err)
			}
			restStatus("GET", res+"bomb", "", nil, nil, 404, "not-found")(t, s)
			restStatus("PUT", res+"ok", "application/json", str(`{"data":{"a":{}}}`), nil, 200, "")(t, s)
		}},
	}
}
