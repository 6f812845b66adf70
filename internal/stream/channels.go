package stream

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
)

// EventMessage is the event name of a channel message.
const EventMessage = "message"

// Channels runs channel topics on this node: it is the broker's Handler
// (turning deliveries into hub broadcasts), publishes through the broker,
// and subscribes connections with history replay and presence.
type Channels struct {
	Broker broker.Broker
	Hub    *hub.Hub
	Logger *slog.Logger
	// Frames encodes messages, presence and reset frames (required).
	Frames Frames
	// PresenceTTL is the lease of a presence entry; holders renew it at a
	// third of it. Default 45 s.
	PresenceTTL time.Duration
	// PresenceBatchWindow batches each channel's presence diffs: the
	// joins and leaves this node receives within the window that the
	// first of them opens are sent as one leave frame and one join frame
	// listing the net change (see presenceBatcher), so a diff waits at
	// most this long. Zero (or negative) sends one frame per diff as it
	// arrives. Set before the broker runs.
	PresenceBatchWindow time.Duration

	mu   sync.Mutex
	refs map[string]int

	batchOnce sync.Once
	batcher   *presenceBatcher // nil: no batching

	stateMu sync.Mutex
	states  map[string]*presenceState // channel → its shared state frame
}

// presenceState is the state frame of a channel's presence shared by the
// presence subscriptions that start while it is current: gen counts the
// diff frames broadcast for the channel, and a frame read at gen g serves
// only while gen is still g (and for maxStateAge). That is what makes it
// safe: a subscription registers with the hub before it looks, so every
// diff it cannot see in the shared frame reaches it as a broadcast after
// (diffs are idempotent: join adds or replaces, leave removes). During a
// join storm the state is then encoded about once per batch window
// instead of once per joining subscriber.
type presenceState struct {
	gen  uint64
	msg  *hub.Message // nil: none current
	read time.Time
}

// maxStateAge bounds how long a shared state frame serves (presence meta
// renewed without a diff shows after at most this long).
const maxStateAge = time.Second

// stateFrame returns the presence state frame for a subscription of
// channel's presence registered with the hub already: the shared one if
// current, else one read now (and shared if no diff went out meanwhile).
// Errors: store.ErrUnavailable.
func (c *Channels) stateFrame(ctx context.Context, channel, topic, key string) (*hub.Message, error) {
	c.stateMu.Lock()
	if c.states == nil {
		c.states = map[string]*presenceState{}
	}
	st := c.states[channel]
	if st == nil {
		st = &presenceState{}
		c.states[channel] = st
	}
	if st.msg != nil && time.Since(st.read) < maxStateAge {
		m := st.msg
		c.stateMu.Unlock()
		return m, nil
	}
	gen, read := st.gen, time.Now()
	c.stateMu.Unlock()
	ms, err := c.Presence(ctx, channel)
	if err != nil {
		return nil, err
	}
	m := hub.NewEvent(c.Frames.Presence(topic, "state", ms), key, "", 0)
	c.stateMu.Lock()
	if c.states[channel] == st && st.gen == gen {
		st.msg, st.read = m, read
	}
	c.stateMu.Unlock()
	return m, nil
}

// stateChanged invalidates channel's shared state frame: a diff is about
// to be broadcast.
func (c *Channels) stateChanged(channel string) {
	c.stateMu.Lock()
	if st := c.states[channel]; st != nil {
		st.gen++
		st.msg = nil
	}
	c.stateMu.Unlock()
}

var _ broker.Handler = (*Channels)(nil)

func (c *Channels) log() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// ChannelCursor is the cursor of a channel message.
func ChannelCursor(m broker.Message) Cursor {
	return Cursor{Kind: KindChannel, Epoch: m.Epoch, Pos: m.Offset}
}

// MessagesTopic is the topic of a channel's messages.
func MessagesTopic(ch string) string { return "channels/" + ch + "/messages" }

// PresenceTopic is the topic of a channel's presence.
func PresenceTopic(ch string) string { return "channels/" + ch + "/presence" }

// messageEvent is the event of a channel message.
func messageEvent(m broker.Message) Event {
	return Event{Topic: MessagesTopic(m.Channel), Name: EventMessage, Cursor: ChannelCursor(m), Message: &m}
}

// HandleMessage implements broker.Handler: one encode, one broadcast.
func (c *Channels) HandleMessage(m broker.Message) {
	b, err := c.Frames.Event(messageEvent(m))
	if err != nil {
		c.log().Error("encode channel message", "channel", m.Channel, "err", err)
		return
	}
	key := MessagesTopic(m.Channel)
	c.Hub.Dispatch(key, hub.NewEvent(b, key, ChannelCursor(m).String(), m.Offset))
}

// HandlePresence implements broker.Handler: the diff is broadcast at once,
// or with the channel's other diffs at the end of its batch window
// (PresenceBatchWindow).
func (c *Channels) HandlePresence(e broker.PresenceEvent) {
	if b := c.presenceBatch(); b != nil {
		b.add(e)
		return
	}
	action := "leave"
	if e.Join {
		action = "join"
	}
	c.broadcastPresence(e.Channel, action, []broker.Member{e.Member})
}

// presenceBatch returns the batcher of presence diffs (nil: no window).
func (c *Channels) presenceBatch() *presenceBatcher {
	c.batchOnce.Do(func() {
		if w := c.PresenceBatchWindow; w > 0 {
			c.batcher = &presenceBatcher{window: w, emit: c.broadcastPresence}
		}
	})
	return c.batcher
}

// broadcastPresence sends one presence diff frame to the channel's
// presence subscribers on this node.
func (c *Channels) broadcastPresence(channel, action string, members []broker.Member) {
	c.stateChanged(channel)
	key := PresenceTopic(channel)
	b := c.Frames.Presence(key, action, members)
	c.Hub.Dispatch(key, hub.NewEvent(b, key, "", 0))
}

// HandleReset implements broker.Handler: the channel's history was lost or
// messages may have been missed, so every subscription of it ends with a
// resync-required error frame.
func (c *Channels) HandleReset(channel, epoch string) {
	key := MessagesTopic(channel)
	b := c.Frames.Reset(key, store.Errorf(store.CodeCompacted, "the channel's history was reset (epoch %s); reload the history and subscribe again", epoch))
	c.Hub.Dispatch(key, hub.NewEvent(b, key, "", SeqReset))
}

// acquire makes this node receive channel while a local subscription needs it.
func (c *Channels) acquire(ctx context.Context, channel string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refs == nil {
		c.refs = map[string]int{}
	}
	if c.refs[channel] == 0 {
		if err := c.Broker.Subscribe(ctx, channel); err != nil {
			return BrokerError(err)
		}
	}
	c.refs[channel]++
	return nil
}

func (c *Channels) release(channel string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refs[channel]--
	if c.refs[channel] <= 0 {
		delete(c.refs, channel)
		c.stateMu.Lock()
		delete(c.states, channel)
		c.stateMu.Unlock()
		if err := c.Broker.Unsubscribe(context.Background(), channel); err != nil {
			c.log().Warn("broker unsubscribe", "channel", channel, "err", err)
		}
	}
}

// Publish publishes data to channel (a valid channel name: the caller
// parsed its topic), retained as history says. Errors: store.ErrInvalid (data not JSON),
// store.ErrTooLarge, store.ErrUnavailable (broker down).
func (c *Channels) Publish(ctx context.Context, channel string, data json.RawMessage, publisher string, history broker.HistoryOptions) (broker.Message, error) {
	if !json.Valid(data) {
		return broker.Message{}, store.Errorf(store.CodeInvalid, "message data must be JSON")
	}
	m, err := c.Broker.Publish(ctx, channel, data, publisher, history)
	return m, BrokerError(err)
}

// History reads a channel's history after since (nil: from the oldest
// retained); the caller checked the channel name and that since is a
// channel cursor. Errors: store.ErrCompacted (resync-required),
// store.ErrUnavailable.
func (c *Channels) History(ctx context.Context, channel string, since *Cursor, limit int) ([]broker.Message, Cursor, error) {
	var pos broker.Position
	if since != nil {
		pos = broker.Position{Epoch: since.Epoch, Offset: since.Pos}
	}
	msgs, top, err := c.Broker.History(ctx, channel, pos, limit)
	if err != nil {
		return nil, Cursor{}, BrokerError(err)
	}
	next := Cursor{Kind: KindChannel, Epoch: top.Epoch, Pos: pos.Offset}
	if since == nil && len(msgs) > 0 {
		next.Pos = msgs[0].Offset - 1
	} else if since == nil {
		next.Pos = top.Offset
	}
	if len(msgs) > 0 {
		next.Pos = msgs[len(msgs)-1].Offset
	}
	return msgs, next, nil
}

// Presence lists a channel's members (one entry per connection). Errors:
// store.ErrUnavailable.
func (c *Channels) Presence(ctx context.Context, channel string) ([]broker.Member, error) {
	ms, err := c.Broker.Presence(ctx, channel)
	if err != nil {
		return nil, BrokerError(err)
	}
	return ms, nil
}

// PresencePage lists the connections of at most limit members of channel
// whose ID sorts after after ("": from the first), ordered by member ID
// then connection ID, and whether more members follow. Errors:
// store.ErrUnavailable.
func (c *Channels) PresencePage(ctx context.Context, channel, after string, limit int) ([]broker.Member, bool, error) {
	ms, more, err := c.Broker.PresencePage(ctx, channel, after, limit)
	if err != nil {
		return nil, false, BrokerError(err)
	}
	return ms, more, nil
}

// BrokerError maps a broker error to the store's codes: broker.ErrGone is
// store.CodeCompacted (resync-required), broker.ErrUnavailable
// store.CodeUnavailable; others are returned as they are.
func BrokerError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrGone):
		return store.Errorf(store.CodeCompacted, "the channel history no longer reaches back to this cursor (or the channel was reset); reload the history and subscribe again")
	case errors.Is(err, broker.ErrUnavailable):
		return store.Errorf(store.CodeUnavailable, "the message broker is unavailable; retry shortly")
	}
	return err
}

// Subscribe starts a subscription to a channel's messages or presence;
// see Resources.Subscribe for the contract of run. member, when non-nil,
// joins the channel's presence for the subscription's lifetime. The
// caller (app) has checked the request against the namespace's policy
// and that since is a channel cursor (never given for presence). Errors:
// store.ErrCompacted (resync-required), store.ErrUnavailable.
func (c *Channels) Subscribe(ctx context.Context, req Request, member *broker.Member, sink Sink) (*Subscription, Result, func(context.Context) error, error) {
	ch := req.Topic.Channel
	if err := c.acquire(ctx, ch); err != nil {
		return nil, Result{}, nil, err
	}
	sub := &Subscription{Key: req.Topic.Path, Topic: req.Topic, sink: sink, release: func() { c.release(ch) }}
	c.Hub.Subscribe(sub.Key, sub)
	fail := func(err error) (*Subscription, Result, func(context.Context) error, error) {
		c.Unsubscribe(sub)
		return nil, Result{}, nil, err
	}
	if req.Topic.Kind == TopicPresence {
		res := Result{Topic: req.Topic.Path, Start: StartSnapshot}
		run := func(ctx context.Context) error {
			m, err := c.stateFrame(ctx, ch, req.Topic.Path, sub.Key)
			if err != nil {
				return err
			}
			if err := sink.PushWait(ctx, m); err != nil {
				return err
			}
			sub.mu.Lock()
			defer sub.mu.Unlock()
			return sub.goLive()
		}
		return sub, res, sub.guard(run), nil
	}
	top, err := c.Broker.Position(ctx, ch)
	if err != nil {
		return fail(BrokerError(err))
	}
	res := Result{Topic: req.Topic.Path}
	sub.epoch = top.Epoch
	switch {
	case req.Since != nil:
		if req.Since.Epoch != top.Epoch || req.Since.Pos > top.Offset {
			return fail(store.Errorf(store.CodeCompacted, "cursor is from another epoch of this channel (its history was reset); reload the history and subscribe again"))
		}
		if _, _, err := c.Broker.History(ctx, ch, broker.Position{Epoch: req.Since.Epoch, Offset: req.Since.Pos}, 1); err != nil {
			return fail(BrokerError(err))
		}
		sub.last = req.Since.Pos
		res.Start, res.Cursor = StartSince, *req.Since
	case req.Snapshot:
		// The retained history is the channel's snapshot.
		msgs, _, err := c.Broker.History(ctx, ch, broker.Position{}, 1)
		if err != nil {
			return fail(BrokerError(err))
		}
		sub.last = top.Offset
		if len(msgs) > 0 {
			sub.last = msgs[0].Offset - 1
		}
		res.Start, res.Cursor = StartSnapshot, Cursor{Kind: KindChannel, Epoch: top.Epoch, Pos: sub.last}
	default:
		sub.last = top.Offset
		res.Start, res.Cursor = StartLive, Cursor{Kind: KindChannel, Epoch: top.Epoch, Pos: top.Offset}
	}
	if member != nil {
		if err := c.Broker.Join(ctx, ch, *member, c.presenceTTL()); err != nil {
			return fail(BrokerError(err))
		}
		sub.member = member
	}
	run := func(ctx context.Context) error {
		replay := func(target int64) error {
			for {
				sub.mu.Lock()
				after, closed := sub.last, sub.closed
				sub.mu.Unlock()
				if closed || after >= target {
					return nil
				}
				msgs, _, err := c.Broker.History(ctx, ch, broker.Position{Epoch: top.Epoch, Offset: after}, replayPage)
				if err != nil {
					return BrokerError(err)
				}
				if len(msgs) == 0 {
					return nil
				}
				for _, m := range msgs {
					if m.Offset > target {
						return nil
					}
					b, err := c.Frames.Event(messageEvent(m))
					if err != nil {
						return err
					}
					if err := sink.PushWait(ctx, hub.NewEvent(b, sub.Key, ChannelCursor(m).String(), m.Offset)); err != nil {
						return err
					}
					sub.mu.Lock()
					sub.last = m.Offset
					sub.mu.Unlock()
				}
			}
		}
		if err := replay(top.Offset); err != nil {
			return err
		}
		if req.Snapshot {
			cur := Cursor{Kind: KindChannel, Epoch: top.Epoch, Pos: top.Offset}
			b := c.Frames.Synced(req.Topic.Path, "", "", cur)
			if err := sink.PushWait(ctx, hub.NewEvent(b, sub.Key, cur.String(), 0)); err != nil {
				return err
			}
		}
		// Messages broadcast while replaying were only noted (sub.seen):
		// read them from the history too, until nothing newer came.
		for {
			sub.mu.Lock()
			if sub.closed {
				sub.mu.Unlock()
				return nil
			}
			if sub.reset == nil && sub.seen > sub.last {
				target, from := sub.seen, sub.last
				sub.mu.Unlock()
				if err := replay(target); err != nil {
					return err
				}
				if sub.Last() == from {
					return errNoProgress
				}
				continue
			}
			err := sub.goLive()
			sub.mu.Unlock()
			return err
		}
	}
	return sub, res, sub.guard(run), nil
}

func (c *Channels) presenceTTL() time.Duration {
	if c.PresenceTTL <= 0 {
		return 45 * time.Second
	}
	return c.PresenceTTL
}

// RenewInterval is how often presence holders renew their leases.
func (c *Channels) RenewInterval() time.Duration { return c.presenceTTL() / 3 }

// RenewPresence renews the presence lease of a subscription that joined.
func (c *Channels) RenewPresence(ctx context.Context, sub *Subscription) error {
	if sub.member == nil {
		return nil
	}
	return BrokerError(c.Broker.Join(ctx, sub.Topic.Channel, *sub.member, c.presenceTTL()))
}

// Unsubscribe ends a channel subscription, leaving presence if it joined.
func (c *Channels) Unsubscribe(sub *Subscription) {
	sub.close()
	c.Hub.Unsubscribe(sub.Key, sub)
	if sub.member != nil {
		if err := c.Broker.Leave(context.Background(), sub.Topic.Channel, sub.member.ConnID); err != nil {
			c.log().Warn("presence leave", "channel", sub.Topic.Channel, "err", err)
		}
	}
	if sub.release != nil {
		sub.release()
		sub.release = nil
	}
}
