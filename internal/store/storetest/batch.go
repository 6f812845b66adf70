// Conformance cases for atomic batches (Store.Batch).

package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func putOp(coll, id, data string, labels map[string]string, cond store.Precondition) store.BatchOp {
	return store.BatchOp{Resource: store.Resource{Collection: coll, ID: id, Data: json.RawMessage(data), Labels: labels}, Cond: cond}
}

func deleteOp(coll, id string, cond store.Precondition) store.BatchOp {
	return store.BatchOp{Delete: true, Resource: store.Resource{Collection: coll, ID: id}, Cond: cond}
}

// wantUnchanged checks that a failed batch left revision rev, the change
// log and the state of a/keep as they were.
func (e *env) wantUnchanged(rev int64, keep store.Resource) {
	e.t.Helper()
	e.wantRev(rev)
	if cs := e.changes(rev, 0); len(cs) != 0 {
		e.t.Fatalf("a failed batch appended %d changes: %+v", len(cs), cs)
	}
	got, err := e.s.GetResource(e.ctx, keep.Collection, keep.ID)
	e.ok(err)
	if got.Revision != keep.Revision {
		e.t.Fatalf("%s/%s is at revision %d after a failed batch, want %d", keep.Collection, keep.ID, got.Revision, keep.Revision)
	}
	for _, id := range []string{"new-1", "new-2"} {
		if _, err := e.s.GetResource(e.ctx, "b", id); !errors.Is(err, store.ErrNotFound) {
			e.t.Fatalf("b/%s after a failed batch: %v, want not found", id, err)
		}
	}
}

func batchCases() []testCase {
	return []testCase{
		{"Batch", "OK", func(e *env) {
			e.coll("a")
			e.coll("b")
			old := e.put("a", "old", `{"v":0}`, lbl("k", "0"))
			gone := e.put("b", "gone", `{}`, nil)
			base := e.rev()
			res, err := e.s.Batch(e.ctx, "batch-1", []store.BatchOp{
				putOp("a", "new", `{"v":1}`, lbl("k", "1"), store.Precondition{CreateOnly: true}),
				putOp("a", "old", `{"v":2}`, nil, store.Precondition{IfMatch: old.Revision}),
				deleteOp("b", "gone", store.Precondition{IfMatch: gone.Revision}),
				// sees the earlier operations of the batch
				putOp("a", "new", `{"v":3}`, nil, store.Precondition{IfMatch: base + 1}),
				putOp("b", "gone", `{"back":true}`, nil, store.Precondition{CreateOnly: true}),
			})
			e.ok(err)
			if res.ID != "batch-1" || res.LastRevision != base+5 || res.FirstRevision() != base+1 || len(res.Results) != 5 {
				e.t.Fatalf("result = %+v, want batch-1 with revisions %d..%d", res, base+1, base+5)
			}
			e.wantRev(base + 5)
			for i, r := range res.Results {
				if r.Resource.Revision != base+1+int64(i) {
					e.t.Fatalf("operation %d has revision %d, want %d", i, r.Resource.Revision, base+1+int64(i))
				}
			}
			if created := []bool{res.Results[0].Created, res.Results[1].Created, res.Results[3].Created, res.Results[4].Created}; !reflect.DeepEqual(created, []bool{true, false, false, true}) {
				e.t.Fatalf("created = %v", created)
			}
			if res.Results[2].Resource.ID != "gone" || res.Results[1].Resource.CreatedAt != old.CreatedAt {
				e.t.Fatalf("results = %+v", res.Results)
			}
			cs := e.changes(base, 0)
			wantTypes := []store.ChangeType{store.Created, store.Updated, store.Deleted, store.Updated, store.Created}
			for i, c := range cs {
				if c.Revision != base+1+int64(i) || c.Type != wantTypes[i] {
					e.t.Fatalf("change %d = revision %d %s, want %d %s", i, c.Revision, c.Type, base+1+int64(i), wantTypes[i])
				}
				if c.Batch == nil || *c.Batch != (store.BatchRef{ID: "batch-1", LastRevision: base + 5}) {
					e.t.Fatalf("change %d carries batch %+v", i, c.Batch)
				}
			}
			if len(cs) != 5 || cs[3].Prev == nil || cs[3].Prev.Revision != base+1 {
				e.t.Fatalf("changes = %+v", cs)
			}
			got, err := e.s.GetResource(e.ctx, "a", "new")
			e.ok(err)
			jsonEqual(e.t, got.Data, `{"v":3}`)
			// writes outside a batch carry none
			e.put("a", "after", `{}`, nil)
			if c := e.changes(base+5, 0); len(c) != 1 || c[0].Batch != nil {
				e.t.Fatalf("a single write's change = %+v, want no batch", c)
			}
		}},
		{"Batch", "AllOrNothing", func(e *env) {
			e.coll("a")
			e.coll("b")
			keep := e.put("a", "keep", `{"v":1}`, nil)
			good := []store.BatchOp{
				putOp("b", "new-1", `{}`, nil, store.Precondition{}),
				putOp("a", "keep", `{"v":2}`, nil, store.Precondition{IfMatch: keep.Revision}),
				putOp("b", "new-2", `{}`, nil, store.Precondition{CreateOnly: true}),
			}
			bad := []struct {
				name string
				op   store.BatchOp
				want error
			}{
				{"MissingCollection", putOp("nope", "x", `{}`, nil, store.Precondition{}), store.ErrNotFound},
				{"MissingResource", putOp("a", "missing", `{}`, nil, store.Precondition{MustExist: true}), store.ErrNotFound},
				{"DeleteMissing", deleteOp("a", "missing", store.Precondition{}), store.ErrNotFound},
				{"IfMatch", putOp("a", "keep", `{}`, nil, store.Precondition{IfMatch: keep.Revision + 100}), store.ErrPreconditionFailed},
				{"CreateOnly", putOp("a", "keep", `{}`, nil, store.Precondition{CreateOnly: true}), store.ErrPreconditionFailed},
				{"DeleteIfMatch", deleteOp("a", "keep", store.Precondition{IfMatch: keep.Revision + 100}), store.ErrPreconditionFailed},
				{"BadData", putOp("a", "x", `[1]`, nil, store.Precondition{}), store.ErrInvalid},
				{"BadID", putOp("a", "-x", `{}`, nil, store.Precondition{}), store.ErrInvalid},
				{"BadLabels", putOp("a", "x", `{}`, lbl("-k", "v"), store.Precondition{}), store.ErrInvalid},
			}
			for _, b := range bad {
				for pos := 0; pos <= len(good); pos++ { // first, middle, last
					ops := append(append(append([]store.BatchOp{}, good[:pos]...), b.op), good[pos:]...)
					rev := e.rev()
					_, err := e.s.Batch(e.ctx, "b1", ops)
					wantCode(e.t, err, b.want)
					var be *store.BatchOpError
					if !errors.As(err, &be) || be.Index != pos {
						e.t.Fatalf("%s at %d: error %v names operation %+v, want %d", b.name, pos, err, be, pos)
					}
					if msg := store.ErrorMessage(err); !strings.HasPrefix(msg, fmt.Sprintf("operation %d: ", pos)) {
						e.t.Fatalf("%s at %d: message %q does not name the operation", b.name, pos, msg)
					}
					e.wantUnchanged(rev, keep)
				}
			}
		}},
		{"Batch", "Invalid", func(e *env) {
			e.coll("a")
			rev := e.rev()
			many := make([]store.BatchOp, store.MaxBatchOps+1)
			for i := range many {
				many[i] = putOp("a", fmt.Sprint("r", i), `{}`, nil, store.Precondition{})
			}
			for name, call := range map[string]func() error{
				"Empty":   func() error { _, err := e.s.Batch(e.ctx, "b", nil); return err },
				"BadID":   func() error { _, err := e.s.Batch(e.ctx, "", many[:1]); return err },
				"TooMany": func() error { _, err := e.s.Batch(e.ctx, "b", many); return err },
			} {
				err := call()
				wantCode(e.t, err, store.ErrInvalid)
				var be *store.BatchOpError
				if errors.As(err, &be) {
					e.t.Fatalf("%s: %v names an operation", name, err)
				}
			}
			e.wantRev(rev)
		}},
		{"Batch", "Notify", func(e *env) {
			e.coll("a")
			e.drainNotify()
			_, err := e.s.Batch(e.ctx, "b", []store.BatchOp{putOp("a", "r", `{}`, nil, store.Precondition{})})
			e.ok(err)
			if !e.waitNotify(5 * time.Second) {
				e.t.Fatal("no notification after a batch")
			}
		}},
		{"Batch", "ConcurrentWritesInterleaveOnlyBetweenBatches", func(e *env) {
			const batches, size, singles = 20, 10, 100
			e.coll("a")
			e.coll("b")
			base := e.rev()
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				for i := range singles {
					if _, _, err := e.s.PutResource(e.ctx, store.Resource{Collection: "b", ID: fmt.Sprint("s", i%7), Data: json.RawMessage(`{}`)}, store.Precondition{}); err != nil {
						e.t.Errorf("single write: %v", err)
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				for i := range batches {
					ops := make([]store.BatchOp, size)
					for j := range ops {
						ops[j] = putOp([]string{"a", "b"}[j%2], fmt.Sprintf("b%d", j), fmt.Sprintf(`{"i":%d}`, i), nil, store.Precondition{})
					}
					if _, err := e.s.Batch(e.ctx, fmt.Sprint("batch-", i), ops); err != nil {
						e.t.Errorf("batch %d: %v", i, err)
						return
					}
				}
			}()
			wg.Wait()
			if e.t.Failed() {
				return
			}
			cs := e.changes(base, 0)
			if len(cs) != batches*size+singles {
				e.t.Fatalf("%d changes, want %d", len(cs), batches*size+singles)
			}
			seen := map[string]bool{}
			for i := 0; i < len(cs); i++ {
				c := cs[i]
				if c.Batch == nil {
					continue
				}
				if seen[c.Batch.ID] {
					e.t.Fatalf("batch %s is split by another write", c.Batch.ID)
				}
				seen[c.Batch.ID] = true
				for j := range size { // the batch's changes follow each other, ending at its last revision
					if k := i + j; k >= len(cs) || cs[k].Batch == nil || *cs[k].Batch != *c.Batch || cs[k].Revision != c.Revision+int64(j) {
						e.t.Fatalf("change %d of batch %s is missing or not contiguous", j, c.Batch.ID)
					}
				}
				if cs[i+size-1].Revision != c.Batch.LastRevision {
					e.t.Fatalf("batch %s ends at %d, its LastRevision is %d", c.Batch.ID, cs[i+size-1].Revision, c.Batch.LastRevision)
				}
				i += size - 1
			}
			if len(seen) != batches {
				e.t.Fatalf("%d batches in the log, want %d", len(seen), batches)
			}
		}},
	}
}
