package store

import (
	"context"
	"time"
)

// WebhookState is where a webhook's delivery stands.
type WebhookState string

// The webhook states, as the API reports them.
const (
	// WebhookActive delivers; the last attempt succeeded (or none failed yet).
	WebhookActive WebhookState = "active"
	// WebhookRetrying delivers; the event at the head of the line failed
	// and is being retried with backoff.
	WebhookRetrying WebhookState = "retrying"
	// WebhookPaused does not deliver: it failed for longer than the
	// failure window, was disabled, or its receiver answered 410. Its
	// cursor is kept; resume restarts it.
	WebhookPaused WebhookState = "paused"
	// WebhookResyncRequired does not deliver: its cursor fell out of the
	// change log or the channel history. The receiver is sent one
	// webhook.resync-required notice (ResyncNotified records it); resume
	// restarts it from a new position.
	WebhookResyncRequired WebhookState = "resync-required"
)

// Webhook is a durable subscription delivered over HTTP: its
// configuration (written by the API, versioned by Generation), its
// delivery status (written by the node holding its lease) and the lease.
type Webhook struct {
	ID string
	// Topic is a topic path (stream.ParseTopic), Labels the canonical
	// label selector and Filter the canonical filter ("" for none).
	Topic  string
	Labels string
	Filter string
	URL    string
	// Secret signs deliveries. PrevSecret, until PrevSecretUntil, signs
	// them too (a rotation's grace period); "" for none.
	Secret          string
	PrevSecret      string
	PrevSecretUntil time.Time
	Description     string
	Enabled         bool
	// MaxBatch is how many events one request may carry (1: one event per
	// request, the body is the event; more: the body is an array).
	MaxBatch int
	// Generation counts configuration changes (UpdateWebhook); a delivery
	// status write names the generation it worked on.
	Generation int64
	CreatedAt  time.Time
	UpdatedAt  time.Time

	WebhookStatus

	// LeaseOwner holds the delivery lease until LeaseUntil ("" for none).
	LeaseOwner string
	LeaseUntil time.Time
}

// WebhookStatus is what delivery writes about a webhook.
type WebhookStatus struct {
	State WebhookState
	// Cursor is the last acknowledged position (an encoded stream cursor):
	// delivery continues after it.
	Cursor string
	// LastError describes the last failed attempt ("" for none).
	LastError string
	// LastSuccessAt is the last acknowledged delivery (zero: none);
	// FailingSince the first failure of the current run of failures
	// (zero: not failing).
	LastSuccessAt time.Time
	FailingSince  time.Time
	// Attempts counts consecutive failed attempts of the head of the line.
	Attempts int
	// ResyncNotified records that the webhook.resync-required notice of
	// the current WebhookResyncRequired state was acknowledged.
	ResyncNotified bool
}

// Webhooks keeps webhooks, their delivery status and their leases. Every
// method is one transaction; writes follow the store's write discipline
// (serialised, durable on return) but are not resource changes: they do
// not bump the revision or append to the change log.
type Webhooks interface {
	// CreateWebhook stores w (ID set by the caller; Generation is set to 1,
	// CreatedAt and UpdatedAt kept as given) and returns it, refusing
	// when max webhooks already exist (max <= 0: no limit). Errors:
	// ErrConflict (the ID exists, or the limit is reached: the message
	// says which), ErrInvalid (empty ID).
	CreateWebhook(ctx context.Context, w Webhook, max int) (Webhook, error)
	// GetWebhook returns one webhook. Errors: ErrNotFound.
	GetWebhook(ctx context.Context, id string) (Webhook, error)
	// ListWebhooks returns every webhook ordered by ID.
	ListWebhooks(ctx context.Context) ([]Webhook, error)
	// UpdateWebhook changes a webhook's configuration in one transaction:
	// it reads the webhook, calls fn with it (fn may change any field but
	// ID, Generation, CreatedAt and the lease) and, when fn returns nil,
	// stores the result with Generation incremented and returns it.
	// Errors: ErrNotFound, fn's error (nothing is written).
	UpdateWebhook(ctx context.Context, id string, fn func(*Webhook) error) (Webhook, error)
	// DeleteWebhook deletes a webhook (and its lease). Errors: ErrNotFound.
	DeleteWebhook(ctx context.Context, id string) error

	// AcquireWebhookLease gives owner the delivery lease for ttl when no
	// one else holds an unexpired one (renewing it when owner holds it),
	// and returns the webhook as stored. The expiry is reckoned by the
	// store's clock (the database's on PostgreSQL). Errors: ErrConflict
	// (another owner holds it), ErrNotFound.
	AcquireWebhookLease(ctx context.Context, id, owner string, ttl time.Duration) (Webhook, error)
	// ReleaseWebhookLease ends owner's lease (nothing when owner does not
	// hold it). Errors: ErrNotFound.
	ReleaseWebhookLease(ctx context.Context, id, owner string) error
	// RecordWebhookStatus stores st (every field) when owner holds an
	// unexpired lease and the webhook's Generation is still generation,
	// and returns the webhook as stored. Errors: ErrConflict (the lease
	// was lost or the configuration changed: reload), ErrNotFound.
	RecordWebhookStatus(ctx context.Context, id, owner string, generation int64, st WebhookStatus) (Webhook, error)
}
