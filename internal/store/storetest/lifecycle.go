// Conformance cases for the store as a whole: its epoch, reopening a
// database, Ping.

package storetest

import (
	"fmt"
	"reflect"

	"github.com/tandemhq/tandem/internal/store"
)

func lifecycleCases() []testCase {
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
	}
}
