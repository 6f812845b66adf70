// Package memory is the single-node Broker: channel state lives in this
// process. Every channel gets a random epoch when it is first used, so a
// restarted process starts new epochs and old cursors get ErrGone.
//
// Delivery goes through an ordered per-channel queue: a Publish appends its
// message under the channel's lock and then drains the queue unless another
// goroutine is already draining it, so the Handler sees one channel's calls
// in offset order, never concurrently, and may itself call the broker.
package memory

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

// Options configure a memory Broker. The zero value is ready to use.
type Options struct {
	// SweepInterval is how often Run expires presence leases (emitting
	// leaves) and forgets idle channels. Default 1 s. Expired leases are
	// also dropped lazily by Presence and Join.
	SweepInterval time.Duration
	// IdleTTL forgets a channel that has had no publish, read, subscription
	// or presence for this long and retains no history; its next use starts
	// a new epoch. Default 1 h; negative: never forget.
	IdleTTL time.Duration
}

// Broker is the in-process broker. Create it with New; it is safe for
// concurrent use.
type Broker struct {
	opts Options

	mu       sync.Mutex
	channels map[string]*channel
	running  bool

	handler atomic.Pointer[handlerBox]
	stopped atomic.Bool // Run ended: stop queueing
	closed  atomic.Bool
}

type handlerBox struct{ h broker.Handler }

var _ broker.Broker = (*Broker)(nil)

// errClosed is returned (wrapping broker.ErrUnavailable) after Close.
var errClosed = fmt.Errorf("%w: memory broker closed", broker.ErrUnavailable)

// New returns a memory broker. Call Run before publishing.
func New(opts Options) *Broker {
	if opts.SweepInterval <= 0 {
		opts.SweepInterval = time.Second
	}
	if opts.IdleTTL == 0 {
		opts.IdleTTL = time.Hour
	}
	return &Broker{opts: opts, channels: map[string]*channel{}}
}

type lease struct {
	m       broker.Member
	expires time.Time // zero: never
}

type eventKind uint8

const (
	evMessage eventKind = iota
	evPresence
)

type event struct {
	kind eventKind
	msg  broker.Message
	pres broker.PresenceEvent
}

type channel struct {
	name string

	mu      sync.Mutex
	dead    bool // forgotten by the sweeper; callers must look it up again
	epoch   string
	offset  int64
	hist    []broker.Message // oldest first, offsets contiguous
	ttl     time.Duration    // of the last publish, applied on read
	subbed  bool
	conns   map[string]*lease // connID → lease
	members map[string]int    // member ID → live connections
	lastUse time.Time

	queue      []event
	delivering bool
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lock returns the live channel called name, created if needed, with its
// mutex held.
func (b *Broker) lock(name string) *channel {
	for {
		b.mu.Lock()
		c := b.channels[name]
		if c == nil {
			c = &channel{name: name, epoch: newEpoch()}
			b.channels[name] = c
		}
		b.mu.Unlock()
		c.mu.Lock()
		if !c.dead {
			c.lastUse = time.Now()
			return c
		}
		c.mu.Unlock()
	}
}

// flush delivers c's queued events unless another goroutine is already
// doing so. Called with c.mu held; returns with it released.
func (b *Broker) flush(c *channel) {
	if c.delivering || len(c.queue) == 0 || b.handler.Load() == nil {
		c.mu.Unlock()
		return
	}
	c.delivering = true
	defer func() {
		c.delivering = false
		c.mu.Unlock()
	}()
	for len(c.queue) > 0 {
		q := c.queue
		c.queue = nil
		c.mu.Unlock()
		func() {
			defer c.mu.Lock()
			box := b.handler.Load()
			if box == nil { // Run ended
				return
			}
			for _, e := range q {
				switch e.kind {
				case evMessage:
					box.h.HandleMessage(e.msg)
				case evPresence:
					box.h.HandlePresence(e.pres)
				}
			}
		}()
	}
}

// enqueue queues e for the handler if this node subscribed to c and Run
// has not ended (events queued before Run are delivered when it starts).
// Called with c.mu held.
func (b *Broker) enqueue(c *channel, e event) {
	if c.subbed && !b.stopped.Load() {
		c.queue = append(c.queue, e)
	}
}

// trim drops messages older than ttl (if ttl > 0) and beyond size.
func (c *channel) trim(now time.Time, size int, ttl time.Duration) {
	drop := 0
	if n := len(c.hist); n > size {
		drop = n - size
	}
	if ttl > 0 {
		cutoff := now.Add(-ttl)
		for drop < len(c.hist) && c.hist[drop].Time.Before(cutoff) {
			drop++
		}
	}
	if drop == 0 {
		return
	}
	clear(c.hist[:drop]) // let the dropped data be collected
	c.hist = c.hist[drop:]
	if len(c.hist) == 0 {
		c.hist = nil
	}
}

// Run delivers to h until ctx is done, expiring presence leases every
// SweepInterval. It returns nil when ctx ends, or an error if Run is
// already running or the broker is closed.
func (b *Broker) Run(ctx context.Context, h broker.Handler) error {
	if b.closed.Load() {
		return errClosed
	}
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return errors.New("memory: Run called twice")
	}
	b.running = true
	b.mu.Unlock()
	b.handler.Store(&handlerBox{h: h})
	defer func() {
		b.stopped.Store(true)
		b.handler.Store(nil)
		for _, c := range b.snapshot() {
			c.mu.Lock()
			c.queue = nil
			c.mu.Unlock()
		}
	}()
	for _, c := range b.snapshot() { // deliver what was published before Run
		c.mu.Lock()
		b.flush(c)
	}

	t := time.NewTicker(b.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			b.sweep(now)
		}
	}
}

// snapshot returns the current channels.
func (b *Broker) snapshot() []*channel {
	b.mu.Lock()
	defer b.mu.Unlock()
	chans := make([]*channel, 0, len(b.channels))
	for _, c := range b.channels {
		chans = append(chans, c)
	}
	return chans
}

// sweep expires presence leases and forgets idle channels.
func (b *Broker) sweep(now time.Time) {
	for _, c := range b.snapshot() {
		c.mu.Lock()
		if c.dead {
			c.mu.Unlock()
			continue
		}
		b.expire(c, now)
		c.trim(now, len(c.hist), c.ttl)
		idle := b.opts.IdleTTL > 0 && !c.subbed && len(c.conns) == 0 && len(c.hist) == 0 &&
			!c.delivering && len(c.queue) == 0 && now.Sub(c.lastUse) > b.opts.IdleTTL
		if idle {
			c.dead = true
			c.mu.Unlock()
			b.mu.Lock()
			if b.channels[c.name] == c {
				delete(b.channels, c.name)
			}
			b.mu.Unlock()
			continue
		}
		b.flush(c)
	}
}

// expire drops c's expired leases, queueing leaves. Called with c.mu held.
func (b *Broker) expire(c *channel, now time.Time) {
	for id, l := range c.conns {
		if !l.expires.IsZero() && !now.Before(l.expires) {
			b.removeConn(c, id, l)
		}
	}
}

// removeConn drops one connection, queueing a leave if it was its
// member's last. Called with c.mu held.
func (b *Broker) removeConn(c *channel, connID string, l *lease) {
	delete(c.conns, connID)
	c.members[l.m.ID]--
	if c.members[l.m.ID] <= 0 {
		delete(c.members, l.m.ID)
		b.enqueue(c, event{kind: evPresence, pres: broker.PresenceEvent{Channel: c.name, Join: false, Member: l.m}})
	}
}

// Publish appends data to the channel's history, bounded by opts, and
// queues it for the Handler when this node subscribed to the channel. The
// message's offset is the channel's previous offset plus one. Errors:
// ErrUnavailable (wrapped) after Close, or ctx's error.
func (b *Broker) Publish(ctx context.Context, channel string, data json.RawMessage, publisher string, opts broker.HistoryOptions) (broker.Message, error) {
	if err := ctx.Err(); err != nil {
		return broker.Message{}, err
	}
	if b.closed.Load() {
		return broker.Message{}, errClosed
	}
	now := time.Now()
	c := b.lock(channel)
	c.offset++
	m := broker.Message{Channel: channel, Epoch: c.epoch, Offset: c.offset, Data: bytes.Clone(data), Publisher: publisher, Time: now}
	c.ttl = opts.TTL
	if opts.Size > 0 {
		c.hist = append(c.hist, m)
	}
	c.trim(now, max(opts.Size, 0), opts.TTL)
	b.enqueue(c, event{kind: evMessage, msg: m})
	b.flush(c)
	return m, nil
}

// Subscribe makes the Handler receive the channel's messages and presence
// events published from now on. Idempotent. Errors: ErrUnavailable
// (wrapped) after Close.
func (b *Broker) Subscribe(ctx context.Context, channel string) error {
	if b.closed.Load() {
		return errClosed
	}
	c := b.lock(channel)
	c.subbed = true
	c.mu.Unlock()
	return nil
}

// Unsubscribe stops delivering the channel (events already queued may
// still be delivered). It never fails.
func (b *Broker) Unsubscribe(ctx context.Context, channel string) error {
	c := b.lock(channel)
	c.subbed = false
	c.mu.Unlock()
	return nil
}

// History returns up to limit messages (limit <= 0: all retained) after
// since, oldest first, and the channel's position; see broker.CheckSince
// for when it returns ErrGone. A new channel gets its epoch here. Errors:
// broker.ErrGone, ErrUnavailable (wrapped) after Close, or ctx's error.
func (b *Broker) History(ctx context.Context, channel string, since broker.Position, limit int) ([]broker.Message, broker.Position, error) {
	if err := ctx.Err(); err != nil {
		return nil, broker.Position{}, err
	}
	if b.closed.Load() {
		return nil, broker.Position{}, errClosed
	}
	c := b.lock(channel)
	defer c.mu.Unlock()
	c.trim(time.Now(), len(c.hist), c.ttl)
	top := broker.Position{Epoch: c.epoch, Offset: c.offset}
	var oldest int64
	if len(c.hist) > 0 {
		oldest = c.hist[0].Offset
	}
	if err := broker.CheckSince(since, top, oldest); err != nil {
		return nil, top, err
	}
	if len(c.hist) == 0 {
		return nil, top, nil
	}
	i := int(max(since.Offset+1-oldest, 0))
	if i >= len(c.hist) {
		return nil, top, nil
	}
	src := c.hist[i:]
	if limit > 0 && len(src) > limit {
		src = src[:limit]
	}
	return append([]broker.Message(nil), src...), top, nil
}

// Position returns the channel's epoch and newest offset, creating the
// epoch for a new channel. Errors: ErrUnavailable (wrapped) after Close.
func (b *Broker) Position(ctx context.Context, channel string) (broker.Position, error) {
	if b.closed.Load() {
		return broker.Position{}, errClosed
	}
	c := b.lock(channel)
	defer c.mu.Unlock()
	return broker.Position{Epoch: c.epoch, Offset: c.offset}, nil
}

// Join adds or renews the connection m.ConnID with a lease of ttl (ttl <= 0:
// no expiry). A member's first live connection queues a join; renewing an
// existing connection updates its Meta silently. Errors: ErrUnavailable
// (wrapped) after Close.
func (b *Broker) Join(ctx context.Context, channel string, m broker.Member, ttl time.Duration) error {
	if b.closed.Load() {
		return errClosed
	}
	now := time.Now()
	var exp time.Time
	if ttl > 0 {
		exp = now.Add(ttl)
	}
	m.Meta = bytes.Clone(m.Meta)
	c := b.lock(channel)
	if c.conns == nil {
		c.conns = map[string]*lease{}
		c.members = map[string]int{}
	}
	b.expire(c, now)
	if l, ok := c.conns[m.ConnID]; ok {
		if l.m.ID == m.ID {
			l.m, l.expires = m, exp
			b.flush(c)
			return nil
		}
		b.removeConn(c, m.ConnID, l) // the connection changed member
	}
	c.conns[m.ConnID] = &lease{m: m, expires: exp}
	c.members[m.ID]++
	if c.members[m.ID] == 1 {
		b.enqueue(c, event{kind: evPresence, pres: broker.PresenceEvent{Channel: channel, Join: true, Member: m}})
	}
	b.flush(c)
	return nil
}

// Leave removes the connection, queueing a leave if it was its member's
// last; an unknown connection is ignored. Errors: ErrUnavailable (wrapped)
// after Close.
func (b *Broker) Leave(ctx context.Context, channel string, connID string) error {
	if b.closed.Load() {
		return errClosed
	}
	c := b.lock(channel)
	if l, ok := c.conns[connID]; ok {
		b.removeConn(c, connID, l)
	}
	b.flush(c)
	return nil
}

// Presence lists the channel's live connections ordered by member ID then
// connection ID (expiring stale leases first). Errors: ErrUnavailable (wrapped) after Close.
func (b *Broker) Presence(ctx context.Context, channel string) ([]broker.Member, error) {
	if b.closed.Load() {
		return nil, errClosed
	}
	c := b.lock(channel)
	b.expire(c, time.Now())
	out := make([]broker.Member, 0, len(c.conns))
	for _, l := range c.conns {
		out = append(out, l.m)
	}
	b.flush(c)
	slices.SortFunc(out, func(x, y broker.Member) int {
		return cmp.Or(strings.Compare(x.ID, y.ID), strings.Compare(x.ConnID, y.ConnID))
	})
	return out, nil
}

// PresencePage lists the live connections of at most limit members whose
// ID sorts after after, ordered by member ID then connection ID (expiring
// stale leases first); more reports whether further members exist. Errors:
// ErrUnavailable (wrapped) after Close.
func (b *Broker) PresencePage(ctx context.Context, channel, after string, limit int) ([]broker.Member, bool, error) {
	if b.closed.Load() {
		return nil, false, errClosed
	}
	limit = max(limit, 1)
	c := b.lock(channel)
	b.expire(c, time.Now())
	ids := make([]string, 0, len(c.members))
	for id := range c.members {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	more := len(ids) > limit
	ids = ids[:min(len(ids), limit)]
	var out []broker.Member
	if len(ids) > 0 {
		last := ids[len(ids)-1]
		for _, l := range c.conns {
			if l.m.ID > after && l.m.ID <= last {
				out = append(out, l.m)
			}
		}
	}
	b.flush(c)
	slices.SortFunc(out, func(x, y broker.Member) int {
		return cmp.Or(strings.Compare(x.ID, y.ID), strings.Compare(x.ConnID, y.ConnID))
	})
	return out, more, nil
}

// Ping returns nil, or ErrUnavailable (wrapped) after Close.
func (b *Broker) Ping(ctx context.Context) error {
	if b.closed.Load() {
		return errClosed
	}
	return nil
}

// Close marks the broker closed: later calls fail with ErrUnavailable. It
// does not stop Run (cancel its context) and always returns nil.
func (b *Broker) Close() error {
	b.closed.Store(true)
	return nil
}
