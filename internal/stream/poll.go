package stream

import (
	"context"
	"errors"
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
// same way. Errors: store.ErrNotFound, store.ErrInvalid, store.ErrCompacted.
func (e *Resources) Poll(ctx context.Context, topic Topic, sel store.Selector, since *Cursor, limit int, wait time.Duration, stop <-chan struct{}) ([]EventFrame, Cursor, error) {
	if _, err := e.Store.GetCollection(ctx, topic.Collection); err != nil {
		return nil, Cursor{}, err
	}
	var pos int64
	if since == nil {
		pos = e.Feed.Last()
	} else {
		if err := CheckResourceCursor(*since, e.Store.Epoch()); err != nil {
			return nil, Cursor{}, err
		}
		head, err := e.Store.Revision(ctx)
		if err != nil {
			return nil, Cursor{}, err
		}
		if since.Pos > head {
			return nil, Cursor{}, store.Errorf(store.CodeCompacted, "cursor is ahead of this store's history; reload the state and start again")
		}
		pos = since.Pos
	}
	labels := sel.String()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		advanced := e.Feed.Advanced()
		var out []EventFrame
		size := 0
	read:
		for len(out) < limit && size < PollMaxBytes {
			want := min(replayPage, limit-len(out))
			changes, err := e.Store.Changes(ctx, pos, want)
			if err != nil {
				return nil, Cursor{}, resyncError(err)
			}
			for _, ch := range changes {
				pos = ch.Revision
				if !matchesTopic(topic, ch) {
					continue
				}
				ev, ok := EventFor(ch, sel)
				if !ok {
					continue
				}
				r := ToAPIResource(ch.Resource)
				out = append(out, EventFrame{Type: "event", Topic: topic.Path, Labels: labels, Event: ev, Cursor: e.Feed.Cursor(ch.Revision).String(), Resource: &r})
				size += len(ch.Resource.Data) + 256
				if len(out) == limit || size >= PollMaxBytes {
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
		case <-advanced:
		case <-timer.C:
			return []EventFrame{}, e.Feed.Cursor(pos), nil
		case <-stop:
			return []EventFrame{}, e.Feed.Cursor(pos), nil
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
// waiting up to wait for the first one, or until stop is closed. Errors:
// store.ErrInvalid, store.ErrCompacted, store.ErrUnavailable.
func (c *Channels) Poll(ctx context.Context, topic Topic, since *Cursor, limit int, wait time.Duration, stop <-chan struct{}) ([]EventFrame, Cursor, error) {
	if topic.Kind != TopicChannel {
		return nil, Cursor{}, store.Errorf(store.CodeInvalid, "presence cannot be long-polled; read GET /v1/channels/{ch}/presence or subscribe")
	}
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
			return nil, Cursor{}, brokerError(err)
		}
		pos = top
	} else {
		if since.Kind != KindChannel {
			return nil, Cursor{}, store.Errorf(store.CodeInvalid, "cursor belongs to a resource topic, not to a channel")
		}
		pos = broker.Position{Epoch: since.Epoch, Offset: since.Pos}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		msgs, top, err := c.Broker.History(ctx, ch, pos, limit)
		if err != nil {
			return nil, Cursor{}, brokerError(err)
		}
		if since != nil && (top.Epoch != pos.Epoch || pos.Offset > top.Offset) {
			return nil, Cursor{}, brokerError(broker.ErrGone)
		}
		if len(msgs) > 0 {
			out := make([]EventFrame, 0, len(msgs))
			size := 0
			for _, m := range msgs {
				msg := ChannelMessageJSON(m)
				out = append(out, EventFrame{Type: "event", Topic: topic.Path, Event: EventMessage, Cursor: msg.Cursor, Message: &msg})
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
			return []EventFrame{}, Cursor{Kind: KindChannel, Epoch: pos.Epoch, Pos: pos.Offset}, nil
		case <-stop:
			return []EventFrame{}, Cursor{Kind: KindChannel, Epoch: pos.Epoch, Pos: pos.Offset}, nil
		case <-ctx.Done():
			return nil, Cursor{}, errors.Join(ctx.Err())
		}
	}
}
