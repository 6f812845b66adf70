package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/store"
)

// TestWebhookWritesSkipMetaAndNotify checks that webhook writes, not being
// resource changes, neither wait for the meta row lock that serialises
// resource writers nor send a NOTIFY.
func TestWebhookWritesSkipMetaAndNotify(t *testing.T) {
	dsn := newDatabase(t)
	s := openDSN(t, dsn, Options{})
	bg := context.Background()

	listener, err := pgx.Connect(bg, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer listener.Close(bg)
	if _, err := listener.Exec(bg, "LISTEN "+notifyChannel); err != nil {
		t.Fatal(err)
	}

	// Another transaction holds the meta row lock throughout.
	locker, err := s.pool.Begin(bg)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Rollback(bg)
	if _, err := lockRevision(bg, locker); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(bg, 10*time.Second)
	defer cancel()
	if _, err := s.CreateWebhook(ctx, store.Webhook{ID: "w"}, 5); err != nil {
		t.Fatalf("create: %v", err)
	}
	if _, err := s.UpdateWebhook(ctx, "w", func(w *store.Webhook) error { w.URL = "https://x/"; return nil }); err != nil {
		t.Fatalf("update: %v", err)
	}
	if _, err := s.AcquireWebhookLease(ctx, "w", "n1", time.Minute); err != nil {
		t.Fatalf("acquire: %v", err)
	}
	if _, err := s.RecordWebhookStatus(ctx, "w", "n1", 2, store.WebhookStatus{State: store.WebhookActive}); err != nil {
		t.Fatalf("record: %v", err)
	}
	if err := s.ReleaseWebhookLease(ctx, "w", "n1"); err != nil {
		t.Fatalf("release: %v", err)
	}
	if err := s.DeleteWebhook(ctx, "w"); err != nil {
		t.Fatalf("delete: %v", err)
	}

	wctx, wcancel := context.WithTimeout(bg, 300*time.Millisecond)
	defer wcancel()
	if n, err := listener.WaitForNotification(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitForNotification = %+v, %v: webhook writes sent a NOTIFY", n, err)
	}
}

// TestWebhookLeaseDatabaseClock checks that the lease is compared with the
// database's clock: once lease_until is set before the database's now(),
// the holder can no longer record a status and another owner acquires it.
// (This process and the database share a clock here, so the test cannot
// tell skewed clocks apart; the SQL is written against now().)
func TestWebhookLeaseDatabaseClock(t *testing.T) {
	s := openDSN(t, newDatabase(t), Options{})
	ctx := context.Background()
	if _, err := s.CreateWebhook(ctx, store.Webhook{ID: "w"}, 0); err != nil {
		t.Fatal(err)
	}
	w, err := s.AcquireWebhookLease(ctx, "w", "n1", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var dbUntil time.Time
	if err := s.pool.QueryRow(ctx, `SELECT lease_until FROM webhooks WHERE id = 'w'`).Scan(&dbUntil); err != nil {
		t.Fatal(err)
	}
	if !dbUntil.Equal(w.LeaseUntil) {
		t.Fatalf("returned LeaseUntil %v, stored %v", w.LeaseUntil, dbUntil)
	}
	// Expire the lease by the database's clock only.
	if _, err := s.pool.Exec(ctx, `UPDATE webhooks SET lease_until = now() - interval '1 millisecond'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RecordWebhookStatus(ctx, "w", "n1", 1, store.WebhookStatus{}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("record on an expired lease: %v, want ErrConflict", err)
	}
	if _, err := s.AcquireWebhookLease(ctx, "w", "n2", time.Minute); err != nil {
		t.Fatalf("acquire an expired lease: %v", err)
	}
}
