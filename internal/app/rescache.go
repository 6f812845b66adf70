package app

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// The resource cache holds encoded resources (what GetResourceEncoded
// answers) keyed by (collection, id), each tagged with its revision. It
// never decides on its own that an entry is current: it learns of every
// write from two sources and drops what they make stale.
//
//   - The writes of this node: app invalidates the written keys as soon as
//     the store returns (putChecked, DeleteResource, Batch,
//     DeleteCollection, UpdateCollection), before the write is answered,
//     so a client reads its own writes on the node that took them.
//   - Every write of every node sharing the store: the change feed
//     (stream.Feed, tailing the store's change log) passes each change to
//     the cache (Changed) before broadcasting its events; a change with
//     revision R drops the key's entry when the entry's revision is below
//     R (an entry at R or later is already as new), a collection change
//     drops the collection's entries, and a gap in the feed (Lost) drops
//     everything.
//
// A miss reads the store and inserts what it read only when no
// invalidation reached the key's shard since the lookup (the shard's
// generation is unchanged): a read that raced a write can therefore never
// insert the state from before the write after the write's invalidation
// ran. And an entry is only served while the feed has caught up with the
// store within MaxLag (stream.Feed.CaughtUp): if the feed stalls (store
// unreachable, overload), reads go to the store rather than serving
// entries whose invalidations may be stuck. So a hit reflects every write
// committed on any node before the feed last caught up — normally
// milliseconds ago (a LISTEN/NOTIFY or in-process wake-up), never more
// than MaxLag.
//
// Memory is bounded by Bytes: it is split evenly between the shards, each
// entry is charged its body, its tag, its key and a fixed overhead, an
// entry above an eighth of a shard's share is not cached, and a full
// shard evicts by CLOCK (second chance: a hit sets the entry's reference
// bit, the sweep clears it once before evicting).

// ResourceCacheOptions configures the cache of encoded resources that
// GetResourceEncoded reads (see Options.ResourceCache).
type ResourceCacheOptions struct {
	// Bytes is the cache's memory budget; 0 turns the cache off. The cache
	// also needs Options.ResourceEncoder and the change feed
	// (Options.Realtime.Resources.Feed); without them it stays off.
	Bytes int64
	// MaxLag bounds how stale a hit may be: entries are served only while
	// the change feed caught up with the store at most MaxLag ago
	// (0: DefaultResourceCacheMaxLag).
	MaxLag time.Duration
}

// DefaultResourceCacheBytes is serve's default resource cache budget.
const DefaultResourceCacheBytes = 64 << 20

// DefaultResourceCacheMaxLag is the default ResourceCacheOptions.MaxLag:
// three times the feed's default poll interval.
const DefaultResourceCacheMaxLag = 3 * time.Second

// ResourceEncoder encodes a resource as GetResourceEncoded returns it
// (wire.Frames implements it).
type ResourceEncoder interface {
	// EncodeResource returns r's encoded representation and its entity
	// tag. Errors: r cannot be encoded.
	EncodeResource(r store.Resource) (body []byte, tag string, err error)
}

// EncodedResource is a resource encoded by the App's ResourceEncoder.
type EncodedResource struct {
	Revision int64
	// Body is shared with the cache and other readers: never modify it.
	Body []byte
	// Tag is the entity tag of this revision.
	Tag string
}

// ResourceCacheStats is a snapshot of the resource cache's counters.
type ResourceCacheStats struct {
	// Enabled reports whether the App has a resource cache.
	Enabled      bool
	Hits, Misses uint64
	Entries      int
	// Bytes is what the entries are charged; it never exceeds Budget.
	Bytes, Budget int64
}

// resEntryOverhead is what an entry is charged besides its body, tag and
// key: the entry itself and its map slot.
const resEntryOverhead = 192

// resMinShardBytes is the smallest share of the budget a shard gets
// (small budgets have fewer shards).
const resMinShardBytes = 64 << 10

const resMaxShards = 64

type resKey struct{ collection, id string }

type resEntry struct {
	key  resKey
	res  EncodedResource
	cost int64
	// ref is the CLOCK reference bit, set by hits (under the read lock).
	ref        atomic.Bool
	prev, next *resEntry
}

type resShard struct {
	mu sync.RWMutex
	m  map[resKey]*resEntry
	// ring is the sentinel of the CLOCK list: ring.next is the oldest
	// entry, ring.prev the newest.
	ring  resEntry
	bytes int64
	// gen counts the invalidations that reached the shard; a miss inserts
	// only if it is unchanged since the lookup.
	gen uint64
}

type resourceCache struct {
	shards   []resShard
	mask     uint64
	budget   int64
	shardMax int64
	entryMax int64
	seed     maphash.Seed
	// caughtUp is the feed's CaughtUp; maxLag bounds its age for a hit.
	caughtUp func() time.Time
	maxLag   time.Duration

	hits, misses atomic.Uint64
}

// newResourceCache returns a cache of at most budget bytes (> 0) whose
// hits are served while caughtUp is at most maxLag old.
func newResourceCache(budget int64, maxLag time.Duration, caughtUp func() time.Time) *resourceCache {
	n := 1
	for n < resMaxShards && budget/int64(n*2) >= resMinShardBytes {
		n *= 2
	}
	if maxLag <= 0 {
		maxLag = DefaultResourceCacheMaxLag
	}
	c := &resourceCache{shards: make([]resShard, n), mask: uint64(n - 1), budget: budget, shardMax: budget / int64(n),
		seed: maphash.MakeSeed(), caughtUp: caughtUp, maxLag: maxLag}
	c.entryMax = c.shardMax / 8
	for i := range c.shards {
		s := &c.shards[i]
		s.m = map[resKey]*resEntry{}
		s.ring.prev, s.ring.next = &s.ring, &s.ring
	}
	return c
}

func (c *resourceCache) shard(k resKey) *resShard {
	h := maphash.String(c.seed, k.collection) ^ (maphash.String(c.seed, k.id) * 0x9E3779B97F4A7C15)
	return &c.shards[h&c.mask]
}

// fresh reports whether entries may be served now.
func (c *resourceCache) fresh() bool {
	t := c.caughtUp()
	return !t.IsZero() && time.Since(t) <= c.maxLag
}

// get returns k's entry, or on a miss the shard generation that put needs.
func (c *resourceCache) get(k resKey) (EncodedResource, uint64, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.m[k]
	gen := s.gen
	var res EncodedResource
	if ok {
		res = e.res
		if !e.ref.Load() {
			e.ref.Store(true)
		}
	}
	s.mu.RUnlock()
	if ok && c.fresh() {
		c.hits.Add(1)
		return res, gen, true
	}
	c.misses.Add(1)
	return EncodedResource{}, gen, false
}

// put caches res for k, read from the store after get returned gen:
// unless an invalidation reached the shard since, the entry is too large,
// or the cache holds a newer revision of k.
func (c *resourceCache) put(k resKey, gen uint64, res EncodedResource) {
	cost := int64(cap(res.Body)+len(res.Tag)+len(k.collection)+len(k.id)) + resEntryOverhead
	if cost > c.entryMax {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen != gen {
		return
	}
	if old, ok := s.m[k]; ok {
		if old.res.Revision >= res.Revision {
			return
		}
		s.remove(old)
	}
	for s.bytes+cost > c.shardMax {
		s.evictOne()
	}
	// The key's strings may point into a larger request; keep copies.
	e := &resEntry{key: resKey{cloneString(k.collection), cloneString(k.id)}, res: res, cost: cost}
	s.m[e.key] = e
	e.prev, e.next = s.ring.prev, &s.ring
	s.ring.prev.next = e
	s.ring.prev = e
	s.bytes += cost
}

func cloneString(s string) string { return string([]byte(s)) }

// evictOne evicts the first entry of the CLOCK sweep without a second
// chance left. The shard must be non-empty and locked.
func (s *resShard) evictOne() {
	for {
		e := s.ring.next
		if e.ref.Load() {
			e.ref.Store(false)
			s.unlink(e)
			e.prev, e.next = s.ring.prev, &s.ring
			s.ring.prev.next = e
			s.ring.prev = e
			continue
		}
		s.remove(e)
		return
	}
}

func (s *resShard) unlink(e *resEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
}

func (s *resShard) remove(e *resEntry) {
	s.unlink(e)
	e.prev, e.next = nil, nil
	delete(s.m, e.key)
	s.bytes -= e.cost
}

// invalidate drops k's entry unless it is at revision rev or later
// (math.MaxInt64: whatever it holds), and makes every lookup of the
// shard that is still reading the store discard what it read.
func (c *resourceCache) invalidate(k resKey, rev int64) {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if e, ok := s.m[k]; ok && e.res.Revision < rev {
		s.remove(e)
	}
}

// invalidateCollection drops every entry of the collection.
func (c *resourceCache) invalidateCollection(name string) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen++
		for k, e := range s.m {
			if k.collection == name {
				s.remove(e)
			}
		}
		s.mu.Unlock()
	}
}

// reset drops every entry.
func (c *resourceCache) reset() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.gen++
		clear(s.m)
		s.ring.prev, s.ring.next = &s.ring, &s.ring
		s.bytes = 0
		s.mu.Unlock()
	}
}

// Changed implements stream.ChangeObserver: the feed's invalidation.
func (c *resourceCache) Changed(ch store.Change) {
	if ch.Type == store.CollectionUpdated {
		c.invalidateCollection(ch.Resource.Collection)
		return
	}
	c.invalidate(resKey{ch.Resource.Collection, ch.Resource.ID}, ch.Revision)
}

// Lost implements stream.ChangeObserver: the feed skipped changes.
func (c *resourceCache) Lost() { c.reset() }

func (c *resourceCache) stats() ResourceCacheStats {
	st := ResourceCacheStats{Enabled: true, Hits: c.hits.Load(), Misses: c.misses.Load(), Budget: c.budget}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		st.Entries += len(s.m)
		st.Bytes += s.bytes
		s.mu.RUnlock()
	}
	return st
}

// written invalidates k after this node wrote it: rev is the write's
// revision, or 0 when the write failed (its outcome may be unknown, so
// any entry goes).
func (c *resourceCache) written(k resKey, rev int64) {
	if c == nil {
		return
	}
	if rev == 0 {
		rev = math.MaxInt64
	}
	c.invalidate(k, rev)
}
