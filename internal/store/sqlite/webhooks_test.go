package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// TestWebhookWritesUseTheWriter checks that each webhook write is
// committed by the single writer (one commit per write when they come one
// at a time) and, not being a resource change, does not wake Notify.
func TestWebhookWritesUseTheWriter(t *testing.T) {
	ctx := context.Background()
	s := openAt(t, filepath.Join(t.TempDir(), "tandem.db"))
	for len(s.Notify()) > 0 {
		<-s.Notify()
	}
	writes := []struct {
		name string
		fn   func() error
	}{
		{"create", func() error { _, err := s.CreateWebhook(ctx, store.Webhook{ID: "w"}, 5); return err }},
		{"update", func() error {
			_, err := s.UpdateWebhook(ctx, "w", func(w *store.Webhook) error { w.URL = "https://x/"; return nil })
			return err
		}},
		{"acquire", func() error { _, err := s.AcquireWebhookLease(ctx, "w", "n1", time.Minute); return err }},
		{"record", func() error {
			_, err := s.RecordWebhookStatus(ctx, "w", "n1", 2, store.WebhookStatus{State: store.WebhookActive})
			return err
		}},
		{"release", func() error { return s.ReleaseWebhookLease(ctx, "w", "n1") }},
		{"delete", func() error { return s.DeleteWebhook(ctx, "w") }},
	}
	for _, w := range writes {
		before := s.commits.Load()
		if err := w.fn(); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		if n := s.commits.Load() - before; n != 1 {
			t.Fatalf("%s: %d commits by the writer, want 1", w.name, n)
		}
	}
	if len(s.Notify()) > 0 {
		t.Fatal("webhook writes woke Notify")
	}
}
