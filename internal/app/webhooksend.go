package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// One webhook's head of line on the node holding its lease: read the
// events after the acknowledged cursor, send them, retry with backoff, and
// store the outcome fenced by lease and generation.

// batch is one request's content.
type batch struct {
	id     string // webhook-id
	body   []byte
	events int
	cursor string // the cursor acknowledged by a 2xx ("" for a notice)
	short  bool   // fewer events than a batch holds: the backlog is read
}

// deliverNext delivers what comes next for w (the resync notice, or the
// next batch of events) and returns the webhook as it now stands. Errors:
// the runner must stop (webhook deleted, lease lost, ctx done).
func (a *App) deliverNext(ctx context.Context, r *runner, w store.Webhook) (store.Webhook, error) {
	if w.State == store.WebhookResyncRequired {
		detail := "the webhook's cursor fell out of the retained history (or the history was reset); events after it may be missing: reload the state and resume the webhook"
		b := batch{id: "resync_" + w.Cursor, body: a.wh.opts.Encoder.ResyncRequired(w.ID, w.Topic, w.Cursor, detail, a.now().UTC())}
		return a.sendUntilAcked(ctx, r, w, b)
	}
	b, next, err := a.nextBatch(ctx, r, w)
	switch {
	case ctx.Err() != nil:
		return w, ctx.Err()
	case errors.Is(err, store.ErrCompacted):
		st := w.WebhookStatus
		st.State, st.ResyncNotified, st.LastError = store.WebhookResyncRequired, false, store.ErrorMessage(err)
		a.log.Warn("webhook needs a resync", "webhook", w.ID, "cursor", w.Cursor, "err", err)
		return a.record(ctx, r, w, st)
	case err != nil:
		a.log.Warn("webhook: read events", "webhook", w.ID, "err", err)
		if !sleep(ctx, r.poke, a.wh.opts.RetryMin) {
			return a.reload(ctx, r)
		}
		return w, ctx.Err()
	case b.events == 0:
		r.caughtUp.Store(true)
		if next != "" && next != w.Cursor { // a selector skipped changes: keep the place
			st := w.WebhookStatus
			st.Cursor = next
			return a.record(ctx, r, w, st)
		}
		return a.reload(ctx, r)
	}
	return a.sendUntilAcked(ctx, r, w, b)
}

// nextBatch waits (up to PollWait, or until the runner is poked) for the
// events after w's cursor and encodes up to MaxBatch of them; with none it
// returns the cursor the read reached. Errors: store.ErrCompacted, ctx's,
// the engines'.
func (a *App) nextBatch(ctx context.Context, r *runner, w store.Webhook) (batch, string, error) {
	t, err1 := stream.ParseTopic(w.Topic)
	pred, err2 := webhookPredicate(w)
	cur, err3 := stream.ParseCursor(w.Cursor)
	if err := errors.Join(err1, err2, err3); err != nil {
		return batch{}, "", store.Errorf(store.CodeCompacted, "the webhook's stored topic or cursor is unreadable: %v", err)
	}
	if err := a.checkTopicRequest(t, pred.Selector, pred.Filter, &cur); err != nil {
		return batch{}, "", err
	}
	limit, wait := max(w.MaxBatch, 1), a.wh.opts.PollWait
	var (
		evs  []stream.Event
		next stream.Cursor
		err  error
	)
	if t.IsResource() {
		evs, next, err = a.rt.Resources.Tail(ctx, t, pred, &cur, limit, wait, r.poke)
	} else {
		evs, next, err = a.rt.Channels.Poll(ctx, t, &cur, limit, wait, r.poke)
	}
	if err != nil {
		return batch{}, "", err
	}
	if len(evs) == 0 {
		return batch{}, next.String(), nil
	}
	var body bytes.Buffer
	if w.MaxBatch > 1 {
		body.WriteByte('[')
	}
	for i, ev := range evs {
		b, err := a.wh.opts.Encoder.Event(ev)
		if err != nil {
			return batch{}, "", err
		}
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(b)
	}
	if w.MaxBatch > 1 {
		body.WriteByte(']')
	}
	return batch{id: evs[len(evs)-1].Cursor.String(), body: body.Bytes(), events: len(evs), cursor: next.String(), short: len(evs) < limit}, "", nil
}

// sendUntilAcked sends b until the receiver acknowledges it (the cursor
// advances durably), answers 410 (the webhook is disabled), has failed
// for longer than the failure window (paused), or the configuration
// changes (the caller starts again from the stored cursor). Retries wait
// RetryMin·2^(n-1), capped at RetryMax, with jitter (a random point in the
// upper half), or the receiver's Retry-After (capped at an hour).
func (a *App) sendUntilAcked(ctx context.Context, r *runner, w store.Webhook, b batch) (store.Webhook, error) {
	h := a.wh
	gen := w.Generation
	for {
		res := h.sender.Send(ctx, WebhookRequest{URL: w.URL, ID: b.id, Body: b.body, Keys: webhookKeys(w, a.now()), Timeout: h.opts.Timeout})
		if ctx.Err() != nil {
			return w, ctx.Err()
		}
		a.log.Debug("webhook attempt", "webhook", w.ID, "id", b.id, "events", b.events, "status", res.Status, "err", res.Err, "took", res.Duration)
		now := a.now().UTC()
		st := w.WebhookStatus
		switch {
		case res.Err == nil && res.Status >= 200 && res.Status < 300:
			h.metrics.Delivered(w.ID, "success", b.events, res.Duration)
			r.caughtUp.Store(b.short)
			if w.State == store.WebhookRetrying {
				a.log.Info("webhook recovered", "webhook", w.ID, "attempts", w.Attempts)
			}
			st.Attempts, st.FailingSince, st.LastSuccessAt = 0, time.Time{}, now
			if b.cursor == "" {
				st.ResyncNotified = true
			} else {
				st.State, st.Cursor = store.WebhookActive, b.cursor
			}
			return a.record(ctx, r, w, st)
		case res.Err == nil && res.Status == 410:
			h.metrics.Delivered(w.ID, "gone", b.events, res.Duration)
			a.log.Warn("webhook disabled: the receiver answered 410 Gone", "webhook", w.ID)
			return a.disable(ctx, r, w, "the receiver answered 410 Gone: the webhook is disabled; enable or resume it to deliver again")
		}
		h.metrics.Delivered(w.ID, "failure", b.events, res.Duration)
		r.caughtUp.Store(false)
		st.Attempts++
		if st.FailingSince.IsZero() {
			st.FailingSince = now
		}
		st.LastError = describeFailure(res)
		if now.Sub(st.FailingSince) >= h.opts.FailureWindow {
			st.State = store.WebhookPaused
			a.log.Warn("webhook paused: failing for longer than the failure window", "webhook", w.ID, "since", st.FailingSince, "attempts", st.Attempts, "err", st.LastError)
			return a.record(ctx, r, w, st)
		}
		if st.State == store.WebhookActive {
			st.State = store.WebhookRetrying
			a.log.Warn("webhook failing, retrying with backoff", "webhook", w.ID, "err", st.LastError)
		}
		var err error
		if w, err = a.record(ctx, r, w, st); err != nil || !deliverable(w) || w.Generation != gen {
			return w, err
		}
		if !sleep(ctx, r.poke, h.backoff(st.Attempts, res.RetryAfter)) {
			return a.reload(ctx, r)
		}
		if ctx.Err() != nil {
			return w, ctx.Err()
		}
	}
}

// backoff is the wait before attempt n+1 after n failures.
func (h *webhooks) backoff(n int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return min(retryAfter, time.Hour)
	}
	d := h.opts.RetryMax
	if n < 30 {
		d = min(h.opts.RetryMin<<(n-1), h.opts.RetryMax)
	}
	return d/2 + rand.N(d/2+1)
}

// describeFailure says why an attempt failed, for lastError.
func describeFailure(res WebhookResult) string {
	if res.Err != nil {
		return res.Err.Error()
	}
	return fmt.Sprintf("the receiver answered %d", res.Status)
}

// sleep waits d; it returns false when poke fired first (and true when d
// passed or ctx ended).
func sleep(ctx context.Context, poke <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return true
	case <-poke:
		return false
	}
}

// record stores a status for the generation being delivered. When the
// configuration changed meanwhile (or the lease was lost) the write is
// refused and the webhook reloaded. Errors: as reload.
func (a *App) record(ctx context.Context, r *runner, w store.Webhook, st store.WebhookStatus) (store.Webhook, error) {
	nw, err := a.store.RecordWebhookStatus(ctx, w.ID, a.wh.opts.Node, w.Generation, st)
	if err != nil {
		if !errors.Is(err, store.ErrConflict) && ctx.Err() == nil {
			a.log.Warn("webhook: record status", "webhook", w.ID, "err", err)
			sleep(ctx, nil, a.wh.opts.RetryMin)
		}
		return a.reload(ctx, r)
	}
	if nw.State != w.State || nw.Attempts != w.Attempts {
		a.wh.metrics.State(w.ID, nw.State, nw.Attempts)
	}
	return nw, nil
}

// disable turns a webhook off (410 from its receiver).
func (a *App) disable(ctx context.Context, r *runner, w store.Webhook, why string) (store.Webhook, error) {
	nw, err := a.updateWebhookFrom(ctx, w, func(w *store.Webhook) {
		w.Enabled, w.State, w.LastError, w.UpdatedAt = false, store.WebhookPaused, why, a.now().UTC()
	})
	if err != nil {
		return a.reload(ctx, r)
	}
	r.gen.Store(nw.Generation)
	a.wh.metrics.State(w.ID, nw.State, nw.Attempts)
	return nw, nil
}

// reload reads the webhook again (after a configuration change). Errors:
// the webhook is gone, this node no longer holds its lease, ctx's.
func (a *App) reload(ctx context.Context, r *runner) (store.Webhook, error) {
	for {
		w, err := a.store.GetWebhook(ctx, r.id)
		switch {
		case err == nil && w.LeaseOwner != a.wh.opts.Node:
			return w, errors.New("the lease moved to another node")
		case err == nil:
			r.gen.Store(w.Generation)
			return w, nil
		case errors.Is(err, store.ErrNotFound):
			return w, errors.New("the webhook was deleted")
		case ctx.Err() != nil:
			return w, ctx.Err()
		}
		a.log.Warn("webhook: reload", "webhook", r.id, "err", err)
		sleep(ctx, nil, a.wh.opts.RetryMin)
	}
}
