// Conformance cases for collections: create, get, list, delete.

package storetest

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func collectionCases() []testCase {
	return []testCase{
		// CreateCollection
		{"CreateCollection", "OK", func(e *env) {
			before := time.Now()
			c, err := e.s.CreateCollection(e.ctx, store.Collection{Name: "tasks"})
			e.ok(err)
			if c.Name != "tasks" || c.Revision != 1 || c.Schema != nil {
				e.t.Fatalf("collection = %+v, want tasks at revision 1 without schema", c)
			}
			checkTime(e.t, "CreatedAt", c.CreatedAt, before, time.Now())
			e.wantRev(1)
			if cs := e.changes(0, 0); len(cs) != 0 {
				e.t.Fatalf("creating a collection appended changes: %+v", cs)
			}
		}},
		{"CreateCollection", "WithSchema", func(e *env) {
			schema := `{"type": "object", "required": ["title"]}`
			c, err := e.s.CreateCollection(e.ctx, store.Collection{Name: "s", Schema: json.RawMessage(schema)})
			e.ok(err)
			jsonEqual(e.t, c.Schema, schema)
			got, err := e.s.GetCollection(e.ctx, "s")
			e.ok(err)
			jsonEqual(e.t, got.Schema, schema)
		}},
		{"CreateCollection", "ErrConflict", func(e *env) {
			e.coll("a")
			_, err := e.s.CreateCollection(e.ctx, store.Collection{Name: "a"})
			wantCode(e.t, err, store.ErrConflict)
			e.wantRev(1)
		}},
		{"CreateCollection", "ErrInvalid", func(e *env) {
			for _, name := range []string{"", "-a", "a/b", "a b", "ä", strings.Repeat("x", 129)} {
				_, err := e.s.CreateCollection(e.ctx, store.Collection{Name: name})
				wantCode(e.t, err, store.ErrInvalid)
			}
			_, err := e.s.CreateCollection(e.ctx, store.Collection{Name: "x", Schema: json.RawMessage(`{"type":`)})
			wantCode(e.t, err, store.ErrInvalid)
			e.wantRev(0)
		}},

		// GetCollection
		{"GetCollection", "OK", func(e *env) {
			c := e.coll("a")
			got, err := e.s.GetCollection(e.ctx, "a")
			e.ok(err)
			if !reflect.DeepEqual(got, c) {
				e.t.Fatalf("GetCollection = %+v, want %+v", got, c)
			}
		}},
		{"GetCollection", "ErrNotFound", func(e *env) {
			_, err := e.s.GetCollection(e.ctx, "nope")
			wantCode(e.t, err, store.ErrNotFound)
		}},

		// ListCollections
		{"ListCollections", "Empty", func(e *env) {
			cs, err := e.s.ListCollections(e.ctx)
			e.ok(err)
			if len(cs) != 0 {
				e.t.Fatalf("ListCollections = %+v, want none", cs)
			}
		}},
		{"ListCollections", "OrderedByName", func(e *env) {
			for _, n := range []string{"b", "a", "C", "a.b", "a-b"} {
				e.coll(n)
			}
			cs, err := e.s.ListCollections(e.ctx)
			e.ok(err)
			var names []string
			for _, c := range cs {
				names = append(names, c.Name)
			}
			want := []string{"C", "a", "a-b", "a.b", "b"} // byte order
			if !reflect.DeepEqual(names, want) {
				e.t.Fatalf("names = %v, want %v", names, want)
			}
		}},

		// DeleteCollection
		{"DeleteCollection", "OK", func(e *env) {
			e.coll("a")
			e.coll("keep")
			e.put("a", "z", `{"n":1}`, lbl("x", "1"))
			e.put("a", "m", `{"n":2}`, lbl("x", "2"))
			b := e.put("a", "b", `{"n":3}`, nil)
			b = e.put("a", "b", `{"n":4}`, lbl("y", "1"))
			e.put("keep", "k", `{}`, nil)
			start := e.rev() // 7
			e.ok(e.s.DeleteCollection(e.ctx, "a"))
			e.wantRev(start + 4) // one per resource + one for the collection
			cs := e.changes(start, 0)
			if len(cs) != 3 {
				e.t.Fatalf("got %d changes, want 3 deletions: %+v", len(cs), cs)
			}
			for i, id := range []string{"b", "m", "z"} {
				c := cs[i]
				if c.Type != store.Deleted || c.Resource.ID != id || c.Resource.Collection != "a" || c.Revision != start+1+int64(i) || c.Resource.Revision != c.Revision {
					e.t.Fatalf("change %d = %+v, want deletion of %s at %d", i, c, id, start+1+int64(i))
				}
				labelsEqual(e.t, "PrevLabels", c.PrevLabels, c.Resource.Labels)
			}
			jsonEqual(e.t, cs[0].Resource.Data, `{"n":4}`)
			labelsEqual(e.t, "labels", cs[0].Resource.Labels, lbl("y", "1"))
			if !cs[0].Resource.CreatedAt.Equal(b.CreatedAt) || !cs[0].Resource.UpdatedAt.Equal(b.UpdatedAt) {
				e.t.Fatalf("deleted state timestamps = %v/%v, want %v/%v", cs[0].Resource.CreatedAt, cs[0].Resource.UpdatedAt, b.CreatedAt, b.UpdatedAt)
			}
			if p := cs[0].Prev; p == nil || p.Revision != b.Revision || !p.UpdatedAt.Equal(b.UpdatedAt) || string(p.Data) != string(b.Data) {
				e.t.Fatalf("deleted change's Prev = %+v, want the state %+v", p, b)
			}
			_, err := e.s.GetCollection(e.ctx, "a")
			wantCode(e.t, err, store.ErrNotFound)
			_, err = e.s.GetResource(e.ctx, "a", "b")
			wantCode(e.t, err, store.ErrNotFound)
			if _, err := e.s.GetResource(e.ctx, "keep", "k"); err != nil {
				e.t.Fatalf("other collection's resource lost: %v", err)
			}
		}},
		{"DeleteCollection", "Empty", func(e *env) {
			e.coll("a")
			e.ok(e.s.DeleteCollection(e.ctx, "a"))
			e.wantRev(2)
			if cs := e.changes(0, 0); len(cs) != 0 {
				e.t.Fatalf("changes = %+v, want none", cs)
			}
		}},
		{"DeleteCollection", "Recreate", func(e *env) {
			e.coll("a")
			e.put("a", "r", `{}`, nil)
			e.ok(e.s.DeleteCollection(e.ctx, "a"))
			c := e.coll("a")
			if c.Revision != 5 {
				e.t.Fatalf("recreated collection revision = %d, want 5", c.Revision)
			}
			p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "a"})
			e.ok(err)
			if len(p.Items) != 0 {
				e.t.Fatalf("recreated collection has items %v", ids(p.Items))
			}
		}},
		{"DeleteCollection", "ErrNotFound", func(e *env) {
			wantCode(e.t, e.s.DeleteCollection(e.ctx, "nope"), store.ErrNotFound)
			e.wantRev(0)
		}},
	}
}
