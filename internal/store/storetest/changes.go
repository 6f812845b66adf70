// Conformance cases for the change log: revisions, Changes, Compact, and
// the commit notification.

package storetest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func changeLogCases() []testCase {
	return []testCase{
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
		{"Changes", "Trace", func(e *env) {
			// Each change keeps the traceparent of the write's context
			// (store.WithTrace); writes without one leave it empty.
			const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
			e.coll("a")
			traced := store.WithTrace(e.ctx, tp)
			_, _, err := e.s.PutResource(traced, store.Resource{Collection: "a", ID: "t", Data: json.RawMessage(`{}`)}, store.Precondition{})
			e.ok(err)
			e.put("a", "u", `{}`, nil)
			_, err = e.s.DeleteResource(traced, "a", "u", store.Precondition{})
			e.ok(err)
			cs := e.changes(0, 0)
			var got []string
			for _, c := range cs {
				got = append(got, c.Trace)
			}
			if want := []string{tp, "", tp}; !reflect.DeepEqual(got, want) {
				e.t.Fatalf("traces = %q, want %q", got, want)
			}
		}},
		{"Changes", "Contents", func(e *env) {
			e.coll("a")
			c1 := e.put("a", "r", `{"v":1}`, lbl("k", "1"))
			c2 := e.put("a", "r", `{"v":2}`, lbl("k", "2"))
			d, err := e.s.DeleteResource(e.ctx, "a", "r", store.Precondition{})
			e.ok(err)
			cs := e.changes(0, 0)
			want := []store.Change{
				{Revision: 2, Type: store.Created, Resource: c1},
				{Revision: 3, Type: store.Updated, Resource: c2, PrevLabels: lbl("k", "1"), Prev: &c1},
				{Revision: 4, Type: store.Deleted, Resource: d, PrevLabels: lbl("k", "2"), Prev: &c2},
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
	}
}

func notifyCases() []testCase {
	return []testCase{
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
	}
}
