package hub

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
)

// DefaultShards is the number of shards a Hub uses when Options.Shards is
// not positive.
const DefaultShards = 64

// Subscriber is one local consumer of broadcasts, typically a client
// connection. The hub identifies subscribers by interface equality, so
// implementations must be comparable; use a pointer type.
type Subscriber interface {
	// Deliver hands m to the subscriber, e.g. by pushing it onto the
	// connection's [Queue]. It must not block. It returns false if the
	// message was refused (the subscriber's queue overflowed or is closed);
	// the hub does not retry, and the subscriber is responsible for closing
	// itself and unsubscribing. Deliver is called concurrently from any
	// goroutine that broadcasts, and m must not be modified.
	Deliver(m *Message) bool

	// Close is called exactly once by [Hub.Shutdown] for every subscriber
	// that is subscribed to at least one key at that moment. It must not
	// block: it should start closing the connection (e.g. close its queue so
	// the writer flushes and sends "going away") and return. The subscriber
	// should then Unsubscribe from its keys, which is what Shutdown waits
	// for. Close may call Unsubscribe itself.
	Close()
}

// Laner is implemented by subscribers that must be delivered in one order
// with other subscribers: the subscriptions of one connection return the
// same lane, so that [Hub.Dispatch] hands them their messages in the order
// they were dispatched, whatever their keys. A subscriber that is not a
// Laner is ordered with the other subscribers of its key only.
type Laner interface {
	// Lane returns a number that stays the same for the subscriber's
	// lifetime; the hub reduces it modulo its lane count.
	Lane() uint64
}

// Options configures a Hub. The zero value is valid.
type Options struct {
	// Shards is the number of independently locked shards of the key table,
	// rounded up to a power of two; 0 means DefaultShards.
	Shards int
	// Lanes is the number of fan-out workers of [Hub.Dispatch], each
	// delivering to its own share of the subscribers, in parallel; 0 means
	// GOMAXPROCS, at most MaxLanes.
	Lanes int
	// LaneBytes bounds the bytes of messages waiting in one lane
	// (Dispatch waits for room beyond it: the broadcaster slows down
	// instead of the hub growing); 0 means DefaultLaneBytes.
	LaneBytes int
}

// MaxLanes is the most fan-out lanes a Hub runs.
const MaxLanes = 64

// DefaultLaneBytes is the default bound on the bytes waiting in one lane.
const DefaultLaneBytes = 16 << 20

// maxLaneJobs bounds the messages waiting in one lane, whatever their size.
const maxLaneJobs = 16384

// Stats is a snapshot of a Hub's counters, for export as metrics.
type Stats struct {
	// Broadcasts counts calls to Broadcast and Dispatch.
	Broadcasts uint64
	// Deliveries counts messages accepted by subscribers (Deliver returned true).
	Deliveries uint64
	// Overflows counts messages refused by subscribers (Deliver returned
	// false): overflowed or already-closed queues.
	Overflows uint64
	// Keys is the current number of keys with at least one subscriber.
	Keys int64
	// Subscribers is the current number of (key, subscriber) subscriptions.
	Subscribers int64
}

// Hub maps subscription keys to local subscribers and broadcasts messages to
// them. It is sharded by a hash of the key, with one RWMutex per shard; no
// global lock and no goroutine sits on the broadcast path, so broadcasts to
// different keys proceed in parallel and a broadcast never waits for a
// subscriber. All methods are safe for concurrent use.
type Hub struct {
	shards []keyShard   // by FNV-1a of the key
	topics []topicShard // by FNV-1a of the topic: topic → set of keys
	mask   uint32

	numKeys atomic.Int64
	numSubs atomic.Int64

	lanes []lane

	broadcasts atomic.Uint64
	deliveries atomic.Uint64
	overflows  atomic.Uint64

	closed    atomic.Bool
	done      chan struct{}
	doneOnce  sync.Once
	drained   chan struct{}
	drainOnce sync.Once
}

type keyShard struct {
	mu     sync.RWMutex
	keys   map[string]*entry
	closed bool // set by Shutdown under mu: no further Subscribe
	_      [64]byte
}

type topicShard struct {
	mu sync.RWMutex
	// topics maps a topic to its keys and each key's attribute.
	topics map[string]map[string]any
	_      [64]byte
}

// entry holds the subscribers of one key. subs is authoritative (each
// subscriber's lane); snap is a copy-on-write slice of the same
// subscribers that Broadcast and Dispatch read under the shard's read lock
// and iterate without any lock, and lanes the lane of each, index for
// index. Subscribe appends to both in place (past the length any reader
// has seen, so readers are unaffected); Unsubscribe only marks them stale,
// and the next Broadcast rebuilds them once, so a burst of unsubscribes
// from a hot key costs O(1) each. mask has bit l set when lane l serves a
// subscriber of the key.
type entry struct {
	subs  map[Subscriber]uint8
	snap  []Subscriber
	lanes []uint8
	mask  uint64
	stale bool
}

// New returns an empty Hub.
func New(opts Options) *Hub {
	n := opts.Shards
	if n <= 0 {
		n = DefaultShards
	}
	size := 1
	for size < n {
		size <<= 1
	}
	lanes := opts.Lanes
	if lanes <= 0 {
		lanes = runtime.GOMAXPROCS(0)
	}
	lanes = min(lanes, MaxLanes)
	laneBytes := opts.LaneBytes
	if laneBytes <= 0 {
		laneBytes = DefaultLaneBytes
	}
	h := &Hub{
		shards:  make([]keyShard, size),
		topics:  make([]topicShard, size),
		mask:    uint32(size - 1),
		lanes:   make([]lane, lanes),
		done:    make(chan struct{}),
		drained: make(chan struct{}),
	}
	for i := range h.lanes {
		l := &h.lanes[i]
		l.id, l.maxBytes = uint8(i), laneBytes
		l.room.L = &l.mu
		l.idle.L = &l.mu
	}
	for i := range h.shards {
		h.shards[i].keys = make(map[string]*entry)
		h.topics[i].topics = make(map[string]map[string]any)
	}
	return h
}

// fnv32a is FNV-1a over a string, without allocating.
func fnv32a(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}

// TopicOf returns the topic part of a key: everything before the first '?'.
func TopicOf(key string) string {
	if i := strings.IndexByte(key, '?'); i >= 0 {
		return key[:i]
	}
	return key
}

func (h *Hub) keyShard(key string) *keyShard { return &h.shards[fnv32a(key)&h.mask] }

func (h *Hub) topicShard(topic string) *topicShard { return &h.topics[fnv32a(topic)&h.mask] }

// Subscribe registers s for key and reports whether key had no subscriber
// before (so the caller may start an upstream subscription). Subscribing the
// same s to the same key twice is a no-op returning false. After Shutdown,
// Subscribe registers nothing and returns false; see [Hub.Done].
func (h *Hub) Subscribe(key string, s Subscriber) (first bool) {
	return h.SubscribeWith(key, nil, s)
}

// SubscribeWith is Subscribe, registering attr with key when key had no
// subscriber: [Hub.Entries] returns it with the key while the key has
// subscribers (e.g. the parsed selector the key was made from, so that
// broadcasters need not parse keys). Equal keys must have equal attributes.
func (h *Hub) SubscribeWith(key string, attr any, s Subscriber) (first bool) {
	sh := h.keyShard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false
	}
	e := sh.keys[key]
	if e == nil {
		e = &entry{subs: make(map[Subscriber]uint8, 1)}
		sh.keys[key] = e
		h.indexAdd(key, attr)
		h.numKeys.Add(1)
		first = true
	} else if _, dup := e.subs[s]; dup {
		return false
	}
	l := h.laneOf(key, s)
	e.subs[s] = l
	e.mask |= 1 << l
	if !e.stale {
		e.snap = append(e.snap, s)
		e.lanes = append(e.lanes, l)
	}
	h.numSubs.Add(1)
	return first
}

// Unsubscribe removes s from key and reports whether it was the key's last
// subscriber (so the caller may stop an upstream subscription). It returns
// false if s was not subscribed to key.
func (h *Hub) Unsubscribe(key string, s Subscriber) (last bool) {
	sh := h.keyShard(key)
	sh.mu.Lock()
	e := sh.keys[key]
	if e == nil {
		sh.mu.Unlock()
		return false
	}
	if _, ok := e.subs[s]; !ok {
		sh.mu.Unlock()
		return false
	}
	delete(e.subs, s)
	// Never shorten or overwrite snap in place: a concurrent Broadcast may
	// be iterating it. Drop it and let the next Broadcast rebuild it.
	e.snap, e.lanes = nil, nil
	if len(e.subs) == 0 {
		delete(sh.keys, key)
		h.indexRemove(key)
		h.numKeys.Add(-1)
		last = true
	} else {
		e.stale = true
	}
	sh.mu.Unlock()
	if h.numSubs.Add(-1) == 0 && h.closed.Load() {
		h.drainOnce.Do(func() { close(h.drained) })
	}
	return last
}

// indexAdd and indexRemove maintain the topic → keys index. They are called
// with the key's shard locked; the lock order is always key shard, then
// topic shard.
func (h *Hub) indexAdd(key string, attr any) {
	topic := TopicOf(key)
	ts := h.topicShard(topic)
	ts.mu.Lock()
	set := ts.topics[topic]
	if set == nil {
		set = make(map[string]any, 1)
		ts.topics[topic] = set
	}
	set[key] = attr
	ts.mu.Unlock()
}

func (h *Hub) indexRemove(key string) {
	topic := TopicOf(key)
	ts := h.topicShard(topic)
	ts.mu.Lock()
	if set := ts.topics[topic]; set != nil {
		delete(set, key)
		if len(set) == 0 {
			delete(ts.topics, topic)
		}
	}
	ts.mu.Unlock()
}

// Broadcast delivers m to every subscriber of key and returns how many
// accepted it. Every subscriber receives the same *Message. Subscribers are
// called without any hub lock held, from the calling goroutine; one that
// refuses (overflows) is counted and skipped, never retried or waited for.
// Subscribers that join or leave during a Broadcast may or may not receive m.
func (h *Hub) Broadcast(key string, m *Message) (delivered int) {
	subs, _, _ := h.snapshot(key)
	for _, s := range subs {
		if s.Deliver(m) {
			delivered++
		}
	}
	h.broadcasts.Add(1)
	if delivered > 0 {
		h.deliveries.Add(uint64(delivered))
	}
	if refused := len(subs) - delivered; refused > 0 {
		h.overflows.Add(uint64(refused))
	}
	return delivered
}

// snapshot returns the subscribers of key, the lane of each and the mask
// of their lanes, rebuilding a stale snapshot first.
func (h *Hub) snapshot(key string) ([]Subscriber, []uint8, uint64) {
	sh := h.keyShard(key)
	sh.mu.RLock()
	e := sh.keys[key]
	if e == nil {
		sh.mu.RUnlock()
		return nil, nil, 0
	}
	subs, lanes, mask, stale := e.snap, e.lanes, e.mask, e.stale
	sh.mu.RUnlock()
	if stale {
		sh.mu.Lock()
		subs, lanes, mask = e.rebuild()
		sh.mu.Unlock()
	}
	return subs, lanes, mask
}

// rebuild rebuilds e's snapshot if it is stale and returns it. The shard
// must be write-locked. The new slices get spare capacity so that the next
// few Subscribes append in place.
func (e *entry) rebuild() ([]Subscriber, []uint8, uint64) {
	if e.stale {
		n := len(e.subs) + len(e.subs)/4 + 1
		snap, lanes := make([]Subscriber, 0, n), make([]uint8, 0, n)
		var mask uint64
		for s, l := range e.subs {
			snap = append(snap, s)
			lanes = append(lanes, l)
			mask |= 1 << l
		}
		e.snap, e.lanes, e.mask, e.stale = snap, lanes, mask, false
	}
	return e.snap, e.lanes, e.mask
}

// Keys returns the keys with at least one subscriber whose topic part (see
// [TopicOf]) equals topic, in no particular order. It costs O(keys of that
// topic), not a scan of the hub.
func (h *Hub) Keys(topic string) []string {
	es := h.Entries(topic)
	if len(es) == 0 {
		return nil
	}
	keys := make([]string, len(es))
	for i, e := range es {
		keys[i] = e.Key
	}
	return keys
}

// Entry is a key with subscribers and the attribute it was registered
// with (see [Hub.SubscribeWith]).
type Entry struct {
	Key  string
	Attr any
}

// Entries returns the keys of topic with their attributes, like
// [Hub.Keys].
func (h *Hub) Entries(topic string) []Entry {
	ts := h.topicShard(topic)
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	set := ts.topics[topic]
	if len(set) == 0 {
		return nil
	}
	out := make([]Entry, 0, len(set))
	for k, a := range set {
		out = append(out, Entry{Key: k, Attr: a})
	}
	return out
}

// NumSubscribers returns the number of subscriptions, i.e. (key, subscriber)
// pairs; a subscriber subscribed to three keys counts three times.
func (h *Hub) NumSubscribers() int { return int(h.numSubs.Load()) }

// NumKeys returns the number of keys with at least one subscriber.
func (h *Hub) NumKeys() int { return int(h.numKeys.Load()) }

// Stats returns the hub's counters. Each field is read atomically; the
// fields are not a consistent snapshot of one instant.
func (h *Hub) Stats() Stats {
	return Stats{
		Broadcasts:  h.broadcasts.Load(),
		Deliveries:  h.deliveries.Load(),
		Overflows:   h.overflows.Load(),
		Keys:        h.numKeys.Load(),
		Subscribers: h.numSubs.Load(),
	}
}

// Done returns a channel that is closed when Shutdown starts. Transports
// should stop accepting connections and close those that hold no
// subscription (the hub cannot reach them).
func (h *Hub) Done() <-chan struct{} { return h.done }

// Shutdown stops the hub from accepting subscriptions, calls Close exactly
// once on every subscriber subscribed to at least one key, and waits until
// all of them have unsubscribed or ctx is done, returning ctx.Err() in the
// latter case. Broadcasts keep reaching the remaining subscribers while
// Shutdown waits. Calling Shutdown again closes no subscriber twice; it only
// waits again.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.doneOnce.Do(func() { close(h.done) })
	var subs map[Subscriber]struct{}
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		if !sh.closed {
			sh.closed = true
			for _, e := range sh.keys {
				for s := range e.subs {
					if subs == nil {
						subs = make(map[Subscriber]struct{})
					}
					subs[s] = struct{}{}
				}
			}
		}
		sh.mu.Unlock()
	}
	// What was dispatched before Shutdown reaches the subscribers before
	// they are told to close (bounded by ctx).
	flushed := h.Flush(ctx)
	// From here on the number of subscriptions can only fall. Unsubscribe
	// decrements the count before it reads closed; we set closed before we
	// read the count: whichever comes second sees the other and signals.
	h.closed.Store(true)
	for s := range subs {
		s.Close()
	}
	if h.numSubs.Load() == 0 {
		h.drainOnce.Do(func() { close(h.drained) })
	}
	if flushed != nil {
		return flushed
	}
	select {
	case <-h.drained:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
