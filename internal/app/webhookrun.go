package app

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// Webhook delivery. Every node runs RunWebhooks; a webhook is delivered
// by the one node holding its lease in the store. Its runner reads the
// topic after the acknowledged cursor (the long-poll engine: woken by the
// feed or the broker), sends the events in cursor order, one request at a
// time, and stores the new cursor only after a 2xx: at least once, in
// order, resumable after any crash, with duplicates only of a request in
// flight when a node died or its lease was lost.

// WebhookEncoder encodes what a webhook receiver gets (internal/wire
// implements it with the spec's types). Implementations must be safe for
// concurrent use.
type WebhookEncoder interface {
	// Event encodes an event exactly as WebSocket subscribers get it.
	// Errors: the resource data is not valid JSON (a store defect).
	Event(ev stream.Event) ([]byte, error)
	// Ping encodes a webhook.ping.
	Ping(webhook, topic string, at time.Time) []byte
	// ResyncRequired encodes a webhook.resync-required notice.
	ResyncRequired(webhook, topic, cursor, detail string, at time.Time) []byte
}

// WebhookMetrics observes delivery (internal/webhook implements it with
// Prometheus). Implementations must be safe for concurrent use.
type WebhookMetrics interface {
	// Delivered counts an attempt: result is "success", "failure" or
	// "gone" (410), events how many events it carried.
	Delivered(webhook, result string, events int, took time.Duration)
	// State records a webhook's state and consecutive failed attempts.
	State(webhook string, state store.WebhookState, attempts int)
	// Lag records how many events a webhook is behind.
	Lag(webhook string, n int64)
	// Forget drops a webhook's series (deleted, or delivered elsewhere).
	Forget(webhook string)
}

// WebhookOptions configures webhook delivery; zero durations and counts
// take the defaults in brackets.
type WebhookOptions struct {
	// Sender makes the requests; nil leaves webhooks off (the API answers
	// 503).
	Sender WebhookSender
	// Encoder encodes the bodies (required with Sender).
	Encoder WebhookEncoder
	// Metrics observes delivery (nil: none).
	Metrics WebhookMetrics
	// Node names this node's leases (random).
	Node string
	// Timeout bounds one request [10s].
	Timeout time.Duration
	// FailureWindow is how long a webhook may fail before it is paused [24h].
	FailureWindow time.Duration
	// RetryMin and RetryMax bound the backoff between attempts [1s, 10m].
	RetryMin, RetryMax time.Duration
	// LeaseTTL is the delivery lease [15s]; it is renewed at a third of
	// it, and another node takes over a dead node's webhooks within
	// LeaseTTL and a third.
	LeaseTTL time.Duration
	// SecretGrace is how long a rotated-out secret keeps signing [24h].
	SecretGrace time.Duration
	// Max caps the webhooks of the server [100].
	Max int
	// PollWait is how long a runner waits for events before it reloads
	// its webhook [25s].
	PollWait time.Duration
}

func (o WebhookOptions) withDefaults() WebhookOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Timeout, 10*time.Second)
	def(&o.FailureWindow, 24*time.Hour)
	def(&o.RetryMin, time.Second)
	def(&o.RetryMax, 10*time.Minute)
	def(&o.LeaseTTL, 15*time.Second)
	def(&o.SecretGrace, 24*time.Hour)
	def(&o.PollWait, 25*time.Second)
	if o.RetryMax < o.RetryMin {
		o.RetryMax = o.RetryMin
	}
	if o.Max <= 0 {
		o.Max = 100
	}
	if o.Node == "" {
		var b [8]byte
		_, _ = crand.Read(b[:])
		o.Node = "node-" + hex.EncodeToString(b[:])
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	return o
}

// webhooks is App's delivery machinery on this node.
type webhooks struct {
	opts    WebhookOptions
	sender  WebhookSender
	metrics WebhookMetrics

	mu      sync.Mutex
	running map[string]*runner
	wake    chan struct{} // the scanner's nudge (buffered)
}

func newWebhooks(opts WebhookOptions) *webhooks {
	opts = opts.withDefaults()
	if opts.Encoder == nil {
		opts.Sender = nil
	}
	return &webhooks{opts: opts, sender: opts.Sender, metrics: opts.Metrics, running: map[string]*runner{}, wake: make(chan struct{}, 1)}
}

// runner is one webhook's delivery on this node.
type runner struct {
	id   string
	poke chan struct{} // buffered: the configuration changed, reload it
	gen  atomic.Int64  // the generation being delivered
	// caughtUp: the last read emptied the backlog (fewer events than a
	// batch holds) and what it read was acknowledged. The scanner then
	// records a lag of 0 instead of counting the change log.
	caughtUp atomic.Bool
}

func (r *runner) nudge() {
	select {
	case r.poke <- struct{}{}:
	default:
	}
}

// nudge tells this node that webhook id (or some webhook: "") changed.
func (h *webhooks) nudge(id string) {
	h.mu.Lock()
	if r := h.running[id]; r != nil {
		r.nudge()
	}
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// deliverable reports whether w has something to deliver.
func deliverable(w store.Webhook) bool {
	switch w.State {
	case store.WebhookActive, store.WebhookRetrying:
		return w.Enabled
	case store.WebhookResyncRequired:
		return w.Enabled && !w.ResyncNotified
	}
	return false
}

// RunWebhooks delivers webhooks until ctx ends: every LeaseTTL/3, and
// when a webhook changes on this node, it takes the lease of each
// deliverable webhook no live node holds and starts its runner. When ctx
// ends it stops the runners (a request in flight is cancelled and will be
// sent again) and releases their leases, so another node takes over at
// once. It returns nil; without a Sender it only waits for ctx.
func (a *App) RunWebhooks(ctx context.Context) error {
	h := a.wh
	if h.sender == nil {
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(h.opts.LeaseTTL / 3)
	defer t.Stop()
	for {
		a.scanWebhooks(ctx, &wg)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-h.wake:
		}
	}
}

// scanWebhooks starts a runner for each deliverable webhook whose lease
// it gets, and records the lag of those it runs.
func (a *App) scanWebhooks(ctx context.Context, wg *sync.WaitGroup) {
	h := a.wh
	ws, err := a.store.ListWebhooks(ctx)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("webhooks: list", "err", err)
		}
		return
	}
	now := a.now()
	for _, w := range ws {
		h.mu.Lock()
		r := h.running[w.ID]
		h.mu.Unlock()
		if r != nil {
			if r.caughtUp.Load() {
				h.metrics.Lag(w.ID, 0)
			} else {
				h.metrics.Lag(w.ID, a.webhookInfo(ctx, w).Lag)
			}
			continue
		}
		if !deliverable(w) || w.LeaseOwner != "" && w.LeaseOwner != h.opts.Node && now.Before(w.LeaseUntil) {
			continue
		}
		lw, err := a.store.AcquireWebhookLease(ctx, w.ID, h.opts.Node, h.opts.LeaseTTL)
		if err != nil {
			continue // another node got it first, or it is gone
		}
		r = &runner{id: w.ID, poke: make(chan struct{}, 1)}
		r.gen.Store(lw.Generation)
		h.mu.Lock()
		h.running[w.ID] = r
		h.mu.Unlock()
		a.log.Info("webhook delivery started on this node", "webhook", w.ID, "node", h.opts.Node, "cursor", lw.Cursor)
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.runWebhook(ctx, r)
		}()
	}
}

// runWebhook delivers r's webhook while this node holds its lease and it
// has something to deliver, then releases the lease.
func (a *App) runWebhook(ctx context.Context, r *runner) {
	h := a.wh
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		// The lease goes first: until the runner is off the running
		// list, the scanner cannot start another one for this webhook
		// that this release would then take the lease from.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		if err := a.store.ReleaseWebhookLease(rctx, r.id, h.opts.Node); err != nil && !errors.Is(err, store.ErrNotFound) {
			a.log.Warn("webhook: release lease", "webhook", r.id, "err", err)
		}
		h.mu.Lock()
		delete(h.running, r.id)
		h.mu.Unlock()
		h.metrics.Forget(r.id)
		h.nudge("") // it may have become deliverable again meanwhile
	}()
	go a.keepLease(ctx, cancel, r)
	// A change committed after the lease was taken but before this runner
	// joined the running list poked nobody: read the webhook once more.
	w, err := a.reload(ctx, r)
	if err != nil {
		return
	}
	h.metrics.State(w.ID, w.State, w.Attempts)
	for ctx.Err() == nil && deliverable(w) {
		if w, err = a.deliverNext(ctx, r, w); err != nil {
			if ctx.Err() == nil {
				a.log.Info("webhook delivery stopped on this node", "webhook", r.id, "reason", err)
			}
			return
		}
	}
}

// keepLease renews the runner's lease every LeaseTTL/3 and pokes it when
// the configuration changed elsewhere; it cancels the runner when the
// lease is lost, or could not be renewed for two thirds of its TTL (so
// the runner stops before another node may take over).
func (a *App) keepLease(ctx context.Context, cancel context.CancelFunc, r *runner) {
	h := a.wh
	t := time.NewTicker(h.opts.LeaseTTL / 3)
	defer t.Stop()
	renewed := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w, err := a.store.AcquireWebhookLease(ctx, r.id, h.opts.Node, h.opts.LeaseTTL)
		switch {
		case err == nil:
			renewed = time.Now()
			if w.Generation != r.gen.Load() {
				r.nudge()
			}
		case errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrConflict):
			cancel()
			return
		case time.Since(renewed) > 2*h.opts.LeaseTTL/3:
			a.log.Warn("webhook: lease not renewed in time, stopping delivery on this node", "webhook", r.id, "err", err)
			cancel()
			return
		}
	}
}

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
	sel, err2 := store.ParseSelector(w.Labels)
	cur, err3 := stream.ParseCursor(w.Cursor)
	if err := errors.Join(err1, err2, err3); err != nil {
		return batch{}, "", store.Errorf(store.CodeCompacted, "the webhook's stored topic or cursor is unreadable: %v", err)
	}
	if err := a.checkTopicRequest(t, sel, &cur); err != nil {
		return batch{}, "", err
	}
	limit, wait := max(w.MaxBatch, 1), a.wh.opts.PollWait
	var (
		evs  []stream.Event
		next stream.Cursor
		err  error
	)
	if t.IsResource() {
		evs, next, err = a.rt.Resources.Tail(ctx, t, sel, &cur, limit, wait, r.poke)
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
	var b [8]byte
	_, _ = crand.Read(b[:])
	res := a.wh.sender.Send(ctx, WebhookRequest{URL: w.URL, ID: "ping_" + hex.EncodeToString(b[:]),
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

type noMetrics struct{}

func (noMetrics) Delivered(string, string, int, time.Duration) {}
func (noMetrics) State(string, store.WebhookState, int)        {}
func (noMetrics) Lag(string, int64)                            {}
func (noMetrics) Forget(string)                                {}
