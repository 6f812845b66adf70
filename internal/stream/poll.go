package stream

import (
	"context"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
)

// PollMaxBytes bounds the data one long-poll answer carries: events are
// added until limit or this many bytes of data (at least one event), and
// the cursor says where the next poll picks up.
const PollMaxBytes = 1 << 20

// Poll returns the events of a resource topic after since (nil: from now),
// waiting up to wait for the first one; with none, the same cursor comes
// back; a close of stop (the server is shutting down) ends the wait the
// same way. The wait is on the hub key of the topic and selector, which
// the feed wakes only when an event of it is broadcast: a waiting poll
// reads the change log again only then, not on every write. The caller
// (app) has checked since (its kind and epoch). Errors:
// store.ErrNotFound, store.ErrCompacted.
func (e *Resources) Poll(ctx context.Context, topic Topic, pred store.Predicate, since *Cursor, limit int, wait time.Duration, stop <-chan struct{}) ([]Event, Cursor, error) {
	if _, err := e.Store.GetCollection(ctx, topic.Collection); err != nil {
		return nil, Cursor{}, err
	}
	return e.Tail(ctx, topic, pred, since, limit, wait, stop)
}

// Tail is Poll without the check that the collection exists, for a
// durable reader (a webhook) that must also read the deletions of a
// collection deleted meanwhile. Errors: store.ErrCompacted, the store's.
func (e *Resources) Tail(ctx context.Context, topic Topic, pred store.Predicate, since *Cursor, limit int, wait time.Duration, stop <-chan struct{}) ([]Event, Cursor, error) {
	spec := newKeySpec(topic.Path, pred)
	w := &pollWaiter{c: make(chan struct{}, 1)}
	e.Hub.SubscribeWith(spec.key, spec, w)
	defer e.Hub.Unsubscribe(spec.key, w)
	var pos int64
	if since == nil {
		pos = e.Feed.Last()
	} else {
		head, err := e.Store.Revision(ctx)
		if err != nil {
			return nil, Cursor{}, err
		}
		if since.Pos > head {
			return nil, Cursor{}, errCursorAhead
		}
		pos = since.Pos
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		var out []Event
		size := 0
	read:
		for len(out) < limit && size < PollMaxBytes {
			want := min(replayPage, limit-len(out))
			changes, err := e.Store.Changes(ctx, pos, want)
			if err == nil {
				changes, err = completeBatches(ctx, e.Store, changes)
			}
			if err != nil {
				return nil, Cursor{}, resyncError(err)
			}
			views := viewsOf(changes)
			ends := lastVisible(views, topic, pred)
			for i, ch := range changes {
				pos = ch.Revision
				if !matchesTopic(topic, ch) {
					continue
				}
				ev, ok := EventFor(views[i], pred)
				if !ok {
					continue
				}
				out = append(out, changeEvent(spec, topic.Path, ev, e.Feed.Cursor(ch.Revision), ch, batchEnd(ends, ch)))
				size += len(ch.Resource.Data) + 256
				if len(out) == limit || size >= PollMaxBytes {
					if b := out[len(out)-1].Batch; b != nil && b.End {
						pos = b.LastRevision // the rest of the batch is not for this topic
					}
					break read
				}
			}
			if len(changes) < want {
				break
			}
		}
		if len(out) > 0 {
			return out, e.Feed.Cursor(pos), nil
		}
		select {
		case <-w.c:
		case <-timer.C:
			return []Event{}, e.Feed.Cursor(pos), nil
		case <-stop:
			return []Event{}, e.Feed.Cursor(pos), nil
		case <-ctx.Done():
			return nil, Cursor{}, ctx.Err()
		}
	}
}

// pollWaiter wakes a long-poll when its channel gets a message.
type pollWaiter struct{ c chan struct{} }

func (w *pollWaiter) Deliver(*hub.Message) bool {
	select {
	case w.c <- struct{}{}:
	default:
	}
	return true
}

func (w *pollWaiter) Close() {}

// Poll returns the messages of a channel after since (nil: from now),
// waiting up to wait for the first one, or until stop is closed. The
// caller (app) has checked that topic is a messages topic and since a
// channel cursor. Errors: store.ErrCompacted, store.ErrUnavailable.
func (c *Channels) Poll(ctx context.Context, topic Topic, since *Cursor, limit int, wait time.Duration, stop <-chan struct{}) ([]Event, Cursor, error) {
	ch := topic.Channel
	if err := c.acquire(ctx, ch); err != nil {
		return nil, Cursor{}, err
	}
	defer c.release(ch)
	w := &pollWaiter{c: make(chan struct{}, 1)}
	c.Hub.Subscribe(topic.Path, w)
	defer c.Hub.Unsubscribe(topic.Path, w)

	var pos broker.Position
	if since == nil {
		top, err := c.Broker.Position(ctx, ch)
		if err != nil {
			return nil, Cursor{}, BrokerError(err)
		}
		pos = top
	} else {
		pos = broker.Position{Epoch: since.Epoch, Offset: since.Pos}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		msgs, top, err := c.Broker.History(ctx, ch, pos, limit)
		if err != nil {
			return nil, Cursor{}, BrokerError(err)
		}
		if since != nil && (top.Epoch != pos.Epoch || pos.Offset > top.Offset) {
			return nil, Cursor{}, BrokerError(broker.ErrGone)
		}
		if len(msgs) > 0 {
			out := make([]Event, 0, len(msgs))
			size := 0
			for _, m := range msgs {
				out = append(out, messageEvent(m))
				pos.Offset = m.Offset
				if size += len(m.Data) + 256; size >= PollMaxBytes {
					break
				}
			}
			return out, Cursor{Kind: KindChannel, Epoch: top.Epoch, Pos: pos.Offset}, nil
		}
		if pos.Epoch == "" {
			pos.Epoch = top.Epoch
		}
		select {
		case <-w.c:
		case <-timer.C:
			return []Event{}, Cursor{Kind: KindChannel, Epoch: pos.Epoch, Pos: pos.Offset}, nil
		case <-stop:
			return []Event{}, Cursor{Kind: KindChannel, Epoch: pos.Epoch, Pos: pos.Offset}, nil
		case <-ctx.Done():
			return nil, Cursor{}, ctx.Err()
		}
	}
}
