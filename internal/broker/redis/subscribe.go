// This node's pub/sub subscriptions (Subscribe, Unsubscribe) and the
// delivery loop: the one goroutine that hands messages, presence events
// and resets (after a reconnect or an offset gap) to the Handler.

package redis

import (
	"context"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tandemhq/tandem/internal/broker"
)

// chanState is this node's view of a subscribed channel.
type chanState struct {
	ready     chan struct{} // closed when Redis confirmed the subscription
	confirmed bool
	epoch     string // last known epoch ("" unknown)
	// last is the newest offset this node has accounted for: delivered,
	// or the channel's offset when the node last read it from Redis right
	// after (re)subscribing. Meaningful only when lastKnown.
	last      int64
	lastKnown bool
	version   uint64 // bumped on every change, to discard stale checks
}

// loop is the only goroutine that calls the Handler, so calls never
// overlap, and it handles one channel's pub/sub messages in order.
func (b *Broker) loop() {
	defer close(b.loopDone)
	var (
		h       broker.Handler
		started bool
		pending []func(broker.Handler) // before Run
	)
	deliver := func(f func(broker.Handler)) {
		switch {
		case h != nil:
			f(h)
		case !started:
			pending = append(pending, f)
		}
	}
	for {
		select {
		case nh := <-b.handlerCh:
			h = nh
			if h != nil {
				started = true
				for _, f := range pending {
					f(h)
				}
				pending = nil
			}
		case c := <-b.checks:
			b.applyCheck(c, deliver)
		case in, ok := <-b.in:
			if !ok {
				return
			}
			switch m := in.(type) {
			case *goredis.Subscription:
				b.onSubscription(m, deliver)
			case *goredis.Message:
				b.onMessage(m, deliver)
			}
		}
	}
}

func (b *Broker) onSubscription(s *goredis.Subscription, deliver func(func(broker.Handler))) {
	if s.Kind != "subscribe" || !strings.HasPrefix(s.Channel, b.chPre) {
		return
	}
	ch := strings.TrimPrefix(s.Channel, b.chPre)
	b.mu.Lock()
	st := b.subs[ch]
	if st == nil {
		b.mu.Unlock()
		return
	}
	if !st.confirmed {
		st.confirmed = true
		close(st.ready)
		b.mu.Unlock()
		return
	}
	// A confirmation of an active subscription: the connection was
	// re-established, and messages published meanwhile were lost. Every
	// message of the old connection was handled before this confirmation,
	// and every publish after it will arrive; so read the channel's
	// position now: if it is still the newest offset delivered, nothing
	// was missed. Otherwise the subscribers must resync: one reset, with
	// the channel's current epoch (new if Redis lost the channel's keys),
	// so that subscribers starting after it are not reset again by the
	// epoch check or the next message. Right after an outage go-redis may
	// fail commands for a moment (it backs off dialling), so the read is
	// retried for a few seconds; if Redis still cannot tell, the reset
	// keeps the last known epoch and the epoch check resets again when it
	// finds another (a needless second reset, never a silent gap). Only
	// this goroutine changes st meanwhile (or Unsubscribe, which removes it).
	epoch, last, known := st.epoch, st.last, st.lastKnown
	st.lastKnown = false
	st.version++
	b.mu.Unlock()
	b.resubscribed.Add(1)
	p, err := b.positionRetry(ch, 3*time.Second)
	if err == nil {
		b.mu.Lock()
		if b.subs[ch] == st {
			st.epoch, st.last, st.lastKnown = p.Epoch, p.Offset, true
			st.version++
		}
		b.mu.Unlock()
		if known && p.Epoch == epoch && p.Offset == last {
			b.opts.Logger.Info("redis pub/sub resubscribed; nothing missed", "channel", ch)
			return
		}
		epoch = p.Epoch
	}
	b.opts.Logger.Warn("redis pub/sub resubscribed; resetting channel", "channel", ch, "epoch", epoch)
	deliver(func(h broker.Handler) { h.HandleReset(ch, epoch) })
	select {
	case b.checkNow <- struct{}{}:
	default:
	}
}

// positionRetry reads the channel's position, retrying failures for up to
// d (until the broker closes).
func (b *Broker) positionRetry(channel string, d time.Duration) (broker.Position, error) {
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		p, err := b.Position(ctx, channel)
		cancel()
		if err == nil || time.Now().After(deadline) || b.isClosed() {
			return p, err
		}
		select {
		case <-b.closed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (b *Broker) onMessage(pm *goredis.Message, deliver func(func(broker.Handler))) {
	if !strings.HasPrefix(pm.Channel, b.chPre) || pm.Payload == "" {
		return
	}
	ch := strings.TrimPrefix(pm.Channel, b.chPre)
	b.mu.Lock()
	st := b.subs[ch]
	if st == nil || !st.confirmed {
		b.mu.Unlock()
		return
	}
	switch pm.Payload[0] {
	case 'j', 'l':
		b.mu.Unlock()
		m, err := decodeMember([]byte(pm.Payload[1:]))
		if err != nil {
			b.opts.Logger.Error("redis presence payload", "channel", ch, "err", err)
			return
		}
		e := broker.PresenceEvent{Channel: ch, Join: pm.Payload[0] == 'j', Member: m}
		deliver(func(h broker.Handler) { h.HandlePresence(e) })
	case 'm':
		m, err := decodeMessage(ch, pm.Payload[1:])
		if err != nil {
			b.mu.Unlock()
			b.opts.Logger.Error("redis message payload", "channel", ch, "err", err)
			return
		}
		reset := false
		switch {
		case st.epoch == "":
		case st.epoch != m.Epoch:
			reset = true
		case st.lastKnown && m.Offset <= st.last:
			b.mu.Unlock() // a duplicate: already delivered
			return
		case st.lastKnown && m.Offset > st.last+1:
			reset = true // a gap: messages were lost
		}
		st.epoch, st.last, st.lastKnown = m.Epoch, m.Offset, true
		st.version++
		b.mu.Unlock()
		if reset {
			b.opts.Logger.Warn("redis channel message after a gap or from a new epoch; resetting channel", "channel", ch, "epoch", m.Epoch, "offset", m.Offset)
			deliver(func(h broker.Handler) { h.HandleReset(ch, m.Epoch) })
		}
		deliver(func(h broker.Handler) { h.HandleMessage(m) })
	default:
		b.mu.Unlock()
	}
}

// Subscribe subscribes this node to the channel's pub/sub channel and
// waits for Redis to confirm it, so every publish after Subscribe returns
// is delivered. Idempotent. Errors: broker.ErrUnavailable (wrapped) when
// Redis fails or after Close, or ctx's error.
func (b *Broker) Subscribe(ctx context.Context, channel string) error {
	if b.isClosed() {
		return errClosed
	}
	b.subMu.Lock()
	defer b.subMu.Unlock()
	b.mu.Lock()
	if st := b.subs[channel]; st != nil {
		b.mu.Unlock()
		return nil // confirmed: subMu is held until confirmation
	}
	st := &chanState{ready: make(chan struct{})}
	b.subs[channel] = st
	b.mu.Unlock()
	undo := func() {
		b.mu.Lock()
		delete(b.subs, channel)
		b.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = b.ps.Unsubscribe(ctx, b.chPre+channel)
	}
	if err := b.ps.Subscribe(ctx, b.chPre+channel); err != nil {
		undo()
		return b.fail(ctx, err)
	}
	select {
	case <-st.ready:
	case <-ctx.Done():
		undo()
		return ctx.Err()
	case <-b.closed:
		return errClosed
	}
	// Learn the epoch and offset, so that a flush or a lost message before
	// the next delivery is noticed. Read after the confirmation, the offset
	// covers every message this node may not receive; a message at or
	// below it that still arrives is older than any local subscriber's
	// start and is dropped.
	if p, err := b.Position(ctx, channel); err == nil {
		b.mu.Lock()
		if st.epoch == "" {
			st.epoch, st.last, st.lastKnown = p.Epoch, p.Offset, true
			st.version++
		}
		b.mu.Unlock()
	}
	return nil
}

// Unsubscribe unsubscribes this node from the channel; nothing more of it
// is delivered. Errors: broker.ErrUnavailable (wrapped) when the
// UNSUBSCRIBE could not be sent (the channel is dropped locally anyway),
// or ctx's error.
func (b *Broker) Unsubscribe(ctx context.Context, channel string) error {
	b.subMu.Lock()
	defer b.subMu.Unlock()
	b.mu.Lock()
	st := b.subs[channel]
	delete(b.subs, channel)
	b.mu.Unlock()
	if st == nil || b.isClosed() {
		return nil
	}
	return b.fail(ctx, b.ps.Unsubscribe(ctx, b.chPre+channel))
}
