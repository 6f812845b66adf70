package wire

import (
	"encoding/json"
	"time"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/store"
)

// Webhook converts a stored webhook to its API form: never its secrets,
// except secret ("" for none) in the reply that created or rotated it;
// a disabled webhook shows as paused.
func Webhook(w store.Webhook, lag int64, lagExact bool, secret string) api.Webhook {
	out := api.Webhook{
		Id: w.ID, Topic: w.Topic, Url: w.URL, Enabled: w.Enabled, MaxBatch: w.MaxBatch,
		State: api.WebhookState(w.State), Cursor: w.Cursor, Lag: lag, LagExact: lagExact,
		Attempts: w.Attempts, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt,
		Labels: optString(w.Labels), Filter: optString(w.Filter), Description: optString(w.Description), LastError: optString(w.LastError),
		LastSuccessAt: optTime(w.LastSuccessAt), FailingSince: optTime(w.FailingSince), Secret: optString(secret),
	}
	if !w.Enabled {
		out.State = api.WebhookStatePaused
	}
	if w.PrevSecret != "" && w.PrevSecretUntil.After(time.Now()) {
		out.PreviousSecretExpiresAt = optTime(w.PrevSecretUntil)
	}
	return out
}

// WebhookTestResult converts a ping's outcome.
func WebhookTestResult(status int, took time.Duration, err error) api.WebhookTestResult {
	out := api.WebhookTestResult{Ok: err == nil && status >= 200 && status < 300, DurationMs: float32(took.Microseconds()) / 1000}
	if status != 0 {
		out.Status = &status
	}
	if err != nil {
		msg := err.Error()
		out.Error = &msg
	}
	return out
}

// Ping encodes a webhook.ping body (OpenAPI components/schemas/WebhookPing);
// with Frames it implements app.WebhookEncoder.
func (Frames) Ping(webhook, topic string, at time.Time) []byte {
	b, _ := json.Marshal(api.WebhookPing{Type: api.WebhookPingTypeWebhookPing, Webhook: webhook, Topic: topic, Time: at})
	return b
}

// ResyncRequired encodes a webhook.resync-required body (OpenAPI
// components/schemas/WebhookResyncRequired).
func (Frames) ResyncRequired(webhook, topic, cursor, detail string, at time.Time) []byte {
	b, _ := json.Marshal(api.WebhookResyncRequired{Type: api.WebhookResyncRequiredTypeWebhookResyncRequired,
		Webhook: webhook, Topic: topic, Cursor: cursor, Detail: detail, Time: at})
	return b
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
