package app

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

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
		o.Node = randomNode()
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

type noMetrics struct{}

func (noMetrics) Delivered(string, string, int, time.Duration) {}
func (noMetrics) State(string, store.WebhookState, int)        {}
func (noMetrics) Lag(string, int64)                            {}
func (noMetrics) Forget(string)                                {}
