package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

// benchStore accepts every collection (the benchmark measures the App's
// checks, not a database).
type benchStore struct{ store.Store }

func (benchStore) CreateCollection(_ context.Context, c store.Collection) (store.Collection, error) {
	return c, nil
}

// BenchmarkCreateCollectionSchema times App.CreateCollection on the cost
// bombs (refused) and on the largest schemas the limits accept. It uses
// nothing but App and the store interface, so the same file measures
// older versions too:
//
//	go test -run '^$' -bench BenchmarkCreateCollectionSchema -benchtime 20x ./internal/app/
func BenchmarkCreateCollectionSchema(b *testing.B) {
	var bomb strings.Builder
	bomb.WriteString(`{"$ref":"#/$defs/l0","$defs":{`)
	for i := 0; i < 12; i++ {
		fmt.Fprintf(&bomb, `"l%d":{"allOf":[%s]},`, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf(`{"$ref":"#/$defs/l%d"},`, i+1), 10), ","))
	}
	bomb.WriteString(`"l12":{"type":"object"}}}`)
	deep := func(n int, open, close string) string {
		return strings.Repeat(open, n) + "{}" + strings.Repeat(close, n)
	}
	wide := func(n int) string {
		var w strings.Builder
		w.WriteString(`{"type":"object","properties":{`)
		for i := 0; i < n; i++ {
			if i > 0 {
				w.WriteString(",")
			}
			fmt.Fprintf(&w, `"p%04d":{"type":"string","maxLength":10}`, i)
		}
		w.WriteString("}}")
		return w.String()
	}
	cases := []struct{ name, schema string }{
		{"allOfBomb", bomb.String()},
		{"properties1000", deep(1000, `{"properties":{"a":`, `}}`)},
		{"properties2000", deep(2000, `{"properties":{"a":`, `}}`)},
		{"not1000", deep(1000, `{"not":`, `}`)},
		{"not2000", deep(2000, `{"not":`, `}`)},
		{"allOf1000", deep(1000, `{"allOf":[`, `]}`)},
		{"allOf2000", deep(2000, `{"allOf":[`, `]}`)},
		// Accepted: at the depth and subschema limits.
		{"properties31", deep(31, `{"properties":{"a":`, `}}`)},
		{"wide1498", wide(1498)},
		{"deepAndWide", deep(15, `{"properties":{"a":`, `}}`)[:15*len(`{"properties":{"a":`)] + wide(719) + strings.Repeat("}}", 15)},
	}
	a := New(benchStore{}, Options{})
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				_, err := a.CreateCollection(context.Background(), everyone, "c", json.RawMessage(c.schema))
				if i == 0 && err != nil {
					b.Logf("refused: %.120s", err)
				}
			}
		})
	}
}
