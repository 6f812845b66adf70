// Conformance cases for webhook delivery leases and delivery status.

package storetest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// shortLease is the ttl of the leases the cases wait out; leaseDeadline
// is how long they wait before failing.
const (
	shortLease    = 50 * time.Millisecond
	leaseDeadline = 5 * time.Second
)

func (e *env) acquire(id, owner string, ttl time.Duration) store.Webhook {
	e.t.Helper()
	w, err := e.s.AcquireWebhookLease(e.ctx, id, owner, ttl)
	e.ok(err)
	return w
}

// acquireEventually retries until owner acquires webhook id's lease (each
// refusal must be ErrConflict) and fails the test after leaseDeadline.
func (e *env) acquireEventually(id, owner string, ttl time.Duration) store.Webhook {
	e.t.Helper()
	deadline := time.Now().Add(leaseDeadline)
	for {
		w, err := e.s.AcquireWebhookLease(e.ctx, id, owner, ttl)
		if err == nil {
			return w
		}
		wantCode(e.t, err, store.ErrConflict)
		if time.Now().After(deadline) {
			e.t.Fatalf("%s could not acquire webhook %q's lease within %v: %v", owner, id, leaseDeadline, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sampleStatus is a delivery status with every field set.
func sampleStatus() store.WebhookStatus {
	at := time.Date(2025, 5, 6, 7, 8, 9, 654321000, time.UTC)
	return store.WebhookStatus{State: store.WebhookResyncRequired, Cursor: "c-1000", LastError: "cursor compacted",
		LastSuccessAt: at, FailingSince: at.Add(time.Second), Attempts: 7, ResyncNotified: true}
}

func webhookLeaseCases() []testCase {
	return []testCase{
		{"WebhookLease", "Acquire", func(e *env) {
			created := e.hook("w")
			before := time.Now()
			got := e.acquire("w", "n1", time.Minute)
			after := time.Now()
			if got.LeaseOwner != "n1" {
				e.t.Fatalf("LeaseOwner = %q, want n1", got.LeaseOwner)
			}
			checkTime(e.t, "LeaseUntil", got.LeaseUntil, before.Add(time.Minute), after.Add(time.Minute))
			want := created
			want.LeaseOwner, want.LeaseUntil = "n1", got.LeaseUntil
			wantHook(e.t, "AcquireWebhookLease", got, want)
			wantHook(e.t, "GetWebhook", e.getHook("w"), want)
		}},
		{"WebhookLease", "ErrInvalid", func(e *env) {
			e.hook("w")
			for _, c := range []struct {
				owner string
				ttl   time.Duration
			}{{"", time.Minute}, {"n1", 0}, {"n1", -time.Second}} {
				_, err := e.s.AcquireWebhookLease(e.ctx, "w", c.owner, c.ttl)
				wantCode(e.t, err, store.ErrInvalid)
			}
			if w := e.getHook("w"); w.LeaseOwner != "" {
				e.t.Fatalf("refused acquire left a lease: %+v", w)
			}
		}},
		{"WebhookLease", "OtherOwnerConflict", func(e *env) {
			e.hook("w")
			held := e.acquire("w", "n1", time.Minute)
			_, err := e.s.AcquireWebhookLease(e.ctx, "w", "n2", time.Minute)
			wantCode(e.t, err, store.ErrConflict)
			if msg := store.ErrorMessage(err); !strings.Contains(msg, "leased") {
				e.t.Fatalf("conflict message %q does not say the webhook is leased", msg)
			}
			wantHook(e.t, "GetWebhook", e.getHook("w"), held)
		}},
		{"WebhookLease", "SameOwnerRenews", func(e *env) {
			e.hook("w")
			first := e.acquire("w", "n1", time.Minute)
			second := e.acquire("w", "n1", 2*time.Minute)
			if second.LeaseOwner != "n1" || !second.LeaseUntil.After(first.LeaseUntil) {
				e.t.Fatalf("renewed lease = %q until %v, want n1 after %v", second.LeaseOwner, second.LeaseUntil, first.LeaseUntil)
			}
			wantHook(e.t, "GetWebhook", e.getHook("w"), second)
		}},
		{"WebhookLease", "Expires", func(e *env) {
			e.hook("w")
			e.acquire("w", "n1", shortLease)
			got := e.acquireEventually("w", "n2", time.Minute)
			if got.LeaseOwner != "n2" {
				e.t.Fatalf("LeaseOwner = %q, want n2", got.LeaseOwner)
			}
			_, err := e.s.AcquireWebhookLease(e.ctx, "w", "n1", time.Minute)
			wantCode(e.t, err, store.ErrConflict)
			_, err = e.s.RecordWebhookStatus(e.ctx, "w", "n1", got.Generation, sampleStatus())
			wantCode(e.t, err, store.ErrConflict)
		}},
		{"WebhookLease", "Release", func(e *env) {
			e.hook("w")
			held := e.acquire("w", "n1", time.Minute)
			e.ok(e.s.ReleaseWebhookLease(e.ctx, "w", "n2")) // not the holder: nothing happens
			wantHook(e.t, "after another owner's release", e.getHook("w"), held)
			_, err := e.s.AcquireWebhookLease(e.ctx, "w", "n2", time.Minute)
			wantCode(e.t, err, store.ErrConflict)
			e.ok(e.s.ReleaseWebhookLease(e.ctx, "w", "n1"))
			if w := e.getHook("w"); w.LeaseOwner != "" || w.LeaseUntil != (time.Time{}) {
				e.t.Fatalf("released lease = %q until %v, want none", w.LeaseOwner, w.LeaseUntil)
			}
			e.ok(e.s.ReleaseWebhookLease(e.ctx, "w", "n1")) // released twice: nothing happens
			if got := e.acquire("w", "n2", time.Minute); got.LeaseOwner != "n2" {
				e.t.Fatalf("LeaseOwner = %q, want n2", got.LeaseOwner)
			}
		}},
		{"WebhookLease", "ConcurrentAcquire", func(e *env) {
			e.hook("w")
			errs := concurrently(8, func(i int) error {
				_, err := e.s.AcquireWebhookLease(e.ctx, "w", fmt.Sprint("n", i), time.Minute)
				return err
			})
			winner := ""
			for i, err := range errs {
				switch {
				case err == nil && winner != "":
					e.t.Fatalf("both %s and n%d acquired the lease", winner, i)
				case err == nil:
					winner = fmt.Sprint("n", i)
				case !errors.Is(err, store.ErrConflict):
					e.t.Fatalf("n%d: %v, want nil or ErrConflict", i, err)
				}
			}
			if w := e.getHook("w"); winner == "" || w.LeaseOwner != winner {
				e.t.Fatalf("lease holder = %q, want the one winner %q", w.LeaseOwner, winner)
			}
		}},

		{"WebhookStatus", "Record", func(e *env) {
			e.hook("w")
			held := e.acquire("w", "n1", time.Minute)
			got, err := e.s.RecordWebhookStatus(e.ctx, "w", "n1", held.Generation, sampleStatus())
			e.ok(err)
			want := held
			want.WebhookStatus = sampleStatus()
			wantHook(e.t, "RecordWebhookStatus", got, want)
			wantHook(e.t, "GetWebhook", e.getHook("w"), want)
			// every field is stored, zero values included; times are normalised
			zone := time.FixedZone("Y", -7*3600)
			st := store.WebhookStatus{State: store.WebhookActive, LastSuccessAt: time.Date(2025, 1, 1, 1, 1, 1, 999, zone)}
			got, err = e.s.RecordWebhookStatus(e.ctx, "w", "n1", held.Generation, st)
			e.ok(err)
			want.WebhookStatus = store.WebhookStatus{State: store.WebhookActive,
				LastSuccessAt: time.Date(2025, 1, 1, 8, 1, 1, 0, time.UTC)}
			wantHook(e.t, "RecordWebhookStatus", got, want)
			wantHook(e.t, "GetWebhook", e.getHook("w"), want)
		}},
		{"WebhookStatus", "ConflictNotHolder", func(e *env) {
			created := e.hook("w")
			_, err := e.s.RecordWebhookStatus(e.ctx, "w", "n1", created.Generation, sampleStatus())
			wantCode(e.t, err, store.ErrConflict) // no one holds the lease
			held := e.acquire("w", "n1", time.Minute)
			_, err = e.s.RecordWebhookStatus(e.ctx, "w", "n2", held.Generation, sampleStatus())
			wantCode(e.t, err, store.ErrConflict)
			if msg := store.ErrorMessage(err); !strings.Contains(msg, "lease") {
				e.t.Fatalf("conflict message %q does not mention the lease", msg)
			}
			e.ok(e.s.ReleaseWebhookLease(e.ctx, "w", "n1"))
			_, err = e.s.RecordWebhookStatus(e.ctx, "w", "n1", held.Generation, sampleStatus())
			wantCode(e.t, err, store.ErrConflict) // released
			wantHook(e.t, "GetWebhook", e.getHook("w"), created)
		}},
		{"WebhookStatus", "ConflictAfterExpiry", func(e *env) {
			e.hook("w")
			held := e.acquire("w", "n1", shortLease)
			deadline := time.Now().Add(leaseDeadline)
			for {
				_, err := e.s.RecordWebhookStatus(e.ctx, "w", "n1", held.Generation, sampleStatus())
				if errors.Is(err, store.ErrConflict) {
					break
				}
				e.ok(err)
				if time.Now().After(deadline) {
					e.t.Fatalf("status still recorded %v after a %v lease", leaseDeadline, shortLease)
				}
				time.Sleep(5 * time.Millisecond)
			}
			// the holder may take an expired lease again, and record again
			again := e.acquire("w", "n1", time.Minute)
			got, err := e.s.RecordWebhookStatus(e.ctx, "w", "n1", again.Generation, store.WebhookStatus{State: store.WebhookActive})
			e.ok(err)
			if got.State != store.WebhookActive || got.LeaseOwner != "n1" {
				e.t.Fatalf("after re-acquiring: %+v", got)
			}
		}},
		{"WebhookStatus", "ConflictStaleGeneration", func(e *env) {
			e.hook("w")
			held := e.acquire("w", "n1", time.Minute)
			updated, err := e.s.UpdateWebhook(e.ctx, "w", func(w *store.Webhook) error { w.Enabled = false; return nil })
			e.ok(err)
			if updated.LeaseOwner != "n1" || updated.LeaseUntil != held.LeaseUntil {
				e.t.Fatalf("UpdateWebhook changed the lease: %+v, want %q until %v", updated, "n1", held.LeaseUntil)
			}
			_, err = e.s.RecordWebhookStatus(e.ctx, "w", "n1", held.Generation, sampleStatus())
			wantCode(e.t, err, store.ErrConflict)
			wantHook(e.t, "GetWebhook", e.getHook("w"), updated)
			got, err := e.s.RecordWebhookStatus(e.ctx, "w", "n1", updated.Generation, sampleStatus())
			e.ok(err)
			if got.Generation != updated.Generation || got.WebhookStatus != sampleStatus() {
				e.t.Fatalf("RecordWebhookStatus at the current generation = %+v", got)
			}
		}},

		{"Reopen", "WebhooksPersist", func(e *env) {
			if e.newDB == nil {
				e.t.Skip("needs RunWithReopen")
			}
			db := e.newDB(e.t)
			e.s = db(e.t)
			e.hook("w")
			_, err := e.s.UpdateWebhook(e.ctx, "w", func(w *store.Webhook) error { w.Secret = "s2"; return nil })
			e.ok(err)
			e.acquire("w", "n1", time.Hour)
			want, err := e.s.RecordWebhookStatus(e.ctx, "w", "n1", 2, sampleStatus())
			e.ok(err)
			e.ok(e.s.Close())

			e.s = db(e.t)
			wantHook(e.t, "GetWebhook after reopen", e.getHook("w"), want)
			_, err = e.s.AcquireWebhookLease(e.ctx, "w", "n2", time.Minute)
			wantCode(e.t, err, store.ErrConflict) // the lease survives too
		}},
	}
}
