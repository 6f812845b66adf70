package stream

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"sync"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
)

// Sink is one connection's outbound path (a WebSocket writer, an SSE
// response, …). Implementations are owned by the transports.
type Sink interface {
	// Push queues m without blocking; false means the sink overflowed and
	// is closing itself as a slow consumer.
	Push(m *hub.Message) bool
	// PushWait queues m, waiting for room: replays and snapshots are sent
	// at the client's pace instead of overflowing it. Errors: ctx is done
	// or the sink closed.
	PushWait(ctx context.Context, m *hub.Message) error
	// Close starts closing the connection because the server is going away.
	Close()
	// SlowConsumer closes the connection because it cannot keep up.
	SlowConsumer()
}

// Request is a parsed subscribe request.
type Request struct {
	Topic    Topic
	Selector store.Selector
	// Since resumes after this cursor (nil: no resume).
	Since *Cursor
	// Snapshot sends the current state first.
	Snapshot bool
}

// Start says where a subscription's stream starts.
type Start string

// The ways a subscription starts.
const (
	StartLive     Start = "live"
	StartSince    Start = "since"
	StartSnapshot Start = "snapshot"
)

// Result is what the subscribe reply tells the client.
type Result struct {
	Topic  string
	Labels string
	Cursor Cursor
	Start  Start
}

// maxPendingBytes bounds the live events a subscription buffers while it
// replays; beyond it the client is a slow consumer.
const maxPendingBytes = 8 << 20

// Subscription is one topic subscription of one connection. It is the
// hub.Subscriber for its key: until it goes live it buffers broadcasts,
// then it forwards them to the sink, dropping any it already replayed.
type Subscription struct {
	Key    string
	Topic  Topic
	Labels string
	sel    store.Selector
	sink   Sink

	mu           sync.Mutex
	live         bool
	closed       bool
	pending      []*hub.Message
	pendingBytes int
	last         int64 // newest revision sent (or skipped as invisible)

	// Channel subscriptions: the presence entry joined, and the release of
	// the node's broker subscription.
	member  *broker.Member
	release func()
	epoch   string // channel epoch
}

// Cursor is the subscription's current position: for resource topics the
// newer of what it delivered and what the feed has broadcast (feed may be
// nil for channel topics), for channel topics its last offset. ok is false
// for topics without cursors (presence).
func (s *Subscription) Cursor(feed *Feed) (Cursor, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursorLocked(feed)
}

var _ hub.Subscriber = (*Subscription)(nil)

// Deliver implements hub.Subscriber.
func (s *Subscription) Deliver(m *hub.Message) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return true
	}
	if !s.live {
		s.pending = append(s.pending, m)
		s.pendingBytes += m.Size()
		if s.pendingBytes > maxPendingBytes {
			s.closed, s.pending = true, nil
			go s.sink.SlowConsumer()
			return false
		}
		return true
	}
	switch {
	case m.Seq() == SeqReset:
		// The stream's history is gone: pass on the error frame and stop.
		s.closed = true
		return s.sink.Push(m)
	case m.Seq() == 0: // outside the ordered stream (presence diffs)
		return s.sink.Push(m)
	case m.Seq() <= s.last:
		return true
	}
	s.last = m.Seq()
	return s.sink.Push(m)
}

// SeqReset marks a message that ends a subscription (its stream was reset).
const SeqReset = -1

// Closed reports whether the subscription ended (unsubscribed or reset).
func (s *Subscription) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close implements hub.Subscriber: the server is shutting down.
func (s *Subscription) Close() { s.sink.Close() }

// Last is the newest revision this subscription has passed to its sink.
func (s *Subscription) Last() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Live reports whether the subscription has finished its replay.
func (s *Subscription) Live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live
}

// Resources subscribes connections to resource topics: it validates the
// request, registers the subscription with the hub, and replays history
// with an atomic hand-off to live events.
type Resources struct {
	Store store.Store
	Hub   *hub.Hub
	Feed  *Feed
	// MaxSnapshot bounds the resources a snapshot may hold.
	MaxSnapshot int
}

// Subscribe starts a subscription. It returns the subscription, the result
// for the reply, and run, which the transport must call after queueing the
// reply: run sends the snapshot or replay and then switches to live
// events. Errors: store.ErrNotFound (collection), store.ErrInvalid (bad
// cursor), store.ErrCompacted (resync-required), store.ErrTooLarge (snapshot).
func (e *Resources) Subscribe(ctx context.Context, req Request, sink Sink) (*Subscription, Result, func(context.Context) error, error) {
	if _, err := e.Store.GetCollection(ctx, req.Topic.Collection); err != nil {
		return nil, Result{}, nil, err
	}
	epoch := e.Store.Epoch()
	if req.Since != nil {
		if req.Since.Kind != KindResource {
			return nil, Result{}, nil, store.Errorf(store.CodeInvalid, "cursor belongs to a channel, not to a resource topic")
		}
		if req.Since.Epoch != epoch {
			return nil, Result{}, nil, store.Errorf(store.CodeCompacted, "cursor is from another store epoch (the history it points into is gone); reload the state and subscribe again")
		}
	}
	sub := &Subscription{Key: Key(req.Topic.Path, req.Selector), Topic: req.Topic, Labels: req.Selector.String(), sel: req.Selector, sink: sink}
	e.Hub.Subscribe(sub.Key, sub)
	fail := func(err error) (*Subscription, Result, func(context.Context) error, error) {
		e.Hub.Unsubscribe(sub.Key, sub)
		return nil, Result{}, nil, err
	}
	head, err := e.Store.Revision(ctx)
	if err != nil {
		return fail(err)
	}
	res := Result{Topic: req.Topic.Path, Labels: sub.Labels}
	var snapshot []store.Resource
	switch {
	case req.Since != nil:
		if req.Since.Pos > head {
			return fail(store.Errorf(store.CodeCompacted, "cursor is ahead of this store's history; reload the state and subscribe again"))
		}
		// Probe the log now so an expired cursor fails the subscribe itself.
		if _, err := e.Store.Changes(ctx, req.Since.Pos, 1); err != nil {
			return fail(resyncError(err))
		}
		sub.last = req.Since.Pos
		res.Start, res.Cursor = StartSince, *req.Since
	case req.Snapshot:
		items, at, err := e.snapshot(ctx, req, sub)
		if err != nil {
			return fail(err)
		}
		snapshot, sub.last = items, at
		res.Start, res.Cursor = StartSnapshot, e.Feed.Cursor(at)
	default:
		sub.last = head
		res.Start, res.Cursor = StartLive, e.Feed.Cursor(head)
	}
	run := func(ctx context.Context) error {
		if req.Snapshot {
			cur := res.Cursor
			for _, r := range snapshot {
				b, err := EncodeEvent(req.Topic.Path, sub.Labels, EventSnapshot, cur, r)
				if err != nil {
					return err
				}
				if err := sink.PushWait(ctx, hub.NewEvent(b, sub.Key, cur.String(), 0)); err != nil {
					return err
				}
			}
			b, _ := json.Marshal(SyncedFrame{Type: "synced", Topic: req.Topic.Path, Labels: sub.Labels, Cursor: cur.String()})
			if err := sink.PushWait(ctx, hub.NewEvent(b, sub.Key, cur.String(), 0)); err != nil {
				return err
			}
		}
		return e.catchUp(ctx, sub, head)
	}
	return sub, res, run, nil
}

// Unsubscribe removes a subscription from the hub.
func (e *Resources) Unsubscribe(sub *Subscription) {
	sub.close()
	e.Hub.Unsubscribe(sub.Key, sub)
}

func (s *Subscription) close() {
	s.mu.Lock()
	s.closed = true
	s.pending = nil
	s.mu.Unlock()
}

// SyncedFrame ends a snapshot (AsyncAPI components/schemas/Synced).
type SyncedFrame struct {
	Type   string `json:"type"`
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Cursor string `json:"cursor"`
}

// BookmarkFrame carries a subscription's current cursor (AsyncAPI
// components/schemas/Bookmark); WebSocket and SSE send it periodically.
type BookmarkFrame struct {
	Type   string `json:"type"`
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Cursor string `json:"cursor"`
}

// catchUp replays the change log from sub.last to head, then releases the
// live events buffered meanwhile (skipping those already replayed) and
// marks the subscription live, all without a gap or a duplicate.
func (e *Resources) catchUp(ctx context.Context, sub *Subscription, head int64) error {
	for {
		sub.mu.Lock()
		after := sub.last
		sub.mu.Unlock()
		if after >= head {
			break
		}
		changes, err := e.Store.Changes(ctx, after, 500)
		if err != nil {
			return resyncError(err)
		}
		if len(changes) == 0 {
			break
		}
		for _, ch := range changes {
			if err := e.replayOne(ctx, sub, ch); err != nil {
				return err
			}
		}
	}
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.closed {
		return nil
	}
	return sub.goLive()
}

// goLive releases the buffered live messages that come after what was
// replayed and switches to direct delivery. Callers hold sub.mu.
func (sub *Subscription) goLive() error {
	pending := sub.pending
	sub.pending, sub.pendingBytes = nil, 0
	for _, m := range pending {
		switch {
		case m.Seq() == SeqReset:
			sub.closed = true
			sub.sink.Push(m)
			return nil
		case m.Seq() != 0 && m.Seq() <= sub.last:
			continue
		case m.Seq() != 0:
			sub.last = m.Seq()
		}
		if !sub.sink.Push(m) {
			return errors.New("slow consumer during hand-off")
		}
	}
	sub.live = true
	return nil
}

func (e *Resources) replayOne(ctx context.Context, sub *Subscription, ch store.Change) error {
	defer func() {
		sub.mu.Lock()
		if ch.Revision > sub.last {
			sub.last = ch.Revision
		}
		sub.mu.Unlock()
	}()
	if !matchesTopic(sub.Topic, ch) {
		return nil
	}
	ev, ok := EventFor(ch, sub.sel)
	if !ok {
		return nil
	}
	cur := e.Feed.Cursor(ch.Revision)
	b, err := EncodeEvent(sub.Topic.Path, sub.Labels, ev, cur, ch.Resource)
	if err != nil {
		return err
	}
	return sub.sink.PushWait(ctx, hub.NewEvent(b, sub.Key, cur.String(), ch.Revision))
}

func matchesTopic(t Topic, ch store.Change) bool {
	if ch.Resource.Collection != t.Collection {
		return false
	}
	return t.Kind == TopicCollection || ch.Resource.ID == t.ID
}

// snapshot reads the current state of the topic at one revision: pages are
// read at successive revisions, so the changes between the first page and
// the last are applied on top, giving exactly the state at the last.
func (e *Resources) snapshot(ctx context.Context, req Request, sub *Subscription) ([]store.Resource, int64, error) {
	max := e.MaxSnapshot
	if max <= 0 {
		max = 10000
	}
	items := map[string]store.Resource{}
	var first, at int64
	if req.Topic.Kind == TopicResource {
		rev, err := e.Store.Revision(ctx)
		if err != nil {
			return nil, 0, err
		}
		r, err := e.Store.GetResource(ctx, req.Topic.Collection, req.Topic.ID)
		switch {
		case err == nil:
			if req.Selector.Matches(r.Labels) {
				items[r.ID] = r
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, 0, err
		}
		first, at = rev, rev
		if r.Revision > at {
			at = r.Revision
		}
	} else {
		opts := store.ListOptions{Collection: req.Topic.Collection, Selector: req.Selector, Limit: 1000}
		for i := 0; ; i++ {
			page, err := e.Store.ListResources(ctx, opts)
			if err != nil {
				return nil, 0, err
			}
			if i == 0 {
				first = page.Revision
			}
			at = page.Revision
			for _, r := range page.Items {
				items[r.ID] = r
			}
			if len(items) > max {
				return nil, 0, store.Errorf(store.CodeTooLarge, "snapshot exceeds %d resources; list over REST and subscribe with since", max)
			}
			if !page.More || len(page.Items) == 0 {
				break
			}
			opts.After = page.Items[len(page.Items)-1].ID
		}
	}
	// Bring every item to revision `at`.
	for after := first; after < at; {
		changes, err := e.Store.Changes(ctx, after, 500)
		if err != nil {
			return nil, 0, resyncError(err)
		}
		if len(changes) == 0 {
			break
		}
		for _, ch := range changes {
			after = ch.Revision
			if ch.Revision > at {
				break
			}
			if !matchesTopic(req.Topic, ch) {
				continue
			}
			cur, ok := items[ch.Resource.ID]
			if ok && cur.Revision >= ch.Revision {
				continue
			}
			if ch.Type == store.Deleted || !req.Selector.Matches(ch.Resource.Labels) {
				delete(items, ch.Resource.ID)
			} else {
				items[ch.Resource.ID] = ch.Resource
			}
		}
	}
	out := make([]store.Resource, 0, len(items))
	for _, r := range items {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, at, nil
}

// resyncError turns a compacted change log into resync-required.
func resyncError(err error) error {
	if errors.Is(err, store.ErrCompacted) {
		return store.Errorf(store.CodeCompacted, "the change log no longer reaches back to this cursor; reload the state and subscribe again")
	}
	return err
}
