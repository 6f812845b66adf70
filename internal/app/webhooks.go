package app

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// The webhook use cases: configuration and status. Delivery is in
// webhookrun.go. Every use case takes the admin grant on "webhooks" (or
// "webhooks/{id}"); choosing a topic also takes the read grant on it, so
// a webhook never carries events its creator could not read.

// WebhookSpec is a decoded webhook creation.
type WebhookSpec struct {
	Topic  string
	Labels string
	// Filter is a filter expression ("" for none), resource topics only.
	Filter string
	URL    string
	// Secret is a Standard Webhooks secret ("" generates one).
	Secret      string
	Description string
	// Enabled nil means true.
	Enabled *bool
	// MaxBatch 0 means 1.
	MaxBatch int
	// Since starts delivery after this cursor ("" from now).
	Since string
}

// WebhookPatch is a decoded merge patch of a webhook: nil members are
// left alone.
type WebhookPatch struct {
	Topic, Labels, Filter, URL, Secret, Description *string
	RotateSecret                                    bool
	Enabled                                         *bool
	MaxBatch                                        *int
}

// WebhookInfo is a webhook as the API shows it: its configuration and
// status, how far behind it is and, only in the reply that created or
// rotated it, its secret.
type WebhookInfo struct {
	store.Webhook
	// Lag counts the topic's events after the cursor; LagExact is false
	// when counting stopped at its budget (Lag is then a lower bound).
	Lag      int64
	LagExact bool
	// NewSecret is the secret, set only when this call created it.
	NewSecret string
}

// lagBudget bounds the change-log entries read to count a webhook's lag.
const lagBudget = 10000

// webhooksPath is the grant path of the webhook API.
func webhooksPath(id string) string {
	if id == "" {
		return "webhooks"
	}
	return "webhooks/" + id
}

// CreateWebhook creates a webhook starting at its topic's current
// position (or after spec.Since). Errors: auth errors (admin on
// "webhooks", read on the topic), a ValidationError (unprocessable)
// naming the member for a bad topic, labels, filter, url, secret, maxBatch or
// since, store.ErrNotFound (the topic's collection), store.ErrCompacted
// (since is from another epoch or outside the history), store.ErrConflict
// (the limit of webhooks is reached), store.ErrUnavailable.
func (a *App) CreateWebhook(ctx context.Context, p auth.Principal, spec WebhookSpec) (WebhookInfo, error) {
	if err := a.Authorize(p, auth.ActionAdmin, webhooksPath("")); err != nil {
		return WebhookInfo{}, err
	}
	wh := a.wh
	topic, pred, err := a.webhookTopic(p, spec.Topic, spec.Labels, spec.Filter)
	if err != nil {
		return WebhookInfo{}, err
	}
	if err := a.checkWebhookURL(ctx, spec.URL); err != nil {
		return WebhookInfo{}, err
	}
	secret := spec.Secret
	if secret == "" {
		secret = newWebhookSecret()
	} else if _, err := webhookKey(secret); err != nil {
		return WebhookInfo{}, unprocessableField("/secret", err.Error())
	}
	batch := spec.MaxBatch
	if batch == 0 {
		batch = 1
	}
	if batch < 1 || batch > MaxWebhookBatch {
		return WebhookInfo{}, unprocessableField("/maxBatch", "must be 1–100")
	}
	cur, err := a.webhookStart(ctx, topic, spec.Since, "/since")
	if err != nil {
		return WebhookInfo{}, err
	}
	now := a.now().UTC()
	w := store.Webhook{
		ID: newWebhookID(), Topic: topic.Path, Labels: pred.Selector.String(), Filter: pred.Filter.String(), URL: spec.URL, Secret: secret,
		Description: spec.Description, Enabled: spec.Enabled == nil || *spec.Enabled, MaxBatch: batch,
		CreatedAt: now, UpdatedAt: now,
		WebhookStatus: store.WebhookStatus{State: store.WebhookActive, Cursor: cur.String()},
	}
	w, err = a.store.CreateWebhook(ctx, w, wh.opts.Max)
	if err != nil {
		return WebhookInfo{}, err
	}
	a.log.Info("webhook created", "webhook", w.ID, "topic", w.Topic, "host", hostOf(w.URL))
	wh.nudge("")
	info := a.webhookInfo(ctx, w)
	info.NewSecret = secret
	return info, nil
}

// GetWebhook returns a webhook with its status and lag. Errors: auth
// errors, store.ErrNotFound, store.ErrUnavailable.
func (a *App) GetWebhook(ctx context.Context, p auth.Principal, id string) (WebhookInfo, error) {
	if err := a.Authorize(p, auth.ActionAdmin, webhooksPath(id)); err != nil {
		return WebhookInfo{}, err
	}
	w, err := a.store.GetWebhook(ctx, id)
	if err != nil {
		return WebhookInfo{}, err
	}
	return a.webhookInfo(ctx, w), nil
}

// ListWebhooks returns every webhook with its status and lag. Errors:
// auth errors, store.ErrUnavailable.
func (a *App) ListWebhooks(ctx context.Context, p auth.Principal) ([]WebhookInfo, error) {
	if err := a.Authorize(p, auth.ActionAdmin, webhooksPath("")); err != nil {
		return nil, err
	}
	ws, err := a.store.ListWebhooks(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]WebhookInfo, 0, len(ws))
	for _, w := range ws {
		out = append(out, a.webhookInfo(ctx, w))
	}
	return out, nil
}

// DeleteWebhook deletes a webhook; its delivery stops (a request in
// flight may still arrive). Errors: auth errors, store.ErrNotFound,
// store.ErrUnavailable.
func (a *App) DeleteWebhook(ctx context.Context, p auth.Principal, id string) error {
	if err := a.Authorize(p, auth.ActionAdmin, webhooksPath(id)); err != nil {
		return err
	}
	if err := a.store.DeleteWebhook(ctx, id); err != nil {
		return err
	}
	a.log.Info("webhook deleted", "webhook", id)
	a.wh.nudge(id)
	a.wh.metrics.Forget(id)
	return nil
}

// UpdateWebhook applies a patch. A new topic, labels or filter restart delivery
// at the new topic's current position; a new or rotated secret keeps the
// old one signing for the grace period; enabled true restarts a paused
// webhook from its cursor. Errors: as CreateWebhook, and
// store.ErrNotFound.
func (a *App) UpdateWebhook(ctx context.Context, p auth.Principal, id string, patch WebhookPatch) (WebhookInfo, error) {
	if err := a.Authorize(p, auth.ActionAdmin, webhooksPath(id)); err != nil {
		return WebhookInfo{}, err
	}
	if patch.URL != nil {
		if err := a.checkWebhookURL(ctx, *patch.URL); err != nil {
			return WebhookInfo{}, err
		}
	}
	if patch.Secret != nil {
		if _, err := webhookKey(*patch.Secret); err != nil {
			return WebhookInfo{}, unprocessableField("/secret", err.Error())
		}
	}
	if patch.MaxBatch != nil && (*patch.MaxBatch < 1 || *patch.MaxBatch > MaxWebhookBatch) {
		return WebhookInfo{}, unprocessableField("/maxBatch", "must be 1–100")
	}
	newSecret := ""
	if patch.RotateSecret {
		newSecret = newWebhookSecret()
	} else if patch.Secret != nil {
		newSecret = *patch.Secret
	}
	now := a.now().UTC()
	// The new topic's start is read before the store's transaction (it
	// may ask the broker); the transaction then checks that no other
	// change came in between.
	seen, err := a.store.GetWebhook(ctx, id)
	if err != nil {
		return WebhookInfo{}, err
	}
	var move *stream.Cursor
	topic, labels, filter := seen.Topic, seen.Labels, seen.Filter
	if patch.Topic != nil || patch.Labels != nil || patch.Filter != nil {
		if patch.Topic != nil {
			topic = *patch.Topic
		}
		if patch.Labels != nil {
			labels = *patch.Labels
		}
		if patch.Filter != nil {
			filter = *patch.Filter
		}
		t, pred, err := a.webhookTopic(p, topic, labels, filter)
		if err != nil {
			return WebhookInfo{}, err
		}
		topic, labels, filter = t.Path, pred.Selector.String(), pred.Filter.String()
		if topic != seen.Topic || labels != seen.Labels || filter != seen.Filter {
			cur, err := a.webhookStart(ctx, t, "", "")
			if err != nil {
				return WebhookInfo{}, err
			}
			move = &cur
		}
	}
	w, err := a.updateWebhookFrom(ctx, seen, func(w *store.Webhook) {
		if move != nil {
			w.Topic, w.Labels, w.Filter = topic, labels, filter
			w.WebhookStatus = store.WebhookStatus{State: store.WebhookActive, Cursor: move.String(), LastSuccessAt: w.LastSuccessAt}
		}
		if patch.URL != nil {
			w.URL = *patch.URL
		}
		if newSecret != "" && newSecret != w.Secret {
			w.PrevSecret, w.PrevSecretUntil, w.Secret = w.Secret, now.Add(a.wh.opts.SecretGrace), newSecret
		}
		if patch.Description != nil {
			w.Description = *patch.Description
		}
		if patch.MaxBatch != nil {
			w.MaxBatch = *patch.MaxBatch
		}
		if patch.Enabled != nil {
			if *patch.Enabled && (!w.Enabled || w.State == store.WebhookPaused) {
				restart(w)
			}
			w.Enabled = *patch.Enabled
		}
		w.UpdatedAt = now
	})
	if err != nil {
		return WebhookInfo{}, err
	}
	a.log.Info("webhook updated", "webhook", id, "state", w.State, "enabled", w.Enabled)
	a.wh.nudge(id)
	info := a.webhookInfo(ctx, w)
	if patch.RotateSecret || patch.Secret != nil {
		info.NewSecret = newSecret
	}
	return info, nil
}

// ResumeWebhook enables a webhook and restarts its delivery: after since
// when given, else after its cursor, or for a resync-required webhook at
// its topic's current position. Errors: auth errors, store.ErrNotFound,
// a ValidationError naming /since, store.ErrCompacted (since from another
// epoch), store.ErrUnavailable.
func (a *App) ResumeWebhook(ctx context.Context, p auth.Principal, id, since string) (WebhookInfo, error) {
	if err := a.Authorize(p, auth.ActionAdmin, webhooksPath(id)); err != nil {
		return WebhookInfo{}, err
	}
	now := a.now().UTC()
	seen, err := a.store.GetWebhook(ctx, id)
	if err != nil {
		return WebhookInfo{}, err
	}
	var move *stream.Cursor
	if since != "" || seen.State == store.WebhookResyncRequired {
		topic, _, err := a.webhookTopic(p, seen.Topic, seen.Labels, seen.Filter)
		if err != nil {
			return WebhookInfo{}, err
		}
		cur, err := a.webhookStart(ctx, topic, since, "/since")
		if err != nil {
			return WebhookInfo{}, err
		}
		move = &cur
	}
	w, err := a.updateWebhookFrom(ctx, seen, func(w *store.Webhook) {
		if move != nil {
			w.Cursor = move.String()
		}
		restart(w)
		w.Enabled, w.UpdatedAt = true, now
	})
	if err != nil {
		return WebhookInfo{}, err
	}
	a.log.Info("webhook resumed", "webhook", id, "cursor", w.Cursor)
	a.wh.nudge(id)
	return a.webhookInfo(ctx, w), nil
}

// errWebhookRace refuses a change computed from a webhook that another
// change replaced meanwhile.
var errWebhookRace = store.Errorf(store.CodeConflict, "the webhook was changed concurrently; read it and try again")

// updateWebhookFrom stores fn's change of seen, a webhook as read earlier,
// unless another change (a new generation) came in since. Errors:
// errWebhookRace, store.ErrNotFound, store.ErrUnavailable.
func (a *App) updateWebhookFrom(ctx context.Context, seen store.Webhook, fn func(w *store.Webhook)) (store.Webhook, error) {
	return a.store.UpdateWebhook(ctx, seen.ID, func(w *store.Webhook) error {
		if w.Generation != seen.Generation {
			return errWebhookRace
		}
		fn(w)
		return nil
	})
}

// restart clears a webhook's failure status so that delivery starts again
// from its cursor.
func restart(w *store.Webhook) {
	w.WebhookStatus = store.WebhookStatus{State: store.WebhookActive, Cursor: w.Cursor, LastError: w.LastError, LastSuccessAt: w.LastSuccessAt}
}

// webhookTopic parses and authorises a webhook's topic, labels and filter.
func (a *App) webhookTopic(p auth.Principal, topic, labels, filter string) (stream.Topic, store.Predicate, error) {
	var none store.Predicate
	t, err := stream.ParseTopic(topic)
	if err != nil {
		return stream.Topic{}, none, unprocessableField("/topic", store.ErrorMessage(err))
	}
	if t.Kind == stream.TopicPresence {
		return stream.Topic{}, none, unprocessableField("/topic", "presence topics have no cursor: a webhook takes a resource topic or channels/{ch}/messages")
	}
	sel, err := store.ParseSelector(labels)
	if err != nil {
		return stream.Topic{}, none, unprocessableField("/labels", store.ErrorMessage(err))
	}
	if len(sel) > 0 && !t.IsResource() {
		return stream.Topic{}, none, unprocessableField("/labels", "label selectors apply to resource topics only")
	}
	flt, err := store.ParseFilter(filter)
	if err != nil {
		return stream.Topic{}, none, unprocessableField("/filter", store.ErrorMessage(err))
	}
	if !flt.IsEmpty() && !t.IsResource() {
		return stream.Topic{}, none, unprocessableField("/filter", "filters apply to resource topics only")
	}
	if err := a.Authorize(p, auth.ActionRead, t.Path); err != nil {
		return stream.Topic{}, none, err
	}
	return t, store.Predicate{Selector: sel, Filter: flt}, nil
}

// webhookPredicate parses a stored webhook's selector and filter.
func webhookPredicate(w store.Webhook) (store.Predicate, error) {
	sel, err := store.ParseSelector(w.Labels)
	if err != nil {
		return store.Predicate{}, err
	}
	flt, err := store.ParseFilter(w.Filter)
	return store.Predicate{Selector: sel, Filter: flt}, err
}

// webhookStart is where a webhook's delivery starts: after since, or at
// the topic's current position. field names since in errors.
func (a *App) webhookStart(ctx context.Context, t stream.Topic, since, field string) (stream.Cursor, error) {
	if since == "" {
		if t.IsResource() {
			if _, err := a.store.GetCollection(ctx, t.Collection); err != nil {
				return stream.Cursor{}, err
			}
			return a.rt.Resources.Head(ctx)
		}
		return a.rt.Channels.Head(ctx, t.Channel)
	}
	cur, err := stream.ParseCursorFor(since, t.Path)
	if err != nil {
		return stream.Cursor{}, unprocessableField(field, store.ErrorMessage(err))
	}
	if err := a.checkTopicRequest(t, nil, nil, &cur); err != nil {
		if errors.Is(err, store.ErrCompacted) {
			return stream.Cursor{}, err
		}
		return stream.Cursor{}, unprocessableField(field, store.ErrorMessage(err))
	}
	return cur, nil
}

// webhookInfo adds the lag to a stored webhook (left at 0, not exact,
// when it cannot be counted).
func (a *App) webhookInfo(ctx context.Context, w store.Webhook) WebhookInfo {
	info := WebhookInfo{Webhook: w}
	t, err1 := stream.ParseTopic(w.Topic)
	pred, err2 := webhookPredicate(w)
	cur, err3 := stream.ParseCursor(w.Cursor)
	if err := errors.Join(err1, err2, err3); err != nil {
		return info
	}
	if t.IsResource() {
		if cur.Epoch == a.store.Epoch() {
			info.Lag, info.LagExact, _ = a.rt.Resources.Behind(ctx, t, pred, cur, lagBudget)
		}
	} else if n, err := a.rt.Channels.Behind(ctx, t.Channel, cur); err == nil {
		info.Lag, info.LagExact = n, true
	}
	return info
}

// checkWebhookURL checks a target with the sender (scheme, host, and the
// private-address policy). Errors: a ValidationError naming /url.
func (a *App) checkWebhookURL(ctx context.Context, u string) error {
	if a.wh.sender == nil {
		return store.Errorf(store.CodeUnavailable, "webhook delivery is not configured on this server")
	}
	if err := a.wh.sender.CheckURL(ctx, u); err != nil {
		return unprocessableField("/url", err.Error())
	}
	return nil
}

func unprocessableField(pointer, detail string) error {
	return &ValidationError{Code: store.CodeInvalidValue, Message: pointer + ": " + detail,
		Fields: []FieldError{{Pointer: pointer, Detail: detail}}}
}

// MaxWebhookBatch is the most events one webhook request carries.
const MaxWebhookBatch = 100

// secretPrefix starts a Standard Webhooks secret.
const secretPrefix = "whsec_"

// newWebhookSecret returns a Standard Webhooks secret of 32 random bytes.
func newWebhookSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return secretPrefix + base64.StdEncoding.EncodeToString(b[:])
}

// SecretKey decodes a Standard Webhooks secret (a webhook's, or
// --hook-secret) into its HMAC key. Errors: not "whsec_" and the base64
// of 24–64 bytes.
func SecretKey(secret string) ([]byte, error) { return webhookKey(secret) }

// webhookKey decodes a secret into its HMAC key. Errors: not whsec_ and
// the base64 of 24–64 bytes.
func webhookKey(secret string) ([]byte, error) {
	enc, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, errors.New(`a secret is "whsec_" followed by the base64 of 24–64 random bytes`)
	}
	key, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || len(key) < 24 || len(key) > 64 {
		return nil, errors.New(`a secret is "whsec_" followed by the base64 of 24–64 random bytes`)
	}
	return key, nil
}

// webhookKeys are the keys a delivery signs with at now: the secret's,
// and during a rotation's grace period the previous one's.
func webhookKeys(w store.Webhook, now time.Time) [][]byte {
	var keys [][]byte
	if k, err := webhookKey(w.Secret); err == nil {
		keys = append(keys, k)
	}
	if w.PrevSecret != "" && now.Before(w.PrevSecretUntil) {
		if k, err := webhookKey(w.PrevSecret); err == nil {
			keys = append(keys, k)
		}
	}
	return keys
}

var idEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// newWebhookID returns "wh_" and 20 random base32 characters.
func newWebhookID() string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return "wh_" + idEncoding.EncodeToString(b[:])[:20]
}

// TestWebhook sends one signed webhook.ping to a webhook's URL and
// reports the outcome; the cursor and status are untouched. Errors: auth
// errors, store.ErrNotFound, store.ErrUnavailable.
func (a *App) TestWebhook(ctx context.Context, p auth.Principal, id string) (WebhookResult, error) {
	if err := a.Authorize(p, auth.ActionAdmin, webhooksPath(id)); err != nil {
		return WebhookResult{}, err
	}
	if a.wh.sender == nil {
		return WebhookResult{}, store.Errorf(store.CodeUnavailable, "webhook delivery is not configured on this server")
	}
	w, err := a.store.GetWebhook(ctx, id)
	if err != nil {
		return WebhookResult{}, err
	}
	now := a.now().UTC()
	res := a.wh.sender.Send(ctx, WebhookRequest{URL: w.URL, ID: "ping_" + randomHex(8),
		Body: a.wh.opts.Encoder.Ping(w.ID, w.Topic, now), Keys: webhookKeys(w, now), Timeout: a.wh.opts.Timeout})
	return res, nil
}

// hostOf is a URL's host, for logs (a URL's path or query may carry a
// token; the host does not).
func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Host
	}
	return ""
}
