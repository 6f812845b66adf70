// Conformance cases for stored idempotent replies.

package storetest

import (
	"reflect"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func idempotentReplyCases() []testCase {
	return []testCase{
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
	}
}
