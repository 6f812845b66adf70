// Channel epochs: new epoch IDs and the periodic check that resets
// subscribed channels whose keys Redis lost.

package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tandemhq/tandem/internal/broker"
)

type epochCheck struct {
	channel string
	epoch   string
	offset  int64 // the channel's offset read with epoch
	version uint64
}

func newEpoch() string {
	var x [8]byte
	_, _ = rand.Read(x[:])
	return hex.EncodeToString(x[:])
}

func (b *Broker) applyCheck(c epochCheck, deliver func(func(broker.Handler))) {
	b.mu.Lock()
	st := b.subs[c.channel]
	if st == nil || st.version != c.version || st.epoch == c.epoch {
		b.mu.Unlock()
		return
	}
	// Subscribers starting after this reset start at or after c.offset,
	// and later publishes arrive (or leave a gap that resets again).
	known := st.epoch
	st.epoch, st.last, st.lastKnown = c.epoch, c.offset, true
	st.version++
	b.mu.Unlock()
	if known != "" {
		b.opts.Logger.Warn("redis channel has a new epoch (its keys were lost); resetting channel", "channel", c.channel, "epoch", c.epoch, "was", known)
		deliver(func(h broker.Handler) { h.HandleReset(c.channel, c.epoch) })
	}
}

// checkLoop compares the subscribed channels' epochs with Redis.
func (b *Broker) checkLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.EpochCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-b.checkNow:
		}
		if err := b.checkEpochs(ctx); err != nil && ctx.Err() == nil {
			b.opts.Logger.Warn("redis epoch check", "err", err)
		}
	}
}

func (b *Broker) checkEpochs(ctx context.Context) error {
	type item struct {
		ch      string
		version uint64
		cmd     *goredis.SliceCmd
	}
	var items []item
	b.mu.Lock()
	for ch, st := range b.subs {
		if st.confirmed {
			items = append(items, item{ch: ch, version: st.version})
		}
	}
	b.mu.Unlock()
	if len(items) == 0 {
		return nil
	}
	pipe := b.rdb.Pipeline()
	for i := range items {
		items[i].cmd = pipe.HMGet(ctx, b.key(items[i].ch, "meta"), "e", "o")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return err
	}
	for _, it := range items {
		vals := it.cmd.Val()
		epoch, _ := vals[0].(string)
		offStr, _ := vals[1].(string)
		offset, err := strconv.ParseInt(offStr, 10, 64)
		if epoch == "" || err != nil {
			// The channel's state is gone: start its new epoch now.
			p, err := b.Position(ctx, it.ch)
			if err != nil {
				return err
			}
			epoch, offset = p.Epoch, p.Offset
		}
		select {
		case b.checks <- epochCheck{channel: it.ch, epoch: epoch, offset: offset, version: it.version}:
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}
