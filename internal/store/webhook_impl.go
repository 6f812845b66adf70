package store

import "time"

// This file holds the validation, normalisation and errors of Webhooks
// shared by the Store implementations, so that both keep the same values
// and refuse the same input with the same messages.

// CheckWebhookID returns a CodeInvalid error for an empty webhook ID, else nil.
func CheckWebhookID(id string) error {
	if id == "" {
		return Errorf(CodeInvalid, "webhook ID is required")
	}
	return nil
}

// CheckWebhookLease returns a CodeInvalid error for a lease request that
// cannot name a holder or would be expired at once (empty owner, ttl <= 0).
func CheckWebhookLease(owner string, ttl time.Duration) error {
	if owner == "" {
		return Errorf(CodeInvalid, "webhook lease owner is required")
	}
	if ttl <= 0 {
		return Errorf(CodeInvalid, "webhook lease duration must be positive")
	}
	return nil
}

// WebhookNotFound is the CodeNotFound error for a missing webhook.
func WebhookNotFound(id string) error {
	return Errorf(CodeNotFound, "webhook %q not found", id)
}

// WebhookExists is the CodeConflict error for creating a webhook whose ID
// is taken.
func WebhookExists(id string) error {
	return Errorf(CodeConflict, "webhook %q already exists", id)
}

// WebhookLimitReached is the CodeConflict error for creating a webhook
// when limit webhooks exist.
func WebhookLimitReached(limit int) error {
	return Errorf(CodeConflict, "the limit of %d webhooks is reached", limit)
}

// WebhookLeased is the CodeConflict error for acquiring a lease that
// another owner holds.
func WebhookLeased(id string) error {
	return Errorf(CodeConflict, "webhook %q is leased by another node", id)
}

// WebhookLeaseLost is the CodeConflict error for recording a status
// without an unexpired lease or for a configuration generation that is no
// longer current.
func WebhookLeaseLost(id string) error {
	return Errorf(CodeConflict, "webhook %q changed or its lease was lost", id)
}

// StoredTime returns t as the stores keep it: in UTC at microsecond
// precision, without a monotonic reading. The zero time stays zero (it is
// stored as "none").
func StoredTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	t = t.UTC().Truncate(time.Microsecond)
	if t.IsZero() {
		return time.Time{}
	}
	return t
}

// NormalizeWebhookStatus returns st with its times as StoredTime keeps them.
func NormalizeWebhookStatus(st WebhookStatus) WebhookStatus {
	st.LastSuccessAt = StoredTime(st.LastSuccessAt)
	st.FailingSince = StoredTime(st.FailingSince)
	return st
}

// NormalizeWebhook returns w with every time as StoredTime keeps it.
func NormalizeWebhook(w Webhook) Webhook {
	w.PrevSecretUntil = StoredTime(w.PrevSecretUntil)
	w.CreatedAt = StoredTime(w.CreatedAt)
	w.UpdatedAt = StoredTime(w.UpdatedAt)
	w.LeaseUntil = StoredTime(w.LeaseUntil)
	w.WebhookStatus = NormalizeWebhookStatus(w.WebhookStatus)
	return w
}

// NewWebhookRow is what CreateWebhook stores for w: normalised, at
// generation 1, without a lease (w's lease fields are ignored).
func NewWebhookRow(w Webhook) Webhook {
	w = NormalizeWebhook(w)
	w.Generation, w.LeaseOwner, w.LeaseUntil = 1, "", time.Time{}
	return w
}

// PlanWebhookUpdate calls fn with a copy of cur, the stored webhook, and
// returns what UpdateWebhook stores: fn's result with ID, CreatedAt and the
// lease restored from cur, Generation cur's plus one and times normalised.
// Errors: fn's error, unchanged.
func PlanWebhookUpdate(cur Webhook, fn func(*Webhook) error) (Webhook, error) {
	w := cur // every field is a value: fn cannot reach cur through w
	if err := fn(&w); err != nil {
		return Webhook{}, err
	}
	w.ID, w.CreatedAt, w.LeaseOwner, w.LeaseUntil = cur.ID, cur.CreatedAt, cur.LeaseOwner, cur.LeaseUntil
	w.Generation = cur.Generation + 1
	return NormalizeWebhook(w), nil
}
