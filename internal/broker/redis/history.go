// Publishing, history reads and channel positions (the publish and read scripts).

package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

// Publish appends data to the channel's stream (bounded by opts) and
// publishes it to every subscribed node, in one atomic script. Errors:
// broker.ErrUnavailable (wrapped) when Redis fails or after Close, or
// ctx's error.
func (b *Broker) Publish(ctx context.Context, channel string, data json.RawMessage, publisher string, opts broker.HistoryOptions) (broker.Message, error) {
	if b.isClosed() {
		return broker.Message{}, errClosed
	}
	res, err := publishScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "meta"), b.key(channel, "hist")},
		newEpoch(), ms(b.opts.MetaTTL), max(opts.Size, 0), ms(opts.TTL), publisher, []byte(data), b.chPre+channel,
	).Slice()
	if err != nil {
		return broker.Message{}, b.fail(ctx, err)
	}
	if len(res) != 3 {
		return broker.Message{}, fmt.Errorf("%w: publish script returned %v", broker.ErrUnavailable, res)
	}
	epoch, _ := res[0].(string)
	off, _ := res[1].(int64)
	now, _ := res[2].(int64)
	return broker.Message{Channel: channel, Epoch: epoch, Offset: off, Data: data, Publisher: publisher, Time: time.UnixMilli(now)}, nil
}

// History returns up to limit messages (limit <= 0: all retained) after
// since, oldest first, and the channel's position, after dropping
// messages older than the channel's TTL. A new channel (or one whose keys
// were lost) gets a new epoch here. Errors: broker.ErrGone (see
// broker.CheckSince), broker.ErrUnavailable (wrapped) when Redis fails or
// after Close, or ctx's error.
func (b *Broker) History(ctx context.Context, channel string, since broker.Position, limit int) ([]broker.Message, broker.Position, error) {
	if b.isClosed() {
		return nil, broker.Position{}, errClosed
	}
	res, err := readScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "meta"), b.key(channel, "hist")},
		newEpoch(), ms(b.opts.MetaTTL), max(since.Offset, 0), max(limit, 0), 1,
	).Slice()
	if err != nil {
		return nil, broker.Position{}, b.fail(ctx, err)
	}
	top, oldest, entries, err := parseRead(res)
	if err != nil {
		return nil, broker.Position{}, err
	}
	if err := broker.CheckSince(since, top, oldest); err != nil {
		return nil, top, err
	}
	msgs := make([]broker.Message, 0, len(entries))
	for _, e := range entries {
		m, err := parseEntry(channel, top.Epoch, e)
		if err != nil {
			return nil, top, err
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		msgs = nil
	}
	return msgs, top, nil
}

// Position returns the channel's epoch and newest offset, creating the
// epoch for a new channel. Errors: broker.ErrUnavailable (wrapped) when
// Redis fails or after Close, or ctx's error.
func (b *Broker) Position(ctx context.Context, channel string) (broker.Position, error) {
	if b.isClosed() {
		return broker.Position{}, errClosed
	}
	res, err := readScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "meta"), b.key(channel, "hist")},
		newEpoch(), ms(b.opts.MetaTTL), 0, 0, 0,
	).Slice()
	if err != nil {
		return broker.Position{}, b.fail(ctx, err)
	}
	top, _, _, err := parseRead(res)
	return top, err
}
