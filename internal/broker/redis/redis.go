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
	"errors"
	"fmt"
	"log/slog"
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
