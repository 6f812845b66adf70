package stream

import (
	"context"
	"errors"
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
	// Filter filters resource topics by the filter language (nil: none).
	Filter *store.Filter
	// Since resumes after this cursor (nil: no resume).
	Since *Cursor
	// Snapshot sends the current state first.
	Snapshot bool
}

// Predicate returns what the request selects.
func (r Request) Predicate() store.Predicate {
	return store.Predicate{Selector: r.Selector, Filter: r.Filter}
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
	Filter string
	Cursor Cursor
	Start  Start
}

// maxPendingBytes bounds the unordered frames (presence diffs) a
// subscription holds while it replays; beyond it the client is a slow
// consumer. Ordered events are never buffered: the replay reads them from
// the change log or channel history instead (see catchUp).
const maxPendingBytes = 256 << 10

// Subscription is one topic subscription of one connection. It is the
// hub.Subscriber for its key: until it goes live it only notes how far
// the broadcasts have got (the replay then reads up to there from the
// log, so a subscription that replays holds no events in memory), then it
// forwards them to the sink, dropping any it already replayed.
type Subscription struct {
	Key    string
	Topic  Topic
	Labels string
	Filter string
	spec   *keySpec
	sink   Sink

	mu           sync.Mutex
	live         bool
	closed       bool
	pending      []*hub.Message // unordered frames (seq 0) while replaying
	pendingBytes int
	reset        *hub.Message       // a stream reset broadcast while replaying
	seen         int64              // newest ordered position broadcast while replaying
	last         int64              // newest revision sent (or skipped as invisible)
	stopRun      context.CancelFunc // cancels the running snapshot or replay (see guard)

	// Channel subscriptions: the presence entry joined, and the release of
	// the node's broker subscription.
	member  *broker.Member
	release func()
	epoch   string // channel epoch
}

var _ hub.Laner = (*Subscription)(nil)

// Lane implements hub.Laner: the subscriptions of one sink (a connection)
// share the sink's lane when it is a hub.Laner, so they receive their
// events in the order they were broadcast; otherwise the key's lane.
func (s *Subscription) Lane() uint64 {
	if l, ok := s.sink.(hub.Laner); ok {
		return l.Lane()
	}
	return hub.LaneOf(s.Key)
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
		switch {
		case m.Seq() == SeqReset:
			s.reset = m
		case m.Seq() != 0:
			// The replay reads it from the log: note only how far to go.
			s.seen = max(s.seen, m.Seq())
		default:
			s.pending = append(s.pending, m)
			s.pendingBytes += m.Size()
			if s.pendingBytes > maxPendingBytes {
				s.closed, s.pending = true, nil
				go s.sink.SlowConsumer()
				return false
			}
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

// errNoProgress ends a replay that cannot reach what was broadcast: the
// client resubscribes from its cursor.
var errNoProgress = store.Errorf(store.CodeCompacted, "the history no longer holds the events broadcast while this subscription replayed; resubscribe from your last cursor")

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

// Joined reports whether the subscription joined its channel's presence
// (its holder renews the lease: Channels.RenewPresence).
func (s *Subscription) Joined() bool { return s.member != nil }

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
	Store  store.Store
	Hub    *hub.Hub
	Feed   *Feed
	Frames Frames
	// MaxScan bounds the resources one page of a filtered snapshot
	// examines (0: store.DefaultMaxScan); beyond it the subscription
	// fails with CodeNeedsIndex.
	MaxScan int
}

// Page sizes of replays and snapshots. A replay reads replayPage changes
// at a time; a snapshot starts with snapshotFirstPage resources and then
// sizes its pages to hold about snapshotPageBytes, so that what one
// subscription holds in memory besides its connection's queue is one page
// of at most a few hundred KiB (a few large resources at most), whatever
// the collection holds.
const (
	replayPage        = 64
	snapshotFirstPage = 16
	snapshotMaxPage   = 500
	snapshotPageBytes = 256 << 10
)

// Subscribe starts a subscription. It returns the subscription, the result
// for the reply, and run, which the transport must call after queueing the
// reply: run sends the snapshot or replay and then switches to live
// events. Snapshots and replays are read page by page as the sink drains
// (Sink.PushWait), never materialised whole. The caller (app) has
// checked req.Since (its kind and epoch: app.App.Subscribe). Errors: store.ErrNotFound
// (collection), store.ErrCompacted (resync-required).
func (e *Resources) Subscribe(ctx context.Context, req Request, sink Sink) (*Subscription, Result, func(context.Context) error, error) {
	if _, err := e.Store.GetCollection(ctx, req.Topic.Collection); err != nil {
		return nil, Result{}, nil, err
	}
	spec := newKeySpec(req.Topic.Path, req.Predicate())
	sub := &Subscription{Key: spec.key, Topic: req.Topic, Labels: spec.labels, Filter: spec.filter, spec: spec, sink: sink}
	e.Hub.SubscribeWith(sub.Key, spec, sub)
	fail := func(err error) (*Subscription, Result, func(context.Context) error, error) {
		e.Hub.Unsubscribe(sub.Key, sub)
		return nil, Result{}, nil, err
	}
	head, err := e.Store.Revision(ctx)
	if err != nil {
		return fail(err)
	}
	res := Result{Topic: req.Topic.Path, Labels: sub.Labels, Filter: sub.Filter}
	switch {
	case req.Since != nil:
		if req.Since.Pos > head {
			return fail(errCursorAhead)
		}
		// Probe the log now so an expired cursor fails the subscribe itself.
		if _, err := e.Store.Changes(ctx, req.Since.Pos, 1); err != nil {
			return fail(resyncError(err))
		}
		sub.last = req.Since.Pos
		res.Start, res.Cursor = StartSince, *req.Since
	case req.Snapshot:
		sub.last = head
		res.Start, res.Cursor = StartSnapshot, e.Feed.Cursor(head)
	default:
		sub.last = head
		res.Start, res.Cursor = StartLive, e.Feed.Cursor(head)
	}
	run := func(ctx context.Context) error {
		if req.Snapshot {
			cur := res.Cursor
			push := func(r store.Resource) error {
				b, err := e.Frames.Event(resourceEvent(sub.spec, req.Topic.Path, EventSnapshot, cur, r))
				if err != nil {
					return err
				}
				return sink.PushWait(ctx, hub.NewEvent(b, sub.Key, cur.String(), 0))
			}
			var err error
			if req.Topic.Kind == TopicResource {
				err = e.snapshotOne(ctx, req, head, push)
			} else {
				err = e.streamSnapshot(ctx, req, head, push)
			}
			if err != nil {
				return err
			}
			b := e.Frames.Synced(req.Topic.Path, sub.Labels, sub.Filter, cur)
			if err := sink.PushWait(ctx, hub.NewEvent(b, sub.Key, cur.String(), 0)); err != nil {
				return err
			}
		}
		return e.catchUp(ctx, sub, head)
	}
	return sub, res, sub.guard(run), nil
}

// errCursorAhead refuses a resource cursor past the store's newest
// revision (a cursor of another store that shares its epoch name).
var errCursorAhead = store.Errorf(store.CodeCompacted, "cursor is ahead of this store's history; reload the state and start again")

// Unsubscribe removes a subscription from the hub.
func (e *Resources) Unsubscribe(sub *Subscription) {
	sub.close()
	e.Hub.Unsubscribe(sub.Key, sub)
}

func (s *Subscription) close() {
	s.mu.Lock()
	s.closed = true
	s.pending, s.reset = nil, nil
	if s.stopRun != nil {
		s.stopRun()
	}
	s.mu.Unlock()
}

// guard runs a subscription's snapshot or replay under a context that its
// close cancels: a replay push (Sink.PushWait) checks the context under
// the queue's lock, so once an unsubscribe has returned nothing more of
// this subscription is queued — not behind the reply to a new
// subscription of the same key either. A run ended by close, or by its
// sink's queue closing (the connection is ending), returns nil.
func (s *Subscription) guard(run func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil
		}
		s.stopRun = cancel
		s.mu.Unlock()
		err := run(ctx)
		s.mu.Lock()
		s.stopRun = nil // the run's context is done with: do not keep it
		s.mu.Unlock()
		if s.Closed() || errors.Is(err, hub.ErrQueueClosed) {
			return nil
		}
		return err
	}
}

// MaxReplays is how many subscriptions of one connection (or SSE stream)
// may read their snapshot or replay at the same time.
const MaxReplays = 2

// Replays admits the snapshot and replay runs of one connection's
// subscriptions, MaxReplays at a time; the others wait their turn (they
// hold no events meanwhile: they replay from the log once admitted).
type Replays chan struct{}

// NewReplays returns the admission of one connection or stream.
func NewReplays() Replays { return make(Replays, MaxReplays) }

// Run waits for a free slot, then runs run (a Subscribe result's run) and
// frees the slot. It returns run's error, or nil when ctx ended before a
// slot was free.
func (r Replays) Run(ctx context.Context, run func(context.Context) error) error {
	select {
	case r <- struct{}{}:
	case <-ctx.Done():
		return nil
	}
	defer func() { <-r }()
	return run(ctx)
}

// catchUp replays the change log from sub.last to target, page by page at
// the sink's pace; then, under the subscription's lock, it either goes
// live (nothing newer was broadcast meanwhile) or replays on up to what
// was, so the hand-off has no gap and no duplicate and holds no events in
// memory.
func (e *Resources) catchUp(ctx context.Context, sub *Subscription, target int64) error {
	for {
		for {
			sub.mu.Lock()
			after, closed := sub.last, sub.closed
			sub.mu.Unlock()
			if closed {
				return nil
			}
			if after >= target {
				break
			}
			changes, err := e.Store.Changes(ctx, after, replayPage)
			if err == nil {
				changes, err = completeBatches(ctx, e.Store, changes)
			}
			if err != nil {
				return resyncError(err)
			}
			if len(changes) == 0 {
				break
			}
			views := viewsOf(changes)
			ends := lastVisible(views, sub.Topic, sub.spec.pred)
			for _, v := range views {
				if err := e.replayOne(ctx, sub, v, batchEnd(ends, v.Change)); err != nil {
					return err
				}
			}
		}
		sub.mu.Lock()
		if sub.closed {
			sub.mu.Unlock()
			return nil
		}
		if sub.reset == nil && sub.seen > sub.last {
			if target >= sub.seen {
				// The log ended before what was broadcast: it cannot be
				// replayed (never expected; the feed reads the log).
				sub.mu.Unlock()
				return errNoProgress
			}
			target = sub.seen
			sub.mu.Unlock()
			continue
		}
		err := sub.goLive()
		sub.mu.Unlock()
		return err
	}
}

// goLive releases what was held back while replaying (a stream reset, or
// unordered frames) and switches to direct delivery; every ordered event
// broadcast meanwhile has been replayed (callers check sub.seen). Callers
// hold sub.mu.
func (sub *Subscription) goLive() error {
	pending := sub.pending
	sub.pending, sub.pendingBytes = nil, 0
	if sub.reset != nil {
		sub.closed = true
		sub.sink.Push(sub.reset)
		sub.reset = nil
		return nil
	}
	for _, m := range pending {
		if !sub.sink.Push(m) {
			return errors.New("slow consumer during hand-off")
		}
	}
	sub.live = true
	return nil
}

// replayOne sends the event of change v, if sub sees it; end is the
// revision of the last change of v's batch that sub sees.
func (e *Resources) replayOne(ctx context.Context, sub *Subscription, v *ChangeView, end int64) error {
	ch := v.Change
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
	ev, ok := EventFor(v, sub.spec.pred)
	if !ok {
		return nil
	}
	cur := e.Feed.Cursor(ch.Revision)
	b, err := e.Frames.Event(changeEvent(sub.spec, sub.Topic.Path, ev, cur, ch, end))
	if err != nil {
		return err
	}
	return sub.sink.PushWait(ctx, hub.NewEvent(b, sub.Key, cur.String(), ch.Revision))
}

func matchesTopic(t Topic, ch store.Change) bool {
	if ch.Resource.Collection != t.Collection {
		return false
	}
	if ch.Type == store.CollectionUpdated {
		return t.Kind == TopicCollection
	}
	return t.Kind == TopicCollection || ch.Resource.ID == t.ID
}

// streamSnapshot sends the state of a collection topic at revision at
// (the reply's cursor) page by page, each page pushed (at the sink's pace)
// before the next is read, so a snapshot holds one page in memory whatever
// the collection's size. A page is read at a later revision than at: a
// resource it shows unchanged since at (revision ≤ at) is sent as it was
// at at; one changed since is left out — its changes after at, which the
// replay after the synced frame sends (every change after at, once, in
// order), bring it in. So the snapshot never shows a resource newer or
// older than at, and a mirror built from it and the events after synced
// equals the store; while no write touches the topic, the snapshot is
// complete at at.
func (e *Resources) streamSnapshot(ctx context.Context, req Request, at int64, push func(store.Resource) error) error {
	opts := store.ListOptions{Collection: req.Topic.Collection, Selector: req.Selector, Filter: req.Filter, Limit: snapshotFirstPage, MaxScan: e.MaxScan}
	for {
		page, err := e.Store.ListResources(ctx, opts)
		if err != nil {
			return err
		}
		if len(page.Items) == 0 {
			return nil
		}
		last := page.Items[len(page.Items)-1].ID
		size := 0
		for i := range page.Items {
			size += len(page.Items[i].Data) + 64
			if page.Items[i].Revision <= at {
				if err := push(page.Items[i]); err != nil {
					return err
				}
			}
			page.Items[i] = store.Resource{} // release it before the next read
		}
		if !page.More {
			return nil
		}
		opts.After = last
		opts.Limit = min(snapshotMaxPage, max(1, snapshotPageBytes*len(page.Items)/max(1, size)))
	}
}

// snapshotOne sends the state of a single-resource topic at revision at,
// as streamSnapshot does: the resource if it is unchanged since at (and
// matches the selector); otherwise its changes after at follow synced.
func (e *Resources) snapshotOne(ctx context.Context, req Request, at int64, push func(store.Resource) error) error {
	r, err := e.Store.GetResource(ctx, req.Topic.Collection, req.Topic.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	if r.Revision <= at && req.Predicate().Matches(store.NewDoc(&r)) {
		return push(r)
	}
	return nil
}

// resyncError turns a compacted change log into resync-required.
func resyncError(err error) error {
	if errors.Is(err, store.ErrCompacted) {
		return store.Errorf(store.CodeCompacted, "the change log no longer reaches back to this cursor; reload the state and subscribe again")
	}
	return err
}
