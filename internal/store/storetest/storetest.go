// Package storetest is the conformance suite every store.Store
// implementation must pass. An implementation's tests call Run (or
// RunWithReopen) with a function that opens a Store on a fresh database.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Opener opens a Store on one particular database; each call opens another
// Store on the same data. It must arrange for the Store to be closed when
// the test ends (t.Cleanup); the suite may also close a Store itself, so
// Close must tolerate a second call.
type Opener func(t *testing.T) store.Store

// Run runs the conformance suite. open must return a Store on a fresh,
// empty database and arrange for it to be closed when t ends. The subtests
// that reopen a database are skipped; use RunWithReopen to include them.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	run(t, open, nil)
}

// RunWithReopen runs the whole suite, including the subtests that open the
// same database twice (epoch stability, durability). newDB must create a
// fresh, empty database and return an Opener for it.
func RunWithReopen(t *testing.T, newDB func(t *testing.T) Opener) {
	run(t, func(t *testing.T) store.Store { return newDB(t)(t) }, newDB)
}

// env is what one subtest works with.
type env struct {
	t     *testing.T
	ctx   context.Context
	s     store.Store
	open  func(t *testing.T) store.Store
	newDB func(t *testing.T) Opener
}

type testCase struct {
	group, name string
	fn          func(e *env)
}

func run(t *testing.T, open func(t *testing.T) store.Store, newDB func(t *testing.T) Opener) {
	groups := map[string][]testCase{}
	var order []string
	for _, tc := range cases() {
		if _, ok := groups[tc.group]; !ok {
			order = append(order, tc.group)
		}
		groups[tc.group] = append(groups[tc.group], tc)
	}
	for _, g := range order {
		t.Run(g, func(t *testing.T) {
			for _, tc := range groups[g] {
				t.Run(tc.name, func(t *testing.T) {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					e := &env{t: t, ctx: ctx, open: open, newDB: newDB}
					if !strings.HasPrefix(tc.group, "Reopen") {
						e.s = open(t)
					}
					tc.fn(e)
				})
			}
		})
	}
}

// ---- helpers ----

func wantCode(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error = %v (code %q), want %v (code %q)", err, store.ErrorCode(err), target, store.ErrorCode(target))
	}
}

func (e *env) ok(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("unexpected error: %v", err)
	}
}

func (e *env) coll(name string) store.Collection {
	e.t.Helper()
	c, err := e.s.CreateCollection(e.ctx, store.Collection{Name: name})
	e.ok(err)
	return c
}

func (e *env) put(coll, id, data string, labels map[string]string) store.Resource {
	e.t.Helper()
	r, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: coll, ID: id, Data: json.RawMessage(data), Labels: labels}, store.Precondition{})
	e.ok(err)
	return r
}

func (e *env) rev() int64 {
	e.t.Helper()
	r, err := e.s.Revision(e.ctx)
	e.ok(err)
	return r
}

func (e *env) changes(after int64, limit int) []store.Change {
	e.t.Helper()
	cs, err := e.s.Changes(e.ctx, after, limit)
	e.ok(err)
	return cs
}

func (e *env) wantRev(want int64) {
	e.t.Helper()
	if got := e.rev(); got != want {
		e.t.Fatalf("Revision() = %d, want %d", got, want)
	}
}

// jsonEqual compares two JSON documents semantically.
func jsonEqual(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("data %q is not JSON: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("data = %s, want %s", got, want)
	}
}

func labelsEqual(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		if (got == nil) != (want == nil) {
			t.Fatalf("%s = %#v, want %#v", what, got, want)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}

func checkTime(t *testing.T, what string, got, before, after time.Time) {
	t.Helper()
	if got.Location() != time.UTC {
		t.Fatalf("%s location = %v, want UTC", what, got.Location())
	}
	if got.Before(before.Add(-time.Millisecond)) || got.After(after.Add(time.Millisecond)) {
		t.Fatalf("%s = %v, want between %v and %v", what, got, before, after)
	}
	back, err := time.Parse(time.RFC3339Nano, got.Format(time.RFC3339Nano))
	if err != nil || !back.Equal(got) || back != got {
		t.Fatalf("%s = %v does not round-trip through RFC 3339 (%v, %v)", what, got, back, err)
	}
}

func ids(rs []store.Resource) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

func (e *env) drainNotify() {
	for {
		select {
		case <-e.s.Notify():
		default:
			return
		}
	}
}

func (e *env) waitNotify(d time.Duration) bool {
	select {
	case <-e.s.Notify():
		return true
	case <-time.After(d):
		return false
	}
}

func lbl(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

var epochRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// ---- the cases ----

func cases() []testCase {
	return []testCase{
		// Epoch
		{"Epoch", "Format", func(e *env) {
			if ep := e.s.Epoch(); !epochRE.MatchString(ep) {
				e.t.Fatalf("Epoch() = %q, want 32 lowercase hex digits", ep)
			}
		}},
		{"Epoch", "NewDatabaseDiffers", func(e *env) {
			other := e.open(e.t)
			if e.s.Epoch() == other.Epoch() {
				e.t.Fatalf("two new databases share epoch %q", e.s.Epoch())
			}
		}},
		{"Reopen", "EpochStable", func(e *env) {
			if e.newDB == nil {
				e.t.Skip("needs RunWithReopen")
			}
			db := e.newDB(e.t)
			s1 := db(e.t)
			ep := s1.Epoch()
			e.ok(s1.Close())
			s2 := db(e.t)
			if s2.Epoch() != ep {
				e.t.Fatalf("epoch after reopen = %q, want %q", s2.Epoch(), ep)
			}
		}},
		{"Reopen", "DataPersists", func(e *env) {
			if e.newDB == nil {
				e.t.Skip("needs RunWithReopen")
			}
			db := e.newDB(e.t)
			e.s = db(e.t)
			e.coll("c")
			for i := range 5 {
				e.put("c", fmt.Sprint("r", i), `{"n":1}`, lbl("k", "v"))
			}
			e.ok(e.s.Compact(e.ctx, 3))
			e.ok(e.s.PutIdempotentReply(e.ctx, store.IdempotentReply{Key: "k", Fingerprint: "f", Status: 201}))
			want := e.changes(3, 0)
			e.ok(e.s.Close())

			e.s = db(e.t)
			e.wantRev(6)
			r, err := e.s.GetResource(e.ctx, "c", "r4")
			e.ok(err)
			if r.Revision != 6 {
				e.t.Fatalf("resource revision = %d, want 6", r.Revision)
			}
			if got := e.changes(3, 0); !reflect.DeepEqual(got, want) {
				e.t.Fatalf("changes after reopen = %+v, want %+v", got, want)
			}
			_, err = e.s.Changes(e.ctx, 2, 0)
			wantCode(e.t, err, store.ErrCompacted)
			_, err = e.s.GetIdempotentReply(e.ctx, "k")
			e.ok(err)
			if got := e.put("c", "new", `{}`, nil); got.Revision != 7 {
				e.t.Fatalf("revision after reopen = %d, want 7", got.Revision)
			}
		}},

		// Ping
		{"Ping", "OK", func(e *env) { e.ok(e.s.Ping(e.ctx)) }},

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

		// Revision
		{"Revision", "NewStore", func(e *env) { e.wantRev(0) }},
		{"Revision", "OnePerWriteAcrossCollections", func(e *env) {
			e.coll("a")
			e.coll("b")
			want := int64(2)
			for i := range 5 {
				for _, c := range []string{"a", "b"} {
					r := e.put(c, fmt.Sprint("r", i), `{}`, nil)
					want++
					if r.Revision != want {
						e.t.Fatalf("resource revision = %d, want %d", r.Revision, want)
					}
					e.wantRev(want)
				}
			}
			if _, err := e.s.DeleteResource(e.ctx, "b", "r0", store.Precondition{}); err != nil {
				e.t.Fatal(err)
			}
			e.wantRev(want + 1)
		}},
		{"Revision", "NotUsedByIdempotencyOrCompact", func(e *env) {
			e.coll("a")
			e.put("a", "r", `{}`, nil)
			e.ok(e.s.PutIdempotentReply(e.ctx, store.IdempotentReply{Key: "k"}))
			e.ok(e.s.ExpireIdempotentReplies(e.ctx, time.Now().Add(time.Hour)))
			e.ok(e.s.Compact(e.ctx, 1))
			e.wantRev(2)
		}},

		// Changes
		{"Changes", "Contents", func(e *env) {
			e.coll("a")
			c1 := e.put("a", "r", `{"v":1}`, lbl("k", "1"))
			c2 := e.put("a", "r", `{"v":2}`, lbl("k", "2"))
			d, err := e.s.DeleteResource(e.ctx, "a", "r", store.Precondition{})
			e.ok(err)
			cs := e.changes(0, 0)
			want := []store.Change{
				{Revision: 2, Type: store.Created, Resource: c1},
				{Revision: 3, Type: store.Updated, Resource: c2, PrevLabels: lbl("k", "1")},
				{Revision: 4, Type: store.Deleted, Resource: d, PrevLabels: lbl("k", "2")},
			}
			if !reflect.DeepEqual(cs, want) {
				e.t.Fatalf("changes =\n%+v\nwant\n%+v", cs, want)
			}
			if cs[0].PrevLabels != nil {
				e.t.Fatalf("created change has PrevLabels %#v, want nil", cs[0].PrevLabels)
			}
		}},
		{"Changes", "EmptyPrevLabels", func(e *env) {
			e.coll("a")
			e.put("a", "r", `{}`, nil)
			e.put("a", "r", `{}`, lbl("k", "v"))
			cs := e.changes(2, 0)
			if len(cs) != 1 || cs[0].PrevLabels == nil || len(cs[0].PrevLabels) != 0 {
				e.t.Fatalf("update of an unlabelled resource: PrevLabels = %#v, want an empty map", cs[0].PrevLabels)
			}
		}},
		{"Changes", "AfterAndLimit", func(e *env) {
			e.coll("a")
			for i := range 10 {
				e.put("a", fmt.Sprint("r", i%3), `{}`, nil)
			}
			all := e.changes(0, 0)
			if len(all) != 10 {
				e.t.Fatalf("%d changes, want 10", len(all))
			}
			for i, c := range all {
				if c.Revision != int64(i+2) {
					e.t.Fatalf("change %d has revision %d, want %d", i, c.Revision, i+2)
				}
			}
			got := e.changes(4, 3)
			if len(got) != 3 || got[0].Revision != 5 || got[2].Revision != 7 {
				e.t.Fatalf("Changes(4, 3) = %+v", got)
			}
			if got := e.changes(11, 5); len(got) != 0 {
				e.t.Fatalf("Changes(latest) = %+v, want none", got)
			}
			if got := e.changes(100, 5); len(got) != 0 {
				e.t.Fatalf("Changes(future) = %+v, want none", got)
			}
		}},
		{"Changes", "Empty", func(e *env) {
			if got := e.changes(0, 10); len(got) != 0 {
				e.t.Fatalf("Changes on an empty store = %+v", got)
			}
		}},

		// Compact
		{"Compact", "OK", func(e *env) {
			e.coll("a")
			for i := range 10 {
				e.put("a", fmt.Sprint("r", i), `{}`, nil)
			}
			e.ok(e.s.Compact(e.ctx, 6))
			for _, after := range []int64{0, 1, 5} {
				_, err := e.s.Changes(e.ctx, after, 0)
				wantCode(e.t, err, store.ErrCompacted)
			}
			got := e.changes(6, 0)
			if len(got) != 5 || got[0].Revision != 7 {
				e.t.Fatalf("Changes(6) = %d changes from %d, want 5 from 7", len(got), got[0].Revision)
			}
			// compacting to an earlier point does not undo anything
			e.ok(e.s.Compact(e.ctx, 2))
			_, err := e.s.Changes(e.ctx, 5, 0)
			wantCode(e.t, err, store.ErrCompacted)
		}},
		{"Compact", "KeepsNewest", func(e *env) {
			e.coll("a")
			for i := range 5 {
				e.put("a", fmt.Sprint("r", i), `{}`, nil)
			}
			e.ok(e.s.Compact(e.ctx, 1000))
			got := e.changes(5, 0)
			if len(got) != 1 || got[0].Revision != 6 {
				e.t.Fatalf("after compacting everything: %+v, want only revision 6", got)
			}
			_, err := e.s.Changes(e.ctx, 4, 0)
			wantCode(e.t, err, store.ErrCompacted)
			// new writes continue the log
			e.put("a", "x", `{}`, nil)
			if got := e.changes(5, 0); len(got) != 2 || got[1].Revision != 7 {
				e.t.Fatalf("Changes(5) = %+v", got)
			}
		}},
		{"Compact", "EmptyLog", func(e *env) {
			e.ok(e.s.Compact(e.ctx, 10))
			e.coll("a")
			e.ok(e.s.Compact(e.ctx, 10))
			if got := e.changes(0, 0); len(got) != 0 {
				e.t.Fatalf("changes = %+v", got)
			}
		}},

		// Idempotent replies
		{"IdempotentReply", "PutGet", func(e *env) {
			at := time.Date(2025, 1, 2, 3, 4, 5, 123456000, time.UTC)
			in := store.IdempotentReply{Key: "k1", Fingerprint: "POST /x abc", Status: 201,
				Header: map[string]string{"Location": "/v1/x/1", "ETag": `"2"`}, Body: []byte(`{"id":"1"}`), CreatedAt: at}
			e.ok(e.s.PutIdempotentReply(e.ctx, in))
			got, err := e.s.GetIdempotentReply(e.ctx, "k1")
			e.ok(err)
			if !reflect.DeepEqual(got, in) {
				e.t.Fatalf("GetIdempotentReply = %+v, want %+v", got, in)
			}
		}},
		{"IdempotentReply", "DefaultCreatedAt", func(e *env) {
			before := time.Now()
			e.ok(e.s.PutIdempotentReply(e.ctx, store.IdempotentReply{Key: "k", Status: 200}))
			got, err := e.s.GetIdempotentReply(e.ctx, "k")
			e.ok(err)
			checkTime(e.t, "CreatedAt", got.CreatedAt, before, time.Now())
		}},
		{"IdempotentReply", "ErrNotFound", func(e *env) {
			_, err := e.s.GetIdempotentReply(e.ctx, "nope")
			wantCode(e.t, err, store.ErrNotFound)
		}},
		{"IdempotentReply", "ErrConflict", func(e *env) {
			first := store.IdempotentReply{Key: "k", Fingerprint: "a", Status: 201, Body: []byte("one"), CreatedAt: time.Now().UTC().Truncate(time.Millisecond)}
			e.ok(e.s.PutIdempotentReply(e.ctx, first))
			err := e.s.PutIdempotentReply(e.ctx, store.IdempotentReply{Key: "k", Fingerprint: "b", Status: 200, Body: []byte("two")})
			wantCode(e.t, err, store.ErrConflict)
			got, err := e.s.GetIdempotentReply(e.ctx, "k")
			e.ok(err)
			if got.Fingerprint != "a" || string(got.Body) != "one" || got.Status != 201 {
				e.t.Fatalf("stored reply changed: %+v", got)
			}
		}},
		{"IdempotentReply", "Expire", func(e *env) {
			base := time.Now().UTC().Truncate(time.Millisecond)
			for i, k := range []string{"old1", "old2", "new"} {
				at := base.Add(-time.Hour)
				if k == "new" {
					at = base
				}
				e.ok(e.s.PutIdempotentReply(e.ctx, store.IdempotentReply{Key: k, Status: 200 + i, CreatedAt: at}))
			}
			e.ok(e.s.ExpireIdempotentReplies(e.ctx, base.Add(-time.Minute)))
			for _, k := range []string{"old1", "old2"} {
				_, err := e.s.GetIdempotentReply(e.ctx, k)
				wantCode(e.t, err, store.ErrNotFound)
			}
			_, err := e.s.GetIdempotentReply(e.ctx, "new")
			e.ok(err)
			// an expired key can be stored again
			e.ok(e.s.PutIdempotentReply(e.ctx, store.IdempotentReply{Key: "old1", Status: 204}))
		}},

		// Notify
		{"Notify", "AfterCommit", func(e *env) {
			e.coll("a")
			e.drainNotify()
			for i := range 3 {
				r := e.put("a", fmt.Sprint("r", i), `{}`, nil)
				if !e.waitNotify(5 * time.Second) {
					e.t.Fatalf("no notification after write %d", i)
				}
				// the write is visible to readers once notified
				cs := e.changes(r.Revision-1, 0)
				if len(cs) == 0 || cs[0].Revision != r.Revision {
					e.t.Fatalf("after notify, Changes(%d) = %+v", r.Revision-1, cs)
				}
				e.drainNotify()
			}
			e.ok(e.s.DeleteCollection(e.ctx, "a"))
			if !e.waitNotify(5 * time.Second) {
				e.t.Fatal("no notification after DeleteCollection")
			}
		}},
		{"Notify", "NeverBlocksWriters", func(e *env) {
			e.coll("a")
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range 20 {
					if _, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: fmt.Sprint("r", i), Data: json.RawMessage(`{}`)}, store.Precondition{}); err != nil {
						e.t.Error(err)
						return
					}
				}
			}()
			select {
			case <-done:
			case <-time.After(time.Minute):
				e.t.Fatal("writers blocked while nobody received from Notify")
			}
			if !e.waitNotify(5 * time.Second) {
				e.t.Fatal("no pending notification")
			}
			if e.s.Notify() != e.s.Notify() {
				e.t.Fatal("Notify returned different channels")
			}
		}},

		// Concurrency
		{"Concurrency", "Writers", func(e *env) {
			const writers, perWriter = 8, 50
			e.coll("a")
			e.coll("b")
			base := e.rev()
			var mu sync.Mutex
			revs := map[int64]string{}
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					coll := []string{"a", "b"}[w%2]
					for i := range perWriter {
						id := fmt.Sprintf("w%d-%d", w, i%10)
						r, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: coll, ID: id,
							Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}, store.Precondition{})
						if err != nil {
							e.t.Errorf("writer %d: %v", w, err)
							return
						}
						mu.Lock()
						if prev, dup := revs[r.Revision]; dup {
							e.t.Errorf("revision %d returned twice (%s and %s)", r.Revision, prev, id)
						}
						revs[r.Revision] = coll + "/" + id
						mu.Unlock()
					}
				}()
			}
			// a concurrent reader must never observe a gap
			stop := make(chan struct{})
			readerDone := make(chan struct{})
			go func() {
				defer close(readerDone)
				after := base
				for {
					cs, err := e.s.Changes(e.ctx, after, 37)
					if err != nil {
						e.t.Errorf("reader: %v", err)
						return
					}
					for _, c := range cs {
						if c.Revision != after+1 {
							e.t.Errorf("reader saw revision %d after %d", c.Revision, after)
							return
						}
						after = c.Revision
					}
					select {
					case <-stop:
						if len(cs) == 0 {
							return // every write has committed and been read
						}
					default:
						if len(cs) == 0 {
							time.Sleep(time.Millisecond)
						}
					}
				}
			}()
			wg.Wait()
			close(stop)
			<-readerDone
			if e.t.Failed() {
				return
			}
			total := int64(writers * perWriter)
			e.wantRev(base + total)
			cs := e.changes(base, int(total)+10)
			if int64(len(cs)) != total {
				e.t.Fatalf("%d changes, want %d", len(cs), total)
			}
			for i, c := range cs {
				want := base + 1 + int64(i)
				if c.Revision != want {
					e.t.Fatalf("change %d has revision %d, want %d (gap or disorder)", i, c.Revision, want)
				}
				if got := c.Resource.Collection + "/" + c.Resource.ID; revs[c.Revision] != got {
					e.t.Fatalf("change at %d is %s, but that revision was returned for %s", c.Revision, got, revs[c.Revision])
				}
			}
			// every resource's revision is its last change's revision
			last := map[string]int64{}
			for _, c := range cs {
				last[c.Resource.Collection+"/"+c.Resource.ID] = c.Revision
			}
			keys := make([]string, 0, len(last))
			for k := range last {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				coll, id, _ := strings.Cut(k, "/")
				r, err := e.s.GetResource(e.ctx, coll, id)
				e.ok(err)
				if r.Revision != last[k] {
					e.t.Fatalf("%s at revision %d, want %d", k, r.Revision, last[k])
				}
			}
		}},
		{"Concurrency", "PreconditionRace", func(e *env) {
			e.coll("a")
			r := e.put("a", "r", `{}`, nil)
			const n = 8
			var wg sync.WaitGroup
			var mu sync.Mutex
			wins, fails := 0, 0
			for range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "a", ID: "r", Data: json.RawMessage(`{}`)}, store.Precondition{IfMatch: r.Revision})
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						wins++
					case errors.Is(err, store.ErrPreconditionFailed):
						fails++
					default:
						e.t.Errorf("unexpected error %v", err)
					}
				}()
			}
			wg.Wait()
			if wins != 1 || fails != n-1 {
				e.t.Fatalf("%d writers won and %d failed, want 1 and %d", wins, fails, n-1)
			}
		}},
	}
}
