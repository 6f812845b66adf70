// Conformance cases for resources: get, put (with its preconditions),
// delete, list (pagination, label selectors).

package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func resourceCases() []testCase {
	return []testCase{
		// GetResource
		{"GetResource", "OK", func(e *env) {
			e.coll("a")
			want := e.put("a", "r1", `{"x":[1,2]}`, lbl("env", "prod"))
			got, err := e.s.GetResource(e.ctx, "a", "r1")
			e.ok(err)
			if !reflect.DeepEqual(got, want) {
				e.t.Fatalf("GetResource = %+v, want %+v", got, want)
			}
		}},
		{"GetResource", "ErrNotFound", func(e *env) {
			e.coll("a")
			_, err := e.s.GetResource(e.ctx, "a", "nope")
			wantCode(e.t, err, store.ErrNotFound)
			_, err = e.s.GetResource(e.ctx, "nope", "r")
			wantCode(e.t, err, store.ErrNotFound)
			if !strings.Contains(store.ErrorMessage(err), "collection") {
				e.t.Fatalf("message %q does not say the collection is missing", store.ErrorMessage(err))
			}
		}},

		// PutResource
		{"PutResource", "Create", func(e *env) {
			e.coll("a")
			before := time.Now()
			r, created, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r1",
				Data: json.RawMessage(`{"title": "hi", "n": 1.5}`), Labels: lbl("env", "prod")}, store.Precondition{})
			e.ok(err)
			if !created || r.Collection != "a" || r.ID != "r1" || r.Revision != 2 {
				e.t.Fatalf("PutResource = %+v, created=%v; want a/r1 at revision 2, created", r, created)
			}
			jsonEqual(e.t, r.Data, `{"title":"hi","n":1.5}`)
			labelsEqual(e.t, "labels", r.Labels, lbl("env", "prod"))
			checkTime(e.t, "CreatedAt", r.CreatedAt, before, time.Now())
			if !r.UpdatedAt.Equal(r.CreatedAt) {
				e.t.Fatalf("UpdatedAt %v != CreatedAt %v on create", r.UpdatedAt, r.CreatedAt)
			}
			e.wantRev(2)
		}},
		{"PutResource", "NoLabels", func(e *env) {
			e.coll("a")
			r := e.put("a", "r", `{}`, nil)
			if r.Labels == nil || len(r.Labels) != 0 {
				e.t.Fatalf("labels = %#v, want an empty map", r.Labels)
			}
			got, err := e.s.GetResource(e.ctx, "a", "r")
			e.ok(err)
			labelsEqual(e.t, "labels", got.Labels, map[string]string{})
		}},
		{"PutResource", "Replace", func(e *env) {
			e.coll("a")
			first := e.put("a", "r", `{"v":1,"old":true}`, lbl("a", "1"))
			time.Sleep(2 * time.Millisecond)
			r, created, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r",
				Data: json.RawMessage(`{"v":2}`), Labels: lbl("b", "2")}, store.Precondition{})
			e.ok(err)
			if created || r.Revision != 3 {
				e.t.Fatalf("replace: created=%v revision=%d, want false, 3", created, r.Revision)
			}
			jsonEqual(e.t, r.Data, `{"v":2}`)
			labelsEqual(e.t, "labels", r.Labels, lbl("b", "2"))
			if !r.CreatedAt.Equal(first.CreatedAt) {
				e.t.Fatalf("CreatedAt changed on replace: %v -> %v", first.CreatedAt, r.CreatedAt)
			}
			if !r.UpdatedAt.After(first.UpdatedAt) {
				e.t.Fatalf("UpdatedAt %v not after %v", r.UpdatedAt, first.UpdatedAt)
			}
			got, err := e.s.GetResource(e.ctx, "a", "r")
			e.ok(err)
			if !reflect.DeepEqual(got, r) {
				e.t.Fatalf("GetResource = %+v, want %+v", got, r)
			}
		}},
		{"PutResource", "ErrInvalid", func(e *env) {
			e.coll("a")
			bad := []store.Resource{
				{Collection: "a", ID: "", Data: json.RawMessage(`{}`)},
				{Collection: "a", ID: "a/b", Data: json.RawMessage(`{}`)},
				{Collection: "a", ID: "r", Data: json.RawMessage(`[1]`)},
				{Collection: "a", ID: "r", Data: json.RawMessage(`{"x":`)},
				{Collection: "a", ID: "r", Data: json.RawMessage(`{}`), Labels: lbl("bad key", "v")},
				{Collection: "a", ID: "r", Data: json.RawMessage(`{}`), Labels: lbl("k", "bad value")},
			}
			for _, r := range bad {
				_, _, err := e.s.PutResource(e.ctx, r, store.Precondition{})
				wantCode(e.t, err, store.ErrInvalid)
			}
			e.wantRev(1)
		}},
		{"PutResource", "ErrNotFoundCollection", func(e *env) {
			_, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "nope", ID: "r", Data: json.RawMessage(`{}`)}, store.Precondition{})
			wantCode(e.t, err, store.ErrNotFound)
			if msg := store.ErrorMessage(err); !strings.Contains(msg, "collection") || !strings.Contains(msg, "nope") {
				e.t.Fatalf("message %q does not name the missing collection", msg)
			}
			e.wantRev(0)
		}},
		{"PutResource", "CreateOnly", func(e *env) {
			e.coll("a")
			cond := store.Precondition{CreateOnly: true}
			_, created, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{"v":1}`)}, cond)
			e.ok(err)
			if !created {
				e.t.Fatal("CreateOnly on a missing resource did not create it")
			}
			_, _, err = e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{"v":2}`)}, cond)
			wantCode(e.t, err, store.ErrPreconditionFailed)
			got, err := e.s.GetResource(e.ctx, "a", "r")
			e.ok(err)
			jsonEqual(e.t, got.Data, `{"v":1}`)
			e.wantRev(2)
		}},
		{"PutResource", "IfMatch", func(e *env) {
			e.coll("a")
			r := e.put("a", "r", `{"v":1}`, nil)
			_, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{"v":2}`)}, store.Precondition{IfMatch: r.Revision + 5})
			wantCode(e.t, err, store.ErrPreconditionFailed)
			e.wantRev(2)
			r2, created, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{"v":2}`)}, store.Precondition{IfMatch: r.Revision})
			e.ok(err)
			if created || r2.Revision != 3 {
				e.t.Fatalf("IfMatch put: created=%v revision=%d", created, r2.Revision)
			}
			_, _, err = e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "missing", Data: json.RawMessage(`{}`)}, store.Precondition{IfMatch: 1})
			wantCode(e.t, err, store.ErrNotFound)
			e.wantRev(3)
		}},
		{"PutResource", "MustExist", func(e *env) {
			e.coll("a")
			_, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{}`)}, store.Precondition{MustExist: true})
			wantCode(e.t, err, store.ErrNotFound)
			e.put("a", "r", `{}`, nil)
			_, created, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{"v":1}`)}, store.Precondition{MustExist: true})
			e.ok(err)
			if created {
				e.t.Fatal("MustExist reported a creation")
			}
			e.wantRev(3)
		}},
		{"PutResource", "ContextCanceled", func(e *env) {
			e.coll("a")
			ctx, cancel := context.WithCancel(e.ctx)
			cancel()
			_, _, err := e.s.PutResource(ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{}`)}, store.Precondition{})
			if !errors.Is(err, context.Canceled) {
				e.t.Fatalf("error = %v, want context.Canceled", err)
			}
			e.wantRev(1)
		}},

		// DeleteResource
		{"DeleteResource", "OK", func(e *env) {
			e.coll("a")
			r := e.put("a", "r", `{"v":1}`, lbl("k", "v"))
			got, err := e.s.DeleteResource(e.ctx, "a", "r", store.Precondition{})
			e.ok(err)
			want := r
			want.Revision = 3
			if !reflect.DeepEqual(got, want) {
				e.t.Fatalf("DeleteResource = %+v, want %+v", got, want)
			}
			e.wantRev(3)
			_, err = e.s.GetResource(e.ctx, "a", "r")
			wantCode(e.t, err, store.ErrNotFound)
			cs := e.changes(2, 0)
			if len(cs) != 1 || cs[0].Type != store.Deleted || !reflect.DeepEqual(cs[0].Resource, want) {
				e.t.Fatalf("changes = %+v, want the deletion of %+v", cs, want)
			}
			labelsEqual(e.t, "PrevLabels", cs[0].PrevLabels, lbl("k", "v"))
			// it can be created again
			if _, created, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{}`)}, store.Precondition{CreateOnly: true}); err != nil || !created {
				e.t.Fatalf("recreate: created=%v err=%v", created, err)
			}
		}},
		{"DeleteResource", "IfMatch", func(e *env) {
			e.coll("a")
			r := e.put("a", "r", `{}`, nil)
			_, err := e.s.DeleteResource(e.ctx, "a", "r", store.Precondition{IfMatch: r.Revision + 1})
			wantCode(e.t, err, store.ErrPreconditionFailed)
			e.wantRev(2)
			_, err = e.s.DeleteResource(e.ctx, "a", "r", store.Precondition{IfMatch: r.Revision})
			e.ok(err)
			e.wantRev(3)
		}},
		{"DeleteResource", "ErrNotFound", func(e *env) {
			e.coll("a")
			_, err := e.s.DeleteResource(e.ctx, "a", "nope", store.Precondition{})
			wantCode(e.t, err, store.ErrNotFound)
			_, err = e.s.DeleteResource(e.ctx, "a", "nope", store.Precondition{IfMatch: 1})
			wantCode(e.t, err, store.ErrNotFound)
			_, err = e.s.DeleteResource(e.ctx, "nope", "r", store.Precondition{})
			wantCode(e.t, err, store.ErrNotFound)
			e.wantRev(1)
		}},

		// ListResources
		{"ListResources", "Pagination", func(e *env) {
			e.coll("a")
			e.coll("b")
			var want []string
			for i := range 25 {
				id := fmt.Sprintf("r%02d", (i*7)%25) // inserted out of order
				e.put("a", id, `{}`, nil)
			}
			e.put("b", "r00x", `{}`, nil)
			for i := range 25 {
				want = append(want, fmt.Sprintf("r%02d", i))
			}
			var got []string
			after := ""
			for page := 0; ; page++ {
				p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "a", After: after, Limit: 10})
				e.ok(err)
				if p.Revision != 28 {
					e.t.Fatalf("page revision = %d, want 28", p.Revision)
				}
				wantLen, wantMore := 10, page < 2
				if page == 2 {
					wantLen = 5
				}
				if len(p.Items) != wantLen || p.More != wantMore {
					e.t.Fatalf("page %d: %d items, More=%v; want %d, %v", page, len(p.Items), p.More, wantLen, wantMore)
				}
				got = append(got, ids(p.Items)...)
				if !p.More {
					break
				}
				after = p.Items[len(p.Items)-1].ID
			}
			if !reflect.DeepEqual(got, want) {
				e.t.Fatalf("ids = %v, want %v", got, want)
			}
		}},
		{"ListResources", "ExactPage", func(e *env) {
			e.coll("a")
			for i := range 10 {
				e.put("a", fmt.Sprint("r", i), `{}`, nil)
			}
			p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "a", Limit: 10})
			e.ok(err)
			if len(p.Items) != 10 || p.More {
				e.t.Fatalf("%d items, More=%v; want 10, false", len(p.Items), p.More)
			}
		}},
		{"ListResources", "DefaultLimit", func(e *env) {
			e.coll("a")
			for i := range 101 {
				e.put("a", fmt.Sprintf("r%03d", i), `{}`, nil)
			}
			p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "a"})
			e.ok(err)
			if len(p.Items) != 100 || !p.More {
				e.t.Fatalf("%d items, More=%v; want 100, true", len(p.Items), p.More)
			}
		}},
		{"ListResources", "Selector", func(e *env) {
			e.coll("a")
			var want []string
			for i := range 40 {
				env := "dev"
				if i%3 == 0 {
					env = "prod"
					want = append(want, fmt.Sprintf("r%02d", i))
				}
				e.put("a", fmt.Sprintf("r%02d", i), `{}`, lbl("env", env))
			}
			sel, err := store.ParseSelector("env=prod")
			e.ok(err)
			var got []string
			after := ""
			for {
				p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "a", Selector: sel, After: after, Limit: 4})
				e.ok(err)
				for _, r := range p.Items {
					if r.Labels["env"] != "prod" {
						e.t.Fatalf("selector let %s through", r.ID)
					}
				}
				got = append(got, ids(p.Items)...)
				if !p.More {
					break
				}
				if len(p.Items) != 4 {
					e.t.Fatalf("page with More has %d items, want a full page of 4", len(p.Items))
				}
				after = p.Items[len(p.Items)-1].ID
			}
			if !reflect.DeepEqual(got, want) {
				e.t.Fatalf("ids = %v, want %v", got, want)
			}
			none, err := store.ParseSelector("env=none")
			e.ok(err)
			p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "a", Selector: none, Limit: 4})
			e.ok(err)
			if len(p.Items) != 0 || p.More {
				e.t.Fatalf("no-match selector: %v, More=%v", ids(p.Items), p.More)
			}
		}},
		{"ListResources", "ErrNotFound", func(e *env) {
			_, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "nope"})
			wantCode(e.t, err, store.ErrNotFound)
		}},
		{"ListResources", "Empty", func(e *env) {
			e.coll("a")
			p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "a"})
			e.ok(err)
			if len(p.Items) != 0 || p.More || p.Revision != 1 {
				e.t.Fatalf("page = %+v, want empty at revision 1", p)
			}
		}},
	}
}
