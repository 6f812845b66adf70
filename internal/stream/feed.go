package stream

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

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

	last atomic.Int64
}

// FeedOptions configures a Feed.
type FeedOptions struct {
	// Frames encodes the events (required).
	Frames Frames
	Logger *slog.Logger
	// Poll is the fallback interval when no commit notification arrives.
	Poll time.Duration
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
	f := &Feed{store: s, hub: h, log: opts.Logger, frames: opts.Frames, poll: opts.Poll}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.poll <= 0 {
		f.poll = time.Second
	}
	f.last.Store(rev)
	return f, nil
}

// Epoch is the store epoch that resource cursors carry.
func (f *Feed) Epoch() string { return f.store.Epoch() }

// Last is the newest revision broadcast: every change up to it has been
// delivered to the hub.
func (f *Feed) Last() int64 { return f.last.Load() }

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
		if n == feedBatch {
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

// step broadcasts the next batch of changes and returns how many it read.
func (f *Feed) step(ctx context.Context) (int, error) {
	last := f.last.Load()
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
		f.advance(rev)
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	for _, ch := range changes {
		f.dispatch(ch)
		f.advance(ch.Revision)
	}
	return len(changes), nil
}

func (f *Feed) advance(rev int64) { f.last.Store(rev) }

// noSelector stands for a key registered without a keySpec.
var noSelector keySpec

// dispatch encodes the change once per subscribed key and broadcasts it.
// Each key carries its parsed selector (keySpec, registered with the key).
func (f *Feed) dispatch(ch store.Change) {
	cur := f.Cursor(ch.Revision)
	topics := []string{CollectionTopic(ch.Resource.Collection), ResourceTopic(ch.Resource.Collection, ch.Resource.ID)}
	if ch.Type == store.CollectionUpdated {
		topics = topics[:1] // the collection's subscribers only
	}
	for _, topic := range topics {
		for _, e := range f.hub.Entries(topic) {
			spec, ok := e.Attr.(*keySpec)
			if !ok {
				spec = &noSelector // every resource key is registered with its spec; this is defence only
			}
			ev, ok := EventFor(ch, spec.sel)
			if !ok {
				continue
			}
			b, err := f.frames.Event(changeEvent(topic, spec.labels, ev, cur, ch))
			if err != nil {
				f.log.Error("encode event", "revision", ch.Revision, "err", err)
				continue
			}
			f.hub.Broadcast(e.Key, hub.NewEvent(b, e.Key, cur.String(), ch.Revision))
		}
	}
}
