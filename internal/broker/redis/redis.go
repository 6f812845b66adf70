// Package redis is the multi-node Broker on Redis (standalone, 6.2 or
// newer; 7 recommended).
//
// Publish runs one Lua script that assigns the offset (HINCRBY on the
// channel's meta hash), appends to the channel's Redis Stream, sets key
// expiries and PUBLISHes the message with its epoch and offset, so offsets,
// history and delivery order agree on every node. Each node keeps one
// PubSub connection and SUBSCRIBEs to the channels it needs; Subscribe
// returns only once Redis confirmed the subscription, so every later
// publish reaches the node.
//
// History: the stream's entry IDs are the offsets. Size is enforced with
// an exact MAXLEN on XADD. TTL is enforced per message: every entry keeps
// its publish time (Redis server clock), and both Publish and History drop
// entries older than the channel's TTL (XTRIM MINID) before answering;
// the stream key also gets PEXPIRE TTL, so an idle channel's history
// vanishes by itself. The channel's meta hash (epoch, offset) expires
// after Options.MetaTTL (at least the history TTL) without a publish.
//
// Epochs: the epoch is created with the meta hash the first time a channel
// is used. If the hash is lost (FLUSHALL, eviction, expiry) the next use
// creates a new epoch, so old cursors get broker.ErrGone. Subscribed
// channels notice a new epoch from the next message or from a periodic
// check (Options.EpochCheckInterval) and call Handler.HandleReset.
//
// Reconnects: Redis pub/sub is at-most-once. When the PubSub connection is
// re-established (go-redis re-subscribes), every subscribed channel gets
// one HandleReset, because messages may have been missed, with the
// channel's current epoch (new if Redis lost its keys, as after a restart
// without persistence); a gap in offsets does the same.
//
// Presence: a hash per channel (connection → member), a count of live
// connections per member, and one sorted set of lease expiries for all
// channels. Joins and leaves travel on the channel's pub/sub channel with
// its messages. Run's sweeper removes expired leases atomically (one
// script), so exactly one node publishes each leave.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tandemhq/tandem/internal/broker"
)

// Options configure a Redis Broker. The zero value is ready to use.
type Options struct {
	// Prefix is prepended to every key and pub/sub channel; nodes sharing
	// a prefix form one cluster. Default "tandem:".
	Prefix string
	// MetaTTL is how long a channel's epoch and offset outlive its last
	// publish (never less than the history TTL). Default 30 days.
	MetaTTL time.Duration
	// SweepInterval is how often Run removes expired presence leases.
	// Default 1 s.
	SweepInterval time.Duration
	// EpochCheckInterval is how often Run compares the epochs of the
	// subscribed channels with Redis, to reset subscribers after a flush
	// even when nothing is published. Default 5 s.
	EpochCheckInterval time.Duration
	// PingInterval is the PubSub connection's health check. Default 3 s.
	PingInterval time.Duration
	// ClientName names the broker's Redis connections (CLIENT LIST).
	// Default "tandem".
	ClientName string
	// Logger receives background errors. Default: discard.
	Logger *slog.Logger
}

// Broker is the Redis broker. Create it with New; it is safe for
// concurrent use.
type Broker struct {
	opts   Options
	rdb    *goredis.Client
	ps     *goredis.PubSub
	in     <-chan any
	leases string // key of the lease index
	chPre  string // pub/sub channel name prefix

	subMu sync.Mutex // serialises Subscribe and Unsubscribe
	mu    sync.Mutex
	subs  map[string]*chanState

	handlerCh chan broker.Handler
	checks    chan epochCheck
	checkNow  chan struct{}
	running   atomic.Bool
	// resubscribed counts confirmations of already-active subscriptions.
	resubscribed atomic.Uint64
	closeOnce    sync.Once
	closed       chan struct{}
	loopDone     chan struct{}
}

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

type epochCheck struct {
	channel string
	epoch   string
	offset  int64 // the channel's offset read with epoch
	version uint64
}

var _ broker.Broker = (*Broker)(nil)

// errClosed is returned (wrapping broker.ErrUnavailable) after Close.
var errClosed = fmt.Errorf("%w: redis broker closed", broker.ErrUnavailable)

// New connects to the Redis at url (redis://[user:password@]host:port/db,
// or rediss:// for TLS) and returns a broker; call Run before publishing
// and Close when done. Errors: broker.ErrUnavailable (wrapped) when url is
// invalid or Redis does not answer a PING within ctx.
func New(ctx context.Context, url string, opts Options) (*Broker, error) {
	if opts.Prefix == "" {
		opts.Prefix = "tandem:"
	}
	if opts.MetaTTL <= 0 {
		opts.MetaTTL = 30 * 24 * time.Hour
	}
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	if opts.EpochCheckInterval <= 0 {
		opts.EpochCheckInterval = 5 * time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 3 * time.Second
	}
	if opts.ClientName == "" {
		opts.ClientName = "tandem"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ro, err := goredis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("%w: redis url: %w", broker.ErrUnavailable, err)
	}
	ro.ClientName = opts.ClientName
	rdb := goredis.NewClient(ro)
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("%w: redis at %s: %w", broker.ErrUnavailable, ro.Addr, err)
	}
	b := &Broker{
		opts:      opts,
		rdb:       rdb,
		leases:    opts.Prefix + "leases",
		chPre:     opts.Prefix + "c:",
		subs:      map[string]*chanState{},
		handlerCh: make(chan broker.Handler),
		checks:    make(chan epochCheck),
		checkNow:  make(chan struct{}, 1),
		closed:    make(chan struct{}),
		loopDone:  make(chan struct{}),
	}
	b.ps = rdb.Subscribe(context.Background())
	b.in = b.ps.ChannelWithSubscriptions(
		goredis.WithChannelSize(4096),
		goredis.WithChannelHealthCheckInterval(opts.PingInterval),
	)
	go b.loop()
	return b, nil
}

func (b *Broker) key(channel, kind string) string {
	return b.opts.Prefix + "{" + channel + "}:" + kind
}

func (b *Broker) leaseItem(channel string) string {
	return strconv.Itoa(len(channel)) + ":" + channel
}

// fail maps a Redis error: ctx's own error, errClosed, or
// broker.ErrUnavailable wrapping err.
func (b *Broker) fail(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, goredis.ErrClosed):
		return errClosed
	}
	return fmt.Errorf("%w: %w", broker.ErrUnavailable, err)
}

func (b *Broker) isClosed() bool {
	select {
	case <-b.closed:
		return true
	default:
		return false
	}
}

func newEpoch() string {
	var x [8]byte
	_, _ = rand.Read(x[:])
	return hex.EncodeToString(x[:])
}

func ms(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return max(d.Milliseconds(), 1)
}

// Run delivers to h until ctx is done, sweeping expired presence leases
// and checking subscribed channels' epochs in the background. Messages of
// subscribed channels that arrive before Run starts are delivered when it
// does. It returns nil when ctx ends; an error if Run is already running
// or the broker is closed.
func (b *Broker) Run(ctx context.Context, h broker.Handler) error {
	if !b.running.CompareAndSwap(false, true) {
		return errors.New("redis: Run called twice")
	}
	select {
	case b.handlerCh <- h:
	case <-b.closed:
		return errClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() { b.sweepLoop(ctx) })
	wg.Go(func() { b.checkLoop(ctx) })
	select {
	case <-ctx.Done():
	case <-b.closed:
	}
	cancel()
	wg.Wait()
	select {
	case b.handlerCh <- nil:
	case <-b.loopDone:
	}
	return nil
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

// sweepLoop removes expired presence leases.
func (b *Broker) sweepLoop(ctx context.Context) {
	t := time.NewTicker(b.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := b.sweep(ctx); err != nil && ctx.Err() == nil {
			b.opts.Logger.Warn("redis presence sweep", "err", err)
		}
	}
}

func (b *Broker) sweep(ctx context.Context) error {
	const batch = 100
	for {
		n, err := sweepScript.Run(ctx, b.rdb, []string{b.leases}, b.opts.Prefix, batch).Int()
		if err != nil || n < batch {
			return err
		}
	}
}

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

// presenceJSON is a member as stored in Redis and sent in presence events.
type presenceJSON struct {
	ID     string          `json:"id"`
	ConnID string          `json:"conn"`
	Meta   json.RawMessage `json:"meta,omitempty"`
}

func decodeMember(b []byte) (broker.Member, error) {
	var p presenceJSON
	if err := json.Unmarshal(b, &p); err != nil {
		return broker.Member{}, err
	}
	return broker.Member{ID: p.ID, ConnID: p.ConnID, Meta: p.Meta}, nil
}

// Join adds or renews the connection m.ConnID with a lease of ttl (ttl <= 0:
// no expiry), publishing a join when it is the member's first live
// connection. Errors: broker.ErrUnavailable (wrapped) when Redis fails,
// m.Meta is not JSON, or after Close; or ctx's error.
func (b *Broker) Join(ctx context.Context, channel string, m broker.Member, ttl time.Duration) error {
	if b.isClosed() {
		return errClosed
	}
	js, err := json.Marshal(presenceJSON{ID: m.ID, ConnID: m.ConnID, Meta: m.Meta})
	if err != nil {
		return fmt.Errorf("%w: presence meta: %w", broker.ErrUnavailable, err)
	}
	value := strconv.Itoa(len(m.ID)) + ":" + m.ID + string(js)
	grace := ms(max(time.Minute, 10*b.opts.SweepInterval))
	err = joinScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "pres"), b.key(channel, "pcount"), b.leases},
		m.ConnID, m.ID, value, ms(ttl), b.leaseItem(channel)+m.ConnID, b.chPre+channel, js, grace,
	).Err()
	return b.fail(ctx, err)
}

// Leave removes the connection, publishing a leave when it was its
// member's last; an unknown connection is ignored. Errors:
// broker.ErrUnavailable (wrapped) when Redis fails or after Close, or
// ctx's error.
func (b *Broker) Leave(ctx context.Context, channel string, connID string) error {
	if b.isClosed() {
		return errClosed
	}
	err := leaveScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "pres"), b.key(channel, "pcount"), b.leases},
		connID, b.leaseItem(channel)+connID, b.chPre+channel,
	).Err()
	return b.fail(ctx, err)
}

// Presence lists the channel's connections whose lease has not expired,
// ordered by member ID then connection ID. Errors: broker.ErrUnavailable
// (wrapped) when Redis fails or after Close, or ctx's error.
func (b *Broker) Presence(ctx context.Context, channel string) ([]broker.Member, error) {
	if b.isClosed() {
		return nil, errClosed
	}
	vals, err := presenceScript.Run(ctx, b.rdb,
		[]string{b.key(channel, "pres"), b.leases}, b.leaseItem(channel),
	).StringSlice()
	if err != nil {
		return nil, b.fail(ctx, err)
	}
	out := make([]broker.Member, 0, len(vals))
	for _, v := range vals {
		c := strings.IndexByte(v, ':')
		n, _ := strconv.Atoi(v[:max(c, 0)])
		if c < 0 || c+1+n > len(v) {
			return nil, fmt.Errorf("%w: bad presence entry %q", broker.ErrUnavailable, v)
		}
		m, err := decodeMember([]byte(v[c+1+n:]))
		if err != nil {
			return nil, fmt.Errorf("%w: bad presence entry: %w", broker.ErrUnavailable, err)
		}
		out = append(out, m)
	}
	sortMembers(out)
	return out, nil
}

// Stats is a snapshot of the broker's link to Redis, for metrics.
type Stats struct {
	// Reconnects counts the pub/sub connections opened after the first:
	// each one may have missed messages, so its channels were reset.
	Reconnects uint64
	// Resubscribed counts channel subscriptions re-established by those
	// reconnects (each reset its channel's subscribers).
	Resubscribed uint64
	// Pending is how many pub/sub deliveries this node has received from
	// Redis but not yet handed to the Handler (a backlog means lag).
	Pending int
	// Channels is how many channels this node is subscribed to.
	Channels int
}

// Stats returns the broker's counters. It is cheap and never blocks on
// Redis.
func (b *Broker) Stats() Stats {
	st := Stats{Resubscribed: b.resubscribed.Load(), Pending: len(b.in)}
	if created := b.rdb.PoolStats().PubSubStats.Created; created > 1 {
		st.Reconnects = uint64(created - 1)
	}
	b.mu.Lock()
	st.Channels = len(b.subs)
	b.mu.Unlock()
	return st
}

// Ping checks that Redis answers (for /readyz). Errors:
// broker.ErrUnavailable (wrapped), or ctx's error.
func (b *Broker) Ping(ctx context.Context) error {
	if b.isClosed() {
		return errClosed
	}
	return b.fail(ctx, b.rdb.Ping(ctx).Err())
}

// Close stops Run, closes the PubSub connection and the client, and waits
// for the delivery goroutine to end. Later calls fail with
// broker.ErrUnavailable. It returns nil; calling it again is harmless.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.closed)
		_ = b.ps.Close()
		<-b.loopDone
		_ = b.rdb.Close()
	})
	return nil
}
