package stream

import (
	"context"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/store"
)

// Head returns the cursor of the store's newest committed revision: a
// reader starting after it sees every later write. Errors: the store's.
func (e *Resources) Head(ctx context.Context) (Cursor, error) {
	rev, err := e.Store.Revision(ctx)
	if err != nil {
		return Cursor{}, err
	}
	return e.Feed.Cursor(rev), nil
}

// Behind counts the events of a resource topic (with its selector) after
// since, reading at most budget change-log entries; exact is false when
// the count stopped at the budget (n is then a lower bound). Errors:
// store.ErrCompacted, the store's.
func (e *Resources) Behind(ctx context.Context, topic Topic, pred store.Predicate, since Cursor, budget int) (n int64, exact bool, err error) {
	pos, read := since.Pos, 0
	for read < budget {
		want := min(replayPage, budget-read)
		changes, err := e.Store.Changes(ctx, pos, want)
		if err != nil {
			return 0, false, resyncError(err)
		}
		for _, ch := range changes {
			pos = ch.Revision
			if !matchesTopic(topic, ch) {
				continue
			}
			if _, ok := EventFor(NewChangeView(ch), pred); ok {
				n++
			}
		}
		read += len(changes)
		if len(changes) < want {
			return n, true, nil
		}
	}
	return n, false, nil
}

// Head returns the cursor of a channel's newest message (offset 0 when it
// has none): a reader starting after it sees every later message.
// Errors: store.ErrUnavailable.
func (c *Channels) Head(ctx context.Context, channel string) (Cursor, error) {
	top, err := c.Broker.Position(ctx, channel)
	if err != nil {
		return Cursor{}, BrokerError(err)
	}
	return Cursor{Kind: KindChannel, Epoch: top.Epoch, Pos: top.Offset}, nil
}

// Behind counts a channel's messages after since (offsets are dense).
// Errors: store.ErrCompacted (another epoch: the channel was reset),
// store.ErrUnavailable.
func (c *Channels) Behind(ctx context.Context, channel string, since Cursor) (int64, error) {
	top, err := c.Broker.Position(ctx, channel)
	if err != nil {
		return 0, BrokerError(err)
	}
	if top.Epoch != since.Epoch && top.Offset > 0 {
		return 0, BrokerError(broker.ErrGone)
	}
	return max(top.Offset-since.Pos, 0), nil
}
