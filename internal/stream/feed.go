package stream

import (
	"context"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
)

// Feed tails the store's change log after commit and broadcasts every
// change, in revision order, to the hub keys of its collection and
// resource topics. It is the only path from writes to subscribers, so an
// event can never precede its commit.
type Feed struct {
	store  store.Store
	hub    *hub.Hub
	log    *slog.Logger
	frames Frames
	poll   time.Duration
	tracer trace.Tracer // nil: tracing off

	// pos is the newest revision read and broadcast (the feed goroutine's
	// read position); last trails it until the hub delivered (advance).
	pos  atomic.Int64
	last atomic.Int64
	// caughtUp is when (nanoseconds since base, monotonic) the last read
	// of the change log that reached its end started (0: none yet).
	caughtUp atomic.Int64
	base     time.Time

	obsMu     sync.Mutex
	observers []ChangeObserver
}

// ChangeObserver learns of every change a Feed reads from the change log
// (e.g. to invalidate a cache), before the change's events are broadcast:
// a subscriber that received an event and then reads the resource
// through the observer sees that change or a later one.
type ChangeObserver interface {
	// Changed is called with each change, in revision order, on the
	// feed's goroutine; it must not block.
	Changed(ch store.Change)
	// Lost is called when the feed skipped changes without reading them
	// (the change log was compacted past it): whatever the observer
	// derived from the changes it saw may now be stale.
	Lost()
}

// FeedOptions configures a Feed.
type FeedOptions struct {
	// Frames encodes the events (required).
	Frames Frames
	Logger *slog.Logger
	// Poll is the fallback interval when no commit notification arrives.
	Poll time.Duration
	// Tracer, when set, records a "fanout <topic>" span for every traced
	// change (store.Change.Trace), linked to the span of the request
	// that made it (nil: tracing off).
	Tracer trace.Tracer
}

// NewFeed returns a feed starting at the store's current revision.
// Errors: opts.Frames is nil, the store cannot be read.
func NewFeed(ctx context.Context, s store.Store, h *hub.Hub, opts FeedOptions) (*Feed, error) {
	if opts.Frames == nil {
		return nil, errors.New("stream: FeedOptions.Frames is required")
	}
	rev, err := s.Revision(ctx)
	if err != nil {
		return nil, err
	}
	f := &Feed{store: s, hub: h, log: opts.Logger, frames: opts.Frames, poll: opts.Poll, tracer: opts.Tracer, base: time.Now()}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.poll <= 0 {
		f.poll = time.Second
	}
	f.pos.Store(rev)
	f.last.Store(rev)
	return f, nil
}

// Epoch is the store epoch that resource cursors carry.
func (f *Feed) Epoch() string { return f.store.Epoch() }

// Last is the newest revision delivered: every change up to it has been
// handed to the hub's subscribers (see advance).
func (f *Feed) Last() int64 { return f.last.Load() }

// Observe registers o for every change read from now on (see
// ChangeObserver). It may be called while the feed runs; it returns no
// error.
func (f *Feed) Observe(o ChangeObserver) {
	f.obsMu.Lock()
	defer f.obsMu.Unlock()
	f.observers = append(f.observers[:len(f.observers):len(f.observers)], o)
}

// CaughtUp returns when the feed last started a read of the change log
// that reached the log's end, once the changes it read were passed to the
// observers and broadcast: every change committed before that time has
// been delivered. It is the zero time until the first such read. On a
// healthy feed it is at most about the poll interval (FeedOptions.Poll)
// old; it falls behind while the store cannot be read or the feed lags.
// It returns no error.
func (f *Feed) CaughtUp() time.Time {
	n := f.caughtUp.Load()
	if n == 0 {
		return time.Time{}
	}
	return f.base.Add(time.Duration(n))
}

func (f *Feed) observed() []ChangeObserver {
	f.obsMu.Lock()
	defer f.obsMu.Unlock()
	return f.observers
}

// Cursor returns the resource cursor for revision rev.
func (f *Feed) Cursor(rev int64) Cursor {
	return Cursor{Kind: KindResource, Epoch: f.store.Epoch(), Pos: rev}
}

// Run tails the change log until ctx is done.
func (f *Feed) Run(ctx context.Context) error {
	t := time.NewTicker(f.poll)
	defer t.Stop()
	for {
		n, err := f.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			f.log.Warn("change feed", "err", err)
		}
		if n >= feedBatch {
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.store.Notify():
		case <-t.C:
		}
	}
}

const feedBatch = 500

// step broadcasts the next page of changes (extended to the end of a
// batch it ends inside) and returns how many the page held.
func (f *Feed) step(ctx context.Context) (int, error) {
	last := f.pos.Load()
	start := time.Now()
	changes, err := f.store.Changes(ctx, last, feedBatch)
	if errors.Is(err, store.ErrCompacted) {
		// The log was compacted past us (only possible after a long stall):
		// skip to the head; subscribers resuming across the hole get
		// resync-required from the change log.
		rev, rerr := f.store.Revision(ctx)
		if rerr != nil {
			return 0, rerr
		}
		f.log.Error("change feed fell behind compaction; skipping", "from", last, "to", rev)
		for _, o := range f.observed() {
			o.Lost()
		}
		f.advance(rev)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := len(changes)
	if changes, err = completeBatches(ctx, f.store, changes); err != nil {
		return 0, err
	}
	observers := f.observed()
	for i := 0; i < len(changes); {
		ch := changes[i]
		if ch.Batch == nil {
			for _, o := range observers {
				o.Changed(ch)
			}
			f.broadcast(NewChangeView(ch), nil, nil)
			i++
			continue
		}
		j := i + 1
		for j < len(changes) && changes[j].Batch != nil && changes[j].Batch.ID == ch.Batch.ID {
			j++
		}
		for _, o := range observers {
			for _, c := range changes[i:j] {
				o.Changed(c)
			}
		}
		f.dispatchBatch(changes[i:j])
		i = j
	}
	if len(changes) > 0 {
		f.advance(changes[len(changes)-1].Revision) // never inside a batch
	}
	if n < feedBatch {
		// The read reached the end of the log as of start: every change
		// committed before start has now been broadcast.
		f.caughtUp.Store(max(1, int64(start.Sub(f.base))))
	}
	return n, nil
}

// advance makes Last rev once the hub has handed every change broadcast
// so far to its subscribers: a bookmark or a poll that starts from Last
// can then never get ahead of an event still on its way.
func (f *Feed) advance(rev int64) {
	f.pos.Store(rev)
	f.hub.After(func() { f.last.Store(rev) })
}

// noSelector stands for a key registered without a keySpec.
var noSelector keySpec

// specOf is the keySpec a resource key was registered with.
func specOf(e hub.Entry) *keySpec {
	if spec, ok := e.Attr.(*keySpec); ok {
		return spec
	}
	return &noSelector // every resource key is registered with its spec; this is defence only
}

// changeTopics are the topics a change is broadcast on: a collection
// change goes to the collection's subscribers only.
func changeTopics(ch store.Change) []string {
	if ch.Type == store.CollectionUpdated {
		return []string{CollectionTopic(ch.Resource.Collection)}
	}
	return []string{CollectionTopic(ch.Resource.Collection), ResourceTopic(ch.Resource.Collection, ch.Resource.ID)}
}

// broadcast encodes the change once per subscribed key and broadcasts it.
// Each key carries its parsed selector and filter (keySpec, registered
// with the key); view is the change decoded once for all of them.
// A change outside a batch reads the keys from the hub (entries and ends
// are nil); a change of a batch gets them from dispatchBatch: the keys of
// each topic, and the revision of each key's last visible change of the
// batch.
func (f *Feed) broadcast(view *ChangeView, entries map[string][]hub.Entry, ends map[string]int64) {
	ch := view.Change
	cur := f.Cursor(ch.Revision)
	topics := changeTopics(ch)
	delivered := 0
	if f.tracer != nil && ch.Trace != "" {
		span := f.fanoutSpan(ch, topics[0])
		defer func() {
			span.SetAttributes(attribute.Int("tandem.subscribers", delivered))
			span.End()
		}()
	}
	for _, topic := range topics {
		es := entries[topic]
		if entries == nil {
			es = f.hub.Entries(topic)
		}
		for _, e := range es {
			spec := specOf(e)
			ev, ok := EventFor(view, spec.pred)
			if !ok {
				continue
			}
			b, err := f.frames.Event(changeEvent(spec, topic, ev, cur, ch, ends[e.Key]))
			if err != nil {
				f.log.Error("encode event", "revision", ch.Revision, "err", err)
				continue
			}
			delivered += f.hub.Dispatch(e.Key, hub.NewEvent(b, e.Key, cur.String(), ch.Revision))
		}
	}
}

// fanoutSpan starts the span of a traced change's fan-out: a root span
// (the fan-out runs after the request has been answered, perhaps on
// another node) linked to the request's span.
func (f *Feed) fanoutSpan(ch store.Change, topic string) trace.Span {
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithNewRoot(),
		trace.WithAttributes(attribute.String("tandem.topic", topic), attribute.Int64("tandem.revision", ch.Revision),
			attribute.String("tandem.change", string(ch.Type)))}
	if sc, ok := ParseTraceparent(ch.Trace); ok {
		opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
	}
	_, span := f.tracer.Start(context.Background(), "fanout "+topic, opts...)
	return span
}

// ParseTraceparent parses a W3C traceparent ("00-<trace id>-<span id>-<flags>")
// into the remote span context it names; ok is false when s is not one.
func ParseTraceparent(s string) (sc trace.SpanContext, ok bool) {
	if len(s) != 55 || s[2] != '-' || s[35] != '-' || s[52] != '-' || s[:2] == "ff" {
		return sc, false
	}
	tid, err := trace.TraceIDFromHex(s[3:35])
	if err != nil {
		return sc, false
	}
	sid, err := trace.SpanIDFromHex(s[36:52])
	if err != nil {
		return sc, false
	}
	flags, err := hex.DecodeString(s[53:55])
	if err != nil {
		return sc, false
	}
	sc = trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.TraceFlags(flags[0]), Remote: true})
	return sc, sc.IsValid()
}
