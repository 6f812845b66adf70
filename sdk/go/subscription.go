package tandem

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// Event types delivered to subscribers.
const (
	// TypeEvent is a resource change or a channel message (Event.Event
	// says which: resource.created, resource.updated, resource.deleted,
	// resource.snapshot or message).
	TypeEvent = "event"
	// TypeSynced ends a snapshot: the state up to Cursor has been sent;
	// live events follow.
	TypeSynced = "synced"
	// TypePresence is the presence state (Action "state") or a join/leave.
	TypePresence = "presence"
	// TypeReset is made by the SDK, not sent by the server: a snapshot
	// starts again (the connection dropped during the previous snapshot,
	// or AutoResync is reloading after resync-required). Discard the state
	// built from this subscription's events; the new snapshot follows.
	TypeReset = "reset"
)

// Event is one frame of a subscription.
type Event struct {
	// Type is TypeEvent, TypeSynced, TypePresence or TypeReset.
	Type   string
	Topic  string
	Labels string
	// Filter is the subscription's filter in canonical form ("" for none),
	// as every frame of a filtered subscription carries it.
	Filter string
	// Event names a TypeEvent: resource.created, resource.updated,
	// resource.deleted (carrying the last state), resource.snapshot,
	// message, or collection.updated (the collection's definition
	// changed: Collection is set, Resource is nil).
	Event string
	// Cursor is the position after this event (TypeEvent, TypeSynced).
	Cursor   string
	Resource *client.Resource
	// Collection is the new definition of a collection.updated event.
	Collection *client.Collection
	Message    *client.ChannelMessage
	// Batch is set on the events of an atomic batch (Client.Batch): its
	// id, its last revision, and End on the last event of the batch this
	// subscription receives. Mirror applies a batch's events together.
	Batch *client.EventBatch
	// Action is state, join or leave (TypePresence); Members the full list
	// (state) or the member that joined or left.
	Action  string
	Members []client.PresenceMember
	// Raw is the frame exactly as received (nil for TypeReset).
	Raw json.RawMessage
}

// SubscribeOptions configure a subscription. The zero value subscribes to
// live events from now on.
type SubscribeOptions struct {
	// Labels is a label selector for resource topics, e.g. "env=prod".
	Labels string
	// Filter is a filter expression for resource topics (the language of
	// the REST list's filter, see docs/queries.md), e.g.
	// `data.status == "paid" && data.qty > 2`. A resource that starts
	// matching arrives as resource.created, one that stops matching as
	// resource.deleted (carrying its last state), and a snapshot holds only
	// matching resources. A bad expression makes Subscribe fail with a
	// *ProblemError (400) whose detail names its position.
	Filter string
	// Since resumes after this cursor: every later event, in order, no gap
	// and no duplicate (or a *ResyncRequiredError).
	Since string
	// Snapshot sends the current state first (resource.snapshot events, or
	// a channel's retained history), then a synced event, then live
	// events. Not with Since.
	Snapshot bool
	// Meta is this connection's presence metadata (a JSON object) for a
	// channel messages topic.
	Meta any
	// AutoResync reloads with a snapshot (after a TypeReset event) when the
	// server answers resync-required, instead of ending the subscription.
	AutoResync bool
	// Buffer is the capacity of the Events channel (default 64).
	Buffer int
	// MaxPending bounds the events received but not yet taken by the
	// application (0 means 10,000; -1 means no bound). When a resource or
	// channel messages subscription reaches it outside a snapshot, the SDK
	// pauses it instead of queueing without end: it unsubscribes, keeps the
	// cursor of the last queued event, and once the application has taken
	// every queued event it subscribes again from that cursor, so nothing
	// is lost or repeated (Pauses counts these). If the server no longer
	// holds that position (a channel's history window has passed), the
	// subscription gets resync-required like any resume: AutoResync
	// reloads it, otherwise it ends with a *ResyncRequiredError. Presence
	// subscriptions and snapshots are never paused.
	MaxPending int
}

// defaultMaxPending is SubscribeOptions.MaxPending's default.
const defaultMaxPending = 10000

// Subscription is one topic followed over a Conn, across reconnects. Its
// events arrive on Events (Conn.Subscribe) or at a callback
// (Conn.SubscribeFunc), in order, from one goroutine. A server-side
// subscription (WithServerSubscriptions) is the same type, delivering on
// Events, but lives only as long as its connection.
type Subscription struct {
	cn       *Conn
	topic    string
	opts     SubscribeOptions
	meta     json.RawMessage
	presence bool
	fn       func(Event)
	server   bool // made by the server (a subscribed frame)

	// Guarded by cn.mu. labels and filter are the canonical forms of the
	// subscribe reply; key is subKey of the topic and them.
	key, labels   string
	filter        string
	cursor        string // where to resume
	snapshotting  bool   // a snapshot is requested or in progress
	sawSnapshot   bool   // events of an unfinished snapshot were delivered
	active        bool   // established on the current connection
	ended         bool
	err           error
	retries       int
	firstDone     bool
	first         chan error
	paused        bool // unsubscribed until the application catches up
	unsubscribing bool // a pause's unsubscribe awaits its reply
	pauses        int

	// pending counts the events enqueued and not yet handed to the
	// application (delivered to the callback or sent on Events).
	pending atomic.Int64
	maxPend int64 // 0: no bound

	qmu      sync.Mutex
	q        []Event
	finished bool
	wake     chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	events   chan Event
	done     chan struct{}
}

// Subscribe follows topic; events arrive on the subscription's Events
// channel, which is closed when the subscription ends (then Err says why).
// It returns once the server accepted the subscription. A Conn holds at
// most one subscription per topic, label selector and filter (the server
// answers ErrConflict to a second); use another Conn for an independent
// one. Errors: *ResyncRequiredError (Since is too old, without AutoResync),
// ErrNotFound, ErrForbidden, *ProblemError (e.g. 400 for a bad Labels or
// Filter, naming the position), ctx.Err(), the Conn's end error.
func (cn *Conn) Subscribe(ctx context.Context, topic string, opts *SubscribeOptions) (*Subscription, error) {
	return cn.subscribe(ctx, topic, opts, nil)
}

// SubscribeFunc is Subscribe with a callback: fn receives every event, in
// order, from one goroutine owned by the subscription. fn may call other
// methods of the Conn (e.g. Publish).
func (cn *Conn) SubscribeFunc(ctx context.Context, topic string, opts *SubscribeOptions, fn func(Event)) (*Subscription, error) {
	if fn == nil {
		return nil, errors.New("tandem: SubscribeFunc needs a callback")
	}
	return cn.subscribe(ctx, topic, opts, fn)
}

// Resync subscribes again to the topic of an ended subscription (usually
// one that ended with a *ResyncRequiredError), with a snapshot: the current
// state, a synced event, then live events. It keeps the other options and
// the delivery style (a callback, or a new Events channel).
func (cn *Conn) Resync(ctx context.Context, ended *Subscription) (*Subscription, error) {
	o := ended.opts
	o.Since, o.Snapshot = "", true
	return cn.subscribe(ctx, ended.topic, &o, ended.fn)
}

func (cn *Conn) subscribe(ctx context.Context, topic string, opts *SubscribeOptions, fn func(Event)) (*Subscription, error) {
	var o SubscribeOptions
	if opts != nil {
		o = *opts
	}
	if o.Since != "" && o.Snapshot {
		return nil, errors.New("tandem: Since and Snapshot cannot be combined")
	}
	var meta json.RawMessage
	if o.Meta != nil {
		m, err := rawJSON(o.Meta)
		if err != nil {
			return nil, err
		}
		meta = m
	}
	s := newSubscription(cn, topic, o, fn)
	s.meta = meta
	s.snapshotting = o.Snapshot && !s.presence
	s.cursor = o.Since
	go s.deliver()
	cn.mu.Lock()
	if cn.err != nil {
		err := cn.err
		cn.mu.Unlock()
		s.finish()
		return nil, err
	}
	cn.subs[s] = struct{}{}
	connected, gen := cn.ws != nil, cn.gen
	cn.mu.Unlock()
	if connected {
		cn.sendSubscribe(s, gen)
	}
	select {
	case err := <-s.first:
		if err != nil {
			s.stopDelivery()
			return nil, err
		}
		return s, nil
	case <-ctx.Done():
		_ = s.Close()
		return nil, ctx.Err()
	}
}

// newSubscription returns a subscription of topic that has not started
// delivering yet.
func newSubscription(cn *Conn, topic string, o SubscribeOptions, fn func(Event)) *Subscription {
	s := &Subscription{cn: cn, topic: topic, opts: o, fn: fn, first: make(chan error, 1),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	s.presence = strings.HasPrefix(topic, "channels/") && strings.HasSuffix(topic, "/presence")
	switch {
	case o.MaxPending == 0:
		s.maxPend = defaultMaxPending
	case o.MaxPending > 0:
		s.maxPend = int64(o.MaxPending)
	}
	if fn == nil {
		n := o.Buffer
		if n <= 0 {
			n = 64
		}
		s.events = make(chan Event, n)
	}
	return s
}

// overLimitLocked reports whether the next event would pass MaxPending on a
// subscription that can be paused (cn.mu held).
func (s *Subscription) overLimitLocked() bool {
	return s.maxPend > 0 && !s.presence && !s.snapshotting && s.pending.Load() >= s.maxPend
}

// Pauses returns how many times the subscription was paused because the
// application had MaxPending events to take (see SubscribeOptions).
func (s *Subscription) Pauses() int {
	s.cn.mu.Lock()
	defer s.cn.mu.Unlock()
	return s.pauses
}

// Events is the channel of a subscription made with Subscribe (nil for
// SubscribeFunc). It is closed after the last event; then Err says why.
func (s *Subscription) Events() <-chan Event { return s.events }

// Done is closed when the subscription has ended and delivered its last
// event.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err returns why the subscription ended: ErrClosed after Close, a
// *ResyncRequiredError, a *ProblemError, ErrUnsubscribedByServer (an
// unsubscribed frame), ErrConnectionLost (a server-side subscription whose
// connection dropped), or the Conn's end error; nil while it runs.
func (s *Subscription) Err() error {
	s.cn.mu.Lock()
	defer s.cn.mu.Unlock()
	return s.err
}

// Topic returns the subscribed topic.
func (s *Subscription) Topic() string { return s.topic }

// Labels returns the subscription's label selector ("" for none).
func (s *Subscription) Labels() string { return s.opts.Labels }

// Filter returns the subscription's filter in the canonical form the
// server answered with (e.g. "data.qty > 2" for "data.qty>2"), which every
// event of the subscription carries in Event.Filter; "" for none.
func (s *Subscription) Filter() string {
	s.cn.mu.Lock()
	defer s.cn.mu.Unlock()
	if s.key == "" {
		return s.opts.Filter // not accepted yet
	}
	return s.filter
}

// Cursor returns the position the subscription would resume from: the
// cursor of the newest event or bookmark received ("" before the first
// reply, and while a snapshot is incomplete). Store it to resume later with
// SubscribeOptions.Since.
func (s *Subscription) Cursor() string {
	s.cn.mu.Lock()
	defer s.cn.mu.Unlock()
	return s.cursor
}

// Close unsubscribes; events not yet delivered are dropped and Err
// returns ErrClosed. It returns no error.
func (s *Subscription) Close() error {
	cn := s.cn
	cn.mu.Lock()
	if s.ended {
		cn.mu.Unlock()
		s.stopDelivery()
		return nil
	}
	s.ended, s.err = true, ErrClosed
	delete(cn.subs, s)
	active, labels, filter := s.active, s.labels, s.filter
	if s.key != "" && cn.byKey[s.key] == s {
		delete(cn.byKey, s.key)
	}
	s.signalFirstLocked(ErrClosed)
	cn.mu.Unlock()
	s.stopDelivery()
	s.finish()
	if active {
		ctx, cancel := context.WithTimeout(cn.ctx, 5*time.Second)
		defer cancel()
		_, _ = cn.request(ctx, func(ref string) any {
			return unsubscribeFrame{Type: "unsubscribe", Ref: ref, Topic: s.topic, Labels: labels, Filter: filter}
		})
	}
	return nil
}

func (s *Subscription) signalFirstLocked(err error) {
	if !s.firstDone {
		s.firstDone = true
		s.first <- err
	}
}

func (s *Subscription) stopDelivery() { s.stopOnce.Do(func() { close(s.stop) }) }

// enqueue queues an event for delivery (never blocks the reader).
func (s *Subscription) enqueue(ev Event) {
	s.qmu.Lock()
	if !s.finished {
		s.q = append(s.q, ev)
		s.pending.Add(1)
	}
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// finish says no more events will be queued; delivery ends after the
// queued ones.
func (s *Subscription) finish() {
	s.qmu.Lock()
	s.finished = true
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// deliver hands queued events to the callback or the channel, in order.
func (s *Subscription) deliver() {
	defer close(s.done)
	if s.events != nil {
		defer close(s.events)
	}
	for {
		s.qmu.Lock()
		batch, fin := s.q, s.finished
		s.q = nil
		s.qmu.Unlock()
		for _, ev := range batch {
			select {
			case <-s.stop:
				return
			default:
			}
			if s.fn != nil {
				s.fn(ev)
				s.pending.Add(-1)
				continue
			}
			select {
			case s.events <- ev:
				s.pending.Add(-1)
			case <-s.stop:
				return
			}
		}
		if len(batch) == 0 {
			if fin {
				return
			}
			// Everything queued has been taken: a paused subscription
			// picks up where its queue ended.
			s.cn.resumePaused(s)
			select {
			case <-s.wake:
			case <-s.stop:
				return
			}
		}
	}
}
