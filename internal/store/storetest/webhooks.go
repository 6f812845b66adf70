// Conformance cases for webhooks: configuration (create, get, list,
// update, delete) and, in webhook_leases.go, delivery leases and status.

package storetest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

func webhookCases() []testCase {
	return slices.Concat(webhookConfigCases(), webhookLeaseCases())
}

// sampleWebhook is a webhook with every field set (but the lease, which
// CreateWebhook ignores), its times in UTC at microsecond precision.
func sampleWebhook(id string) store.Webhook {
	at := time.Date(2025, 3, 4, 5, 6, 7, 123456000, time.UTC)
	return store.Webhook{ID: id, Topic: "collections/orders", Labels: "env=prod", URL: "https://example.com/hook",
		Secret: "s1", PrevSecret: "s0", PrevSecretUntil: at.Add(time.Hour), Description: "orders to the ERP",
		Enabled: true, MaxBatch: 10, Generation: 1, CreatedAt: at, UpdatedAt: at.Add(time.Minute),
		WebhookStatus: store.WebhookStatus{State: store.WebhookRetrying, Cursor: "c-41", LastError: "HTTP 500",
			LastSuccessAt: at.Add(-time.Hour), FailingSince: at.Add(-time.Minute), Attempts: 3, ResyncNotified: true}}
}

// hook creates sampleWebhook(id) without a limit and returns it as stored.
func (e *env) hook(id string) store.Webhook {
	e.t.Helper()
	w, err := e.s.CreateWebhook(e.ctx, sampleWebhook(id), 0)
	e.ok(err)
	return w
}

func (e *env) getHook(id string) store.Webhook {
	e.t.Helper()
	w, err := e.s.GetWebhook(e.ctx, id)
	e.ok(err)
	return w
}

func wantHook(t *testing.T, what string, got, want store.Webhook) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %+v\nwant %+v", what, got, want)
	}
}

func webhookIDs(ws []store.Webhook) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = w.ID
	}
	return out
}

func webhookConfigCases() []testCase {
	return []testCase{
		{"Webhooks", "CreateGet", func(e *env) {
			in := sampleWebhook("w1")
			in.Generation = 42 // ignored: a new webhook is at generation 1
			got, err := e.s.CreateWebhook(e.ctx, in, 0)
			e.ok(err)
			want := sampleWebhook("w1")
			wantHook(e.t, "CreateWebhook", got, want)
			wantHook(e.t, "GetWebhook", e.getHook("w1"), want)
			ws, err := e.s.ListWebhooks(e.ctx)
			e.ok(err)
			if len(ws) != 1 {
				e.t.Fatalf("ListWebhooks = %+v, want one webhook", ws)
			}
			wantHook(e.t, "ListWebhooks[0]", ws[0], want)
		}},
		{"Webhooks", "ZeroValues", func(e *env) {
			got, err := e.s.CreateWebhook(e.ctx, store.Webhook{ID: "w"}, 0)
			e.ok(err)
			want := store.Webhook{ID: "w", Generation: 1}
			wantHook(e.t, "CreateWebhook", got, want)
			got = e.getHook("w")
			wantHook(e.t, "GetWebhook", got, want)
			for name, v := range map[string]time.Time{"PrevSecretUntil": got.PrevSecretUntil, "CreatedAt": got.CreatedAt,
				"UpdatedAt": got.UpdatedAt, "LastSuccessAt": got.LastSuccessAt, "FailingSince": got.FailingSince,
				"LeaseUntil": got.LeaseUntil} {
				if v != (time.Time{}) {
					e.t.Fatalf("%s = %v, want the zero time", name, v)
				}
			}
		}},
		{"Webhooks", "TimesNormalised", func(e *env) {
			zone := time.FixedZone("X", 5*3600+30*60)
			at := time.Date(2025, 6, 7, 8, 9, 10, 987654321, zone)
			in := store.Webhook{ID: "w", CreatedAt: at, UpdatedAt: time.Now(), PrevSecretUntil: at,
				WebhookStatus: store.WebhookStatus{LastSuccessAt: at, FailingSince: at}}
			got, err := e.s.CreateWebhook(e.ctx, in, 0)
			e.ok(err)
			for name, v := range map[string]time.Time{"CreatedAt": got.CreatedAt, "UpdatedAt": got.UpdatedAt,
				"PrevSecretUntil": got.PrevSecretUntil, "LastSuccessAt": got.LastSuccessAt, "FailingSince": got.FailingSince} {
				checkTime(e.t, name, v, v, v)
				if v.Nanosecond()%1000 != 0 {
					e.t.Fatalf("%s = %v, want microsecond precision", name, v)
				}
			}
			if want := at.UTC().Truncate(time.Microsecond); got.CreatedAt != want {
				e.t.Fatalf("CreatedAt = %v, want %v", got.CreatedAt, want)
			}
			wantHook(e.t, "GetWebhook", e.getHook("w"), got)
		}},
		{"Webhooks", "CreateIgnoresLease", func(e *env) {
			in := sampleWebhook("w")
			in.LeaseOwner, in.LeaseUntil = "n1", time.Now().Add(time.Hour)
			got, err := e.s.CreateWebhook(e.ctx, in, 0)
			e.ok(err)
			if got.LeaseOwner != "" || !got.LeaseUntil.IsZero() {
				e.t.Fatalf("new webhook's lease = %q until %v, want none", got.LeaseOwner, got.LeaseUntil)
			}
			_, err = e.s.AcquireWebhookLease(e.ctx, "w", "n2", time.Minute)
			e.ok(err)
		}},
		{"Webhooks", "ErrInvalid", func(e *env) {
			_, err := e.s.CreateWebhook(e.ctx, store.Webhook{URL: "https://x"}, 0)
			wantCode(e.t, err, store.ErrInvalid)
		}},
		{"Webhooks", "ErrConflictDuplicate", func(e *env) {
			first := e.hook("w")
			dup := sampleWebhook("w")
			dup.URL = "https://other.example/"
			for _, max := range []int{0, 5} {
				_, err := e.s.CreateWebhook(e.ctx, dup, max)
				wantCode(e.t, err, store.ErrConflict)
				if msg := store.ErrorMessage(err); !strings.Contains(msg, "exists") {
					e.t.Fatalf("duplicate ID: message %q does not say the webhook exists", msg)
				}
			}
			wantHook(e.t, "stored webhook", e.getHook("w"), first)
		}},
		{"Webhooks", "Limit", func(e *env) {
			for _, id := range []string{"a", "b"} {
				_, err := e.s.CreateWebhook(e.ctx, sampleWebhook(id), 2)
				e.ok(err)
			}
			_, err := e.s.CreateWebhook(e.ctx, sampleWebhook("c"), 2)
			wantCode(e.t, err, store.ErrConflict)
			if msg := store.ErrorMessage(err); !strings.Contains(msg, "limit") {
				e.t.Fatalf("limit reached: message %q does not mention the limit", msg)
			}
			if _, err := e.s.GetWebhook(e.ctx, "c"); !errors.Is(err, store.ErrNotFound) {
				e.t.Fatalf("refused webhook was stored (GetWebhook: %v)", err)
			}
			e.ok(e.s.DeleteWebhook(e.ctx, "a"))
			_, err = e.s.CreateWebhook(e.ctx, sampleWebhook("c"), 2)
			e.ok(err)
			// max <= 0: no limit
			for i, max := range []int{0, -1, 0, -5} {
				_, err := e.s.CreateWebhook(e.ctx, sampleWebhook(fmt.Sprint("u", i)), max)
				e.ok(err)
			}
			ws, err := e.s.ListWebhooks(e.ctx)
			e.ok(err)
			if len(ws) != 6 {
				e.t.Fatalf("%d webhooks stored, want 6", len(ws))
			}
		}},
		{"Webhooks", "LimitConcurrent", func(e *env) {
			const max = 3
			errs := concurrently(8, func(i int) error {
				_, err := e.s.CreateWebhook(e.ctx, sampleWebhook(fmt.Sprint("w", i)), max)
				return err
			})
			created := 0
			for _, err := range errs {
				if err == nil {
					created++
				} else if !errors.Is(err, store.ErrConflict) {
					e.t.Fatalf("concurrent create: %v, want nil or ErrConflict", err)
				}
			}
			ws, err := e.s.ListWebhooks(e.ctx)
			e.ok(err)
			if created != max || len(ws) != max {
				e.t.Fatalf("%d creates succeeded and %d webhooks are stored, want %d", created, len(ws), max)
			}
		}},
		{"Webhooks", "ListOrderedByID", func(e *env) {
			ws, err := e.s.ListWebhooks(e.ctx)
			e.ok(err)
			if len(ws) != 0 {
				e.t.Fatalf("ListWebhooks on a new store = %+v", ws)
			}
			for _, id := range []string{"b", "a-1", "c", "B", "a"} {
				e.hook(id)
			}
			ws, err = e.s.ListWebhooks(e.ctx)
			e.ok(err)
			if got, want := webhookIDs(ws), []string{"B", "a", "a-1", "b", "c"}; !slices.Equal(got, want) {
				e.t.Fatalf("ListWebhooks IDs = %v, want %v (byte order)", got, want)
			}
		}},
		{"Webhooks", "Update", func(e *env) {
			e.hook("w")
			e.hook("other")
			later := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
			got, err := e.s.UpdateWebhook(e.ctx, "w", func(w *store.Webhook) error {
				if w.ID != "w" || w.Generation != 1 || w.URL != "https://example.com/hook" {
					return fmt.Errorf("fn got %+v, want the stored webhook", *w)
				}
				w.URL, w.Secret, w.PrevSecret, w.PrevSecretUntil = "https://new.example/", "s2", "s1", later
				w.Topic, w.Labels, w.Description, w.Enabled, w.MaxBatch = "channels/x", "", "", false, 1
				w.UpdatedAt = later
				w.WebhookStatus = store.WebhookStatus{State: store.WebhookActive, Cursor: "c-99"}
				return nil
			})
			e.ok(err)
			want := sampleWebhook("w")
			want.URL, want.Secret, want.PrevSecret, want.PrevSecretUntil = "https://new.example/", "s2", "s1", later
			want.Topic, want.Labels, want.Description, want.Enabled, want.MaxBatch = "channels/x", "", "", false, 1
			want.UpdatedAt, want.Generation = later, 2
			want.WebhookStatus = store.WebhookStatus{State: store.WebhookActive, Cursor: "c-99"}
			wantHook(e.t, "UpdateWebhook", got, want)
			wantHook(e.t, "GetWebhook", e.getHook("w"), want)
			wantHook(e.t, "untouched webhook", e.getHook("other"), sampleWebhook("other"))
			got, err = e.s.UpdateWebhook(e.ctx, "w", func(*store.Webhook) error { return nil })
			e.ok(err)
			if got.Generation != 3 {
				e.t.Fatalf("Generation after a second update = %d, want 3", got.Generation)
			}
		}},
		{"Webhooks", "UpdateFnError", func(e *env) {
			before := e.hook("w")
			boom := errors.New("boom")
			_, err := e.s.UpdateWebhook(e.ctx, "w", func(w *store.Webhook) error {
				w.URL, w.Enabled = "https://changed.example/", false
				return boom
			})
			if !errors.Is(err, boom) || errors.Is(err, store.ErrUnavailable) {
				e.t.Fatalf("UpdateWebhook = %v, want fn's error", err)
			}
			coded := store.Errorf(store.CodeInvalid, "bad url")
			_, err = e.s.UpdateWebhook(e.ctx, "w", func(*store.Webhook) error { return coded })
			if err != coded {
				e.t.Fatalf("UpdateWebhook = %v, want fn's error %v", err, coded)
			}
			wantHook(e.t, "webhook after failed updates", e.getHook("w"), before)
		}},
		{"Webhooks", "UpdateFnPanics", func(e *env) {
			before := e.hook("w")
			func() {
				defer func() {
					if p := recover(); p != "boom" {
						e.t.Fatalf("recovered %v, want fn's panic in the caller", p)
					}
				}()
				e.s.UpdateWebhook(e.ctx, "w", func(w *store.Webhook) error { w.URL = "https://x/"; panic("boom") })
			}()
			wantHook(e.t, "webhook after a panicking update", e.getHook("w"), before)
			e.hook("after") // the store still writes
		}},
		{"Webhooks", "UpdateKeepsProtectedFields", func(e *env) {
			e.hook("w")
			leased, err := e.s.AcquireWebhookLease(e.ctx, "w", "n1", time.Minute)
			e.ok(err)
			got, err := e.s.UpdateWebhook(e.ctx, "w", func(w *store.Webhook) error {
				w.ID, w.Generation, w.CreatedAt = "x", 100, time.Now()
				w.LeaseOwner, w.LeaseUntil = "thief", time.Now().Add(time.Hour)
				w.Description = "changed"
				return nil
			})
			e.ok(err)
			want := leased
			want.Generation, want.Description = 2, "changed"
			wantHook(e.t, "UpdateWebhook", got, want)
			wantHook(e.t, "GetWebhook", e.getHook("w"), want)
			if _, err := e.s.GetWebhook(e.ctx, "x"); !errors.Is(err, store.ErrNotFound) {
				e.t.Fatalf("fn renamed the webhook (GetWebhook(x): %v)", err)
			}
			_, err = e.s.AcquireWebhookLease(e.ctx, "w", "thief", time.Minute)
			wantCode(e.t, err, store.ErrConflict)
		}},
		{"Webhooks", "Delete", func(e *env) {
			e.hook("w")
			e.hook("keep")
			_, err := e.s.AcquireWebhookLease(e.ctx, "w", "n1", time.Minute)
			e.ok(err)
			e.ok(e.s.DeleteWebhook(e.ctx, "w"))
			_, err = e.s.GetWebhook(e.ctx, "w")
			wantCode(e.t, err, store.ErrNotFound)
			wantCode(e.t, e.s.DeleteWebhook(e.ctx, "w"), store.ErrNotFound)
			ws, err := e.s.ListWebhooks(e.ctx)
			e.ok(err)
			if got := webhookIDs(ws); !slices.Equal(got, []string{"keep"}) {
				e.t.Fatalf("ListWebhooks IDs after delete = %v", got)
			}
			// the lease went with it
			again := e.hook("w")
			if again.Generation != 1 || again.LeaseOwner != "" {
				e.t.Fatalf("re-created webhook = %+v, want generation 1 and no lease", again)
			}
			_, err = e.s.AcquireWebhookLease(e.ctx, "w", "n2", time.Minute)
			e.ok(err)
		}},
		{"Webhooks", "ErrNotFound", func(e *env) {
			e.hook("other")
			_, err := e.s.GetWebhook(e.ctx, "nope")
			wantCode(e.t, err, store.ErrNotFound)
			called := false
			_, err = e.s.UpdateWebhook(e.ctx, "nope", func(*store.Webhook) error { called = true; return nil })
			wantCode(e.t, err, store.ErrNotFound)
			if called {
				e.t.Fatal("UpdateWebhook called fn for a missing webhook")
			}
			wantCode(e.t, e.s.DeleteWebhook(e.ctx, "nope"), store.ErrNotFound)
			_, err = e.s.AcquireWebhookLease(e.ctx, "nope", "n1", time.Minute)
			wantCode(e.t, err, store.ErrNotFound)
			wantCode(e.t, e.s.ReleaseWebhookLease(e.ctx, "nope", "n1"), store.ErrNotFound)
			_, err = e.s.RecordWebhookStatus(e.ctx, "nope", "n1", 1, store.WebhookStatus{State: store.WebhookActive})
			wantCode(e.t, err, store.ErrNotFound)
			wantHook(e.t, "other webhook", e.getHook("other"), sampleWebhook("other"))
		}},
		{"Webhooks", "NotResourceChanges", func(e *env) {
			e.coll("c")
			e.put("c", "r", `{}`, nil)
			rev, cs := e.rev(), e.changes(0, 0)
			w := e.hook("w")
			_, err := e.s.UpdateWebhook(e.ctx, "w", func(w *store.Webhook) error { w.URL = "https://x/"; return nil })
			e.ok(err)
			_, err = e.s.AcquireWebhookLease(e.ctx, "w", "n1", time.Minute)
			e.ok(err)
			_, err = e.s.RecordWebhookStatus(e.ctx, "w", "n1", w.Generation+1, store.WebhookStatus{State: store.WebhookActive})
			e.ok(err)
			e.ok(e.s.ReleaseWebhookLease(e.ctx, "w", "n1"))
			e.ok(e.s.DeleteWebhook(e.ctx, "w"))
			_, err = e.s.CreateWebhook(e.ctx, sampleWebhook("w"), 1)
			e.ok(err)
			e.wantRev(rev)
			if got := e.changes(0, 0); !reflect.DeepEqual(got, cs) {
				e.t.Fatalf("webhook writes changed the change log: %+v, want %+v", got, cs)
			}
			if r := e.put("c", "r2", `{}`, nil); r.Revision != rev+1 {
				e.t.Fatalf("next resource write at revision %d, want %d", r.Revision, rev+1)
			}
		}},
	}
}
