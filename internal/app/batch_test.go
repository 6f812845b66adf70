package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/sqlite"
)

const ordersSchema = `{"type":"object","properties":{"item":{"type":"string"},"qty":{"type":"integer","minimum":1}}}`

// newBatchApp is an App on a fresh SQLite store (wrapped by wrap, when
// given) with collections orders (with a schema) and logs, and o-1 in
// orders.
func newBatchApp(t testing.TB, opts Options, wrap func(store.Store) store.Store) (*App, store.Store) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var s store.Store = st
	if wrap != nil {
		s = wrap(st)
	}
	a := New(s, opts)
	if _, err := a.CreateCollection(t.Context(), everyone, "orders", json.RawMessage(ordersSchema)); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateCollection(t.Context(), everyone, "logs", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateResource(t.Context(), everyone, "orders", "o-1", json.RawMessage(`{"item":"tea","qty":1}`), map[string]string{"env": "prod", "tier": "a"}); err != nil {
		t.Fatal(err)
	}
	return a, st
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestBatch(t *testing.T) {
	a, st := newBatchApp(t, Options{}, nil)
	ctx := t.Context()
	base, _ := st.Revision(ctx)
	res, err := a.Batch(ctx, everyone, []BatchOp{
		{Kind: BatchCreate, Collection: "logs", Data: raw(`{"m":"made"}`)},
		{Kind: BatchCreate, Collection: "orders", ID: "o-2", Data: raw(`{"item":"cake","qty":2}`), Labels: raw(`{"env":"dev"}`)},
		{Kind: BatchPatch, Collection: "orders", ID: "o-1", Data: raw(`{"qty":5}`), Labels: raw(`{"tier":null,"new":"x"}`), IfMatch: base},
		{Kind: BatchPatch, Collection: "orders", ID: "o-2", Data: raw(`{"item":null}`)}, // sees the create
		{Kind: BatchPut, Collection: "logs", ID: "l-1", Data: raw(`{}`), CreateOnly: true},
		{Kind: BatchDelete, Collection: "logs", ID: "l-1", IfMatch: base + 5},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.LastRevision != base+6 || len(res.Results) != 6 || res.ID == "" {
		t.Fatalf("result = %+v", res)
	}
	kinds := []BatchOpKind{BatchCreate, BatchCreate, BatchPatch, BatchPatch, BatchPut, BatchDelete}
	created := []bool{true, true, false, false, true, false}
	for i, r := range res.Results {
		if r.Kind != kinds[i] || r.Created != created[i] || r.Resource.Revision != base+1+int64(i) {
			t.Fatalf("result %d = %s created=%v revision %d", i, r.Kind, r.Created, r.Resource.Revision)
		}
	}
	if id := res.Results[0].Resource.ID; len(id) != 26 {
		t.Fatalf("server-made ID %q", id)
	}
	o1, err := a.GetResource(ctx, everyone, "orders", "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if string(o1.Data) != `{"item":"tea","qty":5}` || !reflect.DeepEqual(o1.Labels, map[string]string{"env": "prod", "new": "x"}) {
		t.Fatalf("o-1 = %s %v", o1.Data, o1.Labels)
	}
	o2, _ := a.GetResource(ctx, everyone, "orders", "o-2")
	if string(o2.Data) != `{"qty":2}` || o2.Revision != base+4 {
		t.Fatalf("o-2 = %s at %d", o2.Data, o2.Revision)
	}
	if _, err := a.GetResource(ctx, everyone, "logs", "l-1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("l-1 after its delete: %v", err)
	}
	cs, _ := st.Changes(ctx, base, 0)
	for _, c := range cs {
		if c.Batch == nil || c.Batch.ID != res.ID || c.Batch.LastRevision != res.LastRevision {
			t.Fatalf("change %d carries %+v", c.Revision, c.Batch)
		}
	}
}

func TestBatchErrors(t *testing.T) {
	writer := principal(auth.KindJWT, "w", "write:collections/orders/**", "read:**")
	put := func(coll, id, data string) BatchOp {
		return BatchOp{Kind: BatchPut, Collection: coll, ID: id, Data: raw(data)}
	}
	ok := put("logs", "fine", `{}`)
	tests := []struct {
		name    string
		p       auth.Principal
		ops     []BatchOp
		code    store.Code
		op      int    // -1: none
		pointer string // "": not checked
	}{
		{"Empty", everyone, nil, store.CodeInvalid, -1, "/operations"},
		{"TooMany", everyone, []BatchOp{ok, ok, ok, ok}, store.CodeTooLarge, -1, ""},
		{"UnknownOp", everyone, []BatchOp{ok, {Kind: "merge", Collection: "logs", ID: "x"}}, store.CodeInvalid, 1, "/operations/1/op"},
		{"MissingID", everyone, []BatchOp{ok, {Kind: BatchPut, Collection: "logs", Data: raw(`{}`)}}, store.CodeInvalid, 1, "/operations/1/id"},
		{"BadCollection", everyone, []BatchOp{{Kind: BatchPut, Collection: "-x", ID: "x", Data: raw(`{}`)}}, store.CodeInvalid, 0, "/operations/0/collection"},
		{"MissingData", everyone, []BatchOp{{Kind: BatchCreate, Collection: "logs"}}, store.CodeInvalid, 0, "/operations/0/data"},
		{"DeleteWithData", everyone, []BatchOp{{Kind: BatchDelete, Collection: "orders", ID: "o-1", Data: raw(`{}`)}}, store.CodeInvalid, 0, "/operations/0/data"},
		{"CreateWithIfMatch", everyone, []BatchOp{{Kind: BatchCreate, Collection: "logs", Data: raw(`{}`), IfMatch: 1}}, store.CodeInvalid, 0, "/operations/0/ifMatch"},
		{"PatchWithIfNoneMatch", everyone, []BatchOp{{Kind: BatchPatch, Collection: "orders", ID: "o-1", CreateOnly: true}}, store.CodeInvalid, 0, "/operations/0/ifNoneMatch"},
		{"NullLabelInPut", everyone, []BatchOp{ok, {Kind: BatchPut, Collection: "logs", ID: "x", Data: raw(`{}`), Labels: raw(`{"env":null}`)}}, store.CodeInvalid, 1, "/operations/1/labels/env"},
		{"BadLabel", everyone, []BatchOp{ok, ok, {Kind: BatchPut, Collection: "logs", ID: "x", Data: raw(`{}`), Labels: raw(`{"-k":"v"}`)}}, store.CodeInvalid, 2, "/operations/2/labels/-k"},
		{"Schema", everyone, []BatchOp{ok, ok, put("orders", "o-9", `{"qty":0}`)}, store.CodeUnprocessable, 2, "/operations/2/data/qty"},
		{"SchemaAfterPatch", everyone, []BatchOp{{Kind: BatchPatch, Collection: "orders", ID: "o-1", Data: raw(`{"qty":"many"}`)}, ok}, store.CodeUnprocessable, 0, "/operations/0/data/qty"},
		{"MissingCollection", everyone, []BatchOp{ok, put("nope", "x", `{}`)}, store.CodeNotFound, 1, ""},
		{"PatchMissing", everyone, []BatchOp{ok, {Kind: BatchPatch, Collection: "orders", ID: "o-9", Data: raw(`{}`)}}, store.CodeNotFound, 1, ""},
		{"DeleteMissing", everyone, []BatchOp{{Kind: BatchDelete, Collection: "orders", ID: "o-9"}, ok}, store.CodeNotFound, 0, ""},
		{"PatchAfterDelete", everyone, []BatchOp{{Kind: BatchDelete, Collection: "orders", ID: "o-1"}, {Kind: BatchPatch, Collection: "orders", ID: "o-1", Data: raw(`{}`)}}, store.CodeNotFound, 1, ""},
		{"CreateExisting", everyone, []BatchOp{ok, {Kind: BatchCreate, Collection: "orders", ID: "o-1", Data: raw(`{}`)}, ok}, store.CodeConflict, 1, ""},
		{"PutIfNoneMatch", everyone, []BatchOp{{Kind: BatchPut, Collection: "orders", ID: "o-1", Data: raw(`{}`), CreateOnly: true}}, store.CodePreconditionFailed, 0, ""},
		{"PutIfMatch", everyone, []BatchOp{ok, {Kind: BatchPut, Collection: "orders", ID: "o-1", Data: raw(`{}`), IfMatch: 99}}, store.CodePreconditionFailed, 1, ""},
		{"PatchIfMatch", everyone, []BatchOp{ok, ok, {Kind: BatchPatch, Collection: "orders", ID: "o-1", Data: raw(`{}`), IfMatch: 99}}, store.CodePreconditionFailed, 2, ""},
		{"DeleteIfMatch", everyone, []BatchOp{{Kind: BatchDelete, Collection: "orders", ID: "o-1", IfMatch: 99}}, store.CodePreconditionFailed, 0, ""},
		{"Forbidden", writer, []BatchOp{put("orders", "o-5", `{}`), put("logs", "x", `{}`)}, store.CodeForbidden, 1, ""},
		{"ForbiddenBeforeValidation", writer, []BatchOp{put("orders", "o-5", `{"qty":0}`), put("logs", "x", `{}`)}, store.CodeForbidden, 1, ""},
		{"ForbiddenCreate", principal(auth.KindJWT, "w", "write:collections/orders/resources/o-1"), []BatchOp{{Kind: BatchCreate, Collection: "orders", Data: raw(`{}`)}}, store.CodeForbidden, 0, ""},
		{"Anonymous", anonymous, []BatchOp{ok}, store.CodeUnauthenticated, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, st := newBatchApp(t, Options{MaxBatchOps: 3}, nil)
			before, _ := st.Revision(t.Context())
			_, err := a.Batch(t.Context(), tt.p, tt.ops)
			if err == nil {
				t.Fatal("the batch was applied")
			}
			if got := errCode(err); got != tt.code {
				t.Fatalf("error %v has code %q, want %q", err, got, tt.code)
			}
			var be *store.BatchOpError
			if got := errors.As(err, &be); got != (tt.op >= 0) || (got && be.Index != tt.op) {
				t.Fatalf("error %v names operation %+v, want %d", err, be, tt.op)
			}
			if tt.pointer != "" {
				var ve *ValidationError
				if !errors.As(err, &ve) || len(ve.Fields) == 0 || ve.Fields[0].Pointer != tt.pointer {
					t.Fatalf("error %#v, want a field at %s", err, tt.pointer)
				}
			}
			if after, _ := st.Revision(t.Context()); after != before {
				t.Fatalf("revision moved from %d to %d", before, after)
			}
		})
	}
}

// errCode is the code of a batch error, auth errors included.
func errCode(err error) store.Code {
	switch {
	case errors.Is(err, auth.ErrInsufficientScope):
		return store.CodeForbidden
	case errors.Is(err, auth.ErrNoToken):
		return store.CodeUnauthenticated
	}
	return store.ErrorCode(err)
}

// racingStore writes o-1 behind the App's back before each of the first
// races batches, as a concurrent writer would between the App's read and
// the batch.
var _ store.Store = (*racingStore)(nil)

type racingStore struct {
	store.Store
	races   int64
	batches atomic.Int64
}

func (s *racingStore) Batch(ctx context.Context, id string, ops []store.BatchOp) (store.BatchResult, error) {
	if n := s.batches.Add(1); n <= s.races {
		cur, err := s.GetResource(ctx, "orders", "o-1")
		if err != nil {
			return store.BatchResult{}, err
		}
		var d map[string]any
		_ = json.Unmarshal(cur.Data, &d)
		d[fmt.Sprint("race", n)] = n
		b, _ := json.Marshal(d)
		cur.Data = b
		if _, _, err := s.PutResource(ctx, cur, store.Precondition{}); err != nil {
			return store.BatchResult{}, err
		}
	}
	return s.Store.Batch(ctx, id, ops)
}

func TestBatchPatchRetries(t *testing.T) {
	tests := []struct {
		name    string
		races   int64
		ifMatch bool
		code    store.Code // "": applied
	}{
		{"Retried", 3, false, ""},
		{"Exhausted", maxBatchAttempts, false, store.CodeConflict},
		{"ExplicitIfMatchNotRetried", 1, true, store.CodePreconditionFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs *racingStore
			a, st := newBatchApp(t, Options{}, func(s store.Store) store.Store {
				rs = &racingStore{Store: s, races: tt.races}
				return rs
			})
			op := BatchOp{Kind: BatchPatch, Collection: "orders", ID: "o-1", Data: raw(`{"qty":7}`)}
			if tt.ifMatch {
				cur, _ := st.GetResource(t.Context(), "orders", "o-1")
				op.IfMatch = cur.Revision
			}
			_, err := a.Batch(t.Context(), everyone, []BatchOp{{Kind: BatchPut, Collection: "logs", ID: "l", Data: raw(`{}`)}, op})
			if tt.code != "" {
				var be *store.BatchOpError
				if store.ErrorCode(err) != tt.code || !errors.As(err, &be) || be.Index != 1 {
					t.Fatalf("error %v, want %s naming operation 1", err, tt.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cur, _ := st.GetResource(t.Context(), "orders", "o-1")
			var d map[string]any
			_ = json.Unmarshal(cur.Data, &d)
			if d["qty"] != 7.0 || d["race3"] != 3.0 || rs.batches.Load() != tt.races+1 {
				t.Fatalf("o-1 = %s after %d batch calls: a concurrent write was lost", cur.Data, rs.batches.Load())
			}
		})
	}
}
