// Conformance cases for a collection's definition: description and
// indexes at creation, UpdateCollection and its conditions, the
// CollectionUpdated change, and Precondition.CollectionRevision.

package storetest

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func collectionUpdateCases() []testCase {
	ix := func(fields ...string) store.Index { return store.Index{Fields: fields} }
	return []testCase{
		{"CreateCollection", "DescriptionAndIndexes", func(e *env) {
			want := []store.Index{ix("data.status"), ix("labels.env", "createdAt")}
			c, err := e.s.CreateCollection(e.ctx, store.Collection{Name: "d", Description: "orders of the shop", Indexes: want})
			e.ok(err)
			if c.Description != "orders of the shop" || !reflect.DeepEqual(c.Indexes, want) || !c.UpdatedAt.Equal(c.CreatedAt) {
				e.t.Fatalf("created %+v, want the description, indexes %v and UpdatedAt = CreatedAt", c, want)
			}
			got, err := e.s.GetCollection(e.ctx, "d")
			e.ok(err)
			if !reflect.DeepEqual(got, c) {
				e.t.Fatalf("GetCollection = %+v, want %+v", got, c)
			}
			cs, err := e.s.ListCollections(e.ctx)
			e.ok(err)
			if len(cs) != 1 || !reflect.DeepEqual(cs[0], c) {
				e.t.Fatalf("ListCollections = %+v, want [%+v]", cs, c)
			}
		}},
		{"CreateCollection", "ErrInvalidDefinition", func(e *env) {
			for _, c := range []store.Collection{
				{Name: "x", Description: strings.Repeat("é", store.MaxDescription+1)},
				{Name: "x", Indexes: []store.Index{ix("data.a"), ix("nope")}},
				{Name: "x", Indexes: []store.Index{ix()}},
			} {
				_, err := e.s.CreateCollection(e.ctx, c)
				wantCode(e.t, err, store.ErrInvalid)
			}
			e.wantRev(0)
		}},

		{"UpdateCollection", "OK", func(e *env) {
			before, err := e.s.CreateCollection(e.ctx, store.Collection{Name: "u", Schema: json.RawMessage(`{"type":"object"}`)})
			e.ok(err)
			e.put("u", "r", `{}`, nil)
			start := e.rev()
			upd := store.Collection{Name: "u", Schema: json.RawMessage(`{"type": "object", "required": ["a"]}`),
				Description: "new", Indexes: []store.Index{ix("data.a")}}
			c, err := e.s.UpdateCollection(e.ctx, upd, store.CollectionCondition{IfMatch: before.Revision})
			e.ok(err)
			e.wantRev(start + 1)
			jsonEqual(e.t, c.Schema, `{"type":"object","required":["a"]}`)
			if c.Revision != start+1 || c.Description != "new" || !reflect.DeepEqual(c.Indexes, upd.Indexes) ||
				!c.CreatedAt.Equal(before.CreatedAt) || c.UpdatedAt.Before(c.CreatedAt) {
				e.t.Fatalf("updated = %+v, want revision %d, the new definition, CreatedAt kept", c, start+1)
			}
			checkTime(e.t, "UpdatedAt", c.UpdatedAt, before.CreatedAt, time.Now())
			got, err := e.s.GetCollection(e.ctx, "u")
			e.ok(err)
			if !reflect.DeepEqual(got, c) {
				e.t.Fatalf("GetCollection = %+v, want %+v", got, c)
			}
			cs := e.changes(start, 0)
			if len(cs) != 1 {
				e.t.Fatalf("changes = %+v, want one collection change", cs)
			}
			ch := cs[0]
			if ch.Type != store.CollectionUpdated || ch.Revision != c.Revision || ch.Resource.Collection != "u" || ch.Resource.ID != "" ||
				ch.Collection == nil || ch.Prev != nil {
				e.t.Fatalf("change = %+v, want a CollectionUpdated change of u at %d", ch, c.Revision)
			}
			if !reflect.DeepEqual(*ch.Collection, c) {
				e.t.Fatalf("change's collection = %+v, want %+v", *ch.Collection, c)
			}
		}},
		{"UpdateCollection", "RemoveSchema", func(e *env) {
			_, err := e.s.CreateCollection(e.ctx, store.Collection{Name: "u", Schema: json.RawMessage(`{"type":"object"}`),
				Indexes: []store.Index{ix("id", "revision")}})
			e.ok(err)
			c, err := e.s.UpdateCollection(e.ctx, store.Collection{Name: "u"}, store.CollectionCondition{})
			e.ok(err)
			got, err := e.s.GetCollection(e.ctx, "u")
			e.ok(err)
			if c.Schema != nil || got.Schema != nil || got.Indexes != nil || got.Description != "" {
				e.t.Fatalf("after removing everything: %+v / %+v", c, got)
			}
		}},
		{"UpdateCollection", "ErrNotFound", func(e *env) {
			_, err := e.s.UpdateCollection(e.ctx, store.Collection{Name: "nope"}, store.CollectionCondition{})
			wantCode(e.t, err, store.ErrNotFound)
			e.wantRev(0)
		}},
		{"UpdateCollection", "ErrPreconditionFailed", func(e *env) {
			c := e.coll("u")
			_, err := e.s.UpdateCollection(e.ctx, store.Collection{Name: "u"}, store.CollectionCondition{IfMatch: c.Revision + 7})
			wantCode(e.t, err, store.ErrPreconditionFailed)
			e.wantRev(1)
		}},
		{"UpdateCollection", "ErrInvalid", func(e *env) {
			e.coll("u")
			for _, c := range []store.Collection{
				{Name: "u", Schema: json.RawMessage(`[1]`)},
				{Name: "u", Description: strings.Repeat("x", store.MaxDescription+1)},
				{Name: "u", Indexes: []store.Index{ix("data.a"), ix("data.a")}},
			} {
				_, err := e.s.UpdateCollection(e.ctx, c, store.CollectionCondition{})
				wantCode(e.t, err, store.ErrInvalid)
			}
			e.wantRev(1)
			if cs := e.changes(0, 0); len(cs) != 0 {
				e.t.Fatalf("a refused update appended %+v", cs)
			}
		}},
		{"UpdateCollection", "CheckedThrough", func(e *env) {
			e.coll("u")
			e.coll("other")
			e.put("u", "a", `{}`, nil)
			e.put("u", "b", `{}`, nil)
			checked := e.rev()
			// Writes after the check that cannot hold an unchecked state:
			// another collection, a deletion.
			e.put("other", "x", `{}`, nil)
			_, err := e.s.DeleteResource(e.ctx, "u", "b", store.Precondition{})
			e.ok(err)
			_, err = e.s.UpdateCollection(e.ctx, store.Collection{Name: "u", Description: "1"}, store.CollectionCondition{CheckedThrough: checked})
			e.ok(err)
			// A resource written after the check is not.
			checked = e.rev()
			e.put("u", "a", `{"n":1}`, nil)
			rev := e.rev()
			_, err = e.s.UpdateCollection(e.ctx, store.Collection{Name: "u", Description: "2"}, store.CollectionCondition{CheckedThrough: checked})
			wantCode(e.t, err, store.ErrCollectionChanged)
			e.wantRev(rev)
			got, err := e.s.GetCollection(e.ctx, "u")
			e.ok(err)
			if got.Description != "1" {
				e.t.Fatalf("a refused update changed the collection: %+v", got)
			}
			_, err = e.s.UpdateCollection(e.ctx, store.Collection{Name: "u", Description: "2"}, store.CollectionCondition{CheckedThrough: rev})
			e.ok(err)
		}},
		{"UpdateCollection", "CheckedThroughCompacted", func(e *env) {
			e.coll("u")
			e.coll("other")
			e.put("u", "a", `{}`, nil)
			checked := e.rev()
			e.put("other", "x", `{}`, nil)
			e.put("other", "y", `{}`, nil)
			e.ok(e.s.Compact(e.ctx, e.rev()))
			// The log no longer shows what happened after checked.
			_, err := e.s.UpdateCollection(e.ctx, store.Collection{Name: "u"}, store.CollectionCondition{CheckedThrough: checked})
			wantCode(e.t, err, store.ErrCollectionChanged)
		}},
		{"UpdateCollection", "ChangesResumeAcrossIt", func(e *env) {
			e.coll("u")
			e.put("u", "a", `{}`, nil)
			_, err := e.s.UpdateCollection(e.ctx, store.Collection{Name: "u", Description: "d"}, store.CollectionCondition{})
			e.ok(err)
			e.put("u", "b", `{}`, nil)
			e.ok(e.s.DeleteCollection(e.ctx, "u"))
			var types []store.ChangeType
			for _, c := range e.changes(0, 0) {
				types = append(types, c.Type)
			}
			want := []store.ChangeType{store.Created, store.CollectionUpdated, store.Created, store.Deleted, store.Deleted}
			if !reflect.DeepEqual(types, want) {
				e.t.Fatalf("change types = %v, want %v", types, want)
			}
		}},

		{"CollectionRevision", "PutResource", func(e *env) {
			c := e.coll("u")
			r, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "u", ID: "a", Data: json.RawMessage(`{}`)}, store.Precondition{CollectionRevision: c.Revision})
			e.ok(err)
			c2, err := e.s.UpdateCollection(e.ctx, store.Collection{Name: "u", Description: "d"}, store.CollectionCondition{})
			e.ok(err)
			rev := e.rev()
			_, _, err = e.s.PutResource(e.ctx, store.Resource{Collection: "u", ID: "a", Data: json.RawMessage(`{"n":1}`)}, store.Precondition{CollectionRevision: c.Revision})
			wantCode(e.t, err, store.ErrCollectionChanged)
			if errors.Is(err, store.ErrPreconditionFailed) || errors.Is(err, store.ErrConflict) {
				e.t.Fatalf("ErrCollectionChanged must be distinct: %v", err)
			}
			e.wantRev(rev)
			got, err := e.s.GetResource(e.ctx, "u", "a")
			e.ok(err)
			if got.Revision != r.Revision {
				e.t.Fatalf("a refused put changed the resource: %+v", got)
			}
			_, _, err = e.s.PutResource(e.ctx, store.Resource{Collection: "u", ID: "a", Data: json.RawMessage(`{"n":1}`)}, store.Precondition{CollectionRevision: c2.Revision})
			e.ok(err)
		}},
		{"CollectionRevision", "DeleteResource", func(e *env) {
			c := e.coll("u")
			e.put("u", "a", `{}`, nil)
			_, err := e.s.UpdateCollection(e.ctx, store.Collection{Name: "u", Description: "d"}, store.CollectionCondition{})
			e.ok(err)
			_, err = e.s.DeleteResource(e.ctx, "u", "a", store.Precondition{CollectionRevision: c.Revision})
			wantCode(e.t, err, store.ErrCollectionChanged)
			if _, err := e.s.GetResource(e.ctx, "u", "a"); err != nil {
				e.t.Fatalf("a refused delete removed the resource: %v", err)
			}
		}},
		{"CollectionRevision", "ErrNotFound", func(e *env) {
			_, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "nope", ID: "a"}, store.Precondition{CollectionRevision: 3})
			wantCode(e.t, err, store.ErrNotFound)
		}},
	}
}
