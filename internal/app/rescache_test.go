package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// alwaysCaughtUp is a feed that caught up just now.
func alwaysCaughtUp() time.Time { return time.Now() }

func encoded(rev int64, body string) EncodedResource {
	return EncodedResource{Revision: rev, Body: []byte(body), Tag: strconv.Quote(strconv.FormatInt(rev, 10))}
}

// cachePut is a lookup (a miss) followed by the insert of what the store
// would have answered.
func cachePut(c *resourceCache, k resKey, res EncodedResource) {
	_, gen, _ := c.get(k)
	c.put(k, gen, res)
}

func cached(c *resourceCache, k resKey) (EncodedResource, bool) {
	res, _, ok := c.get(k)
	return res, ok
}

func TestResourceCache(t *testing.T) {
	k := resKey{"notes", "n1"}
	t.Run("Hit", func(t *testing.T) {
		c := newResourceCache(1<<20, 0, alwaysCaughtUp)
		if _, ok := cached(c, k); ok {
			t.Fatal("hit in an empty cache")
		}
		cachePut(c, k, encoded(3, `{"a":1}`))
		res, ok := cached(c, k)
		if !ok || res.Revision != 3 || string(res.Body) != `{"a":1}` || res.Tag != `"3"` {
			t.Fatalf("got %+v %v", res, ok)
		}
		if st := c.stats(); st.Hits != 1 || st.Misses != 2 || st.Entries != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
	t.Run("RevisionTagging", func(t *testing.T) {
		c := newResourceCache(1<<20, 0, alwaysCaughtUp)
		cachePut(c, k, encoded(5, "v5"))
		// A change at the entry's revision or before it (an older write
		// the feed reports late, or this node's own write reported again)
		// leaves it.
		for _, rev := range []int64{4, 5} {
			c.Changed(store.Change{Revision: rev, Type: store.Updated, Resource: store.Resource{Collection: "notes", ID: "n1"}})
			if res, ok := cached(c, k); !ok || res.Revision != 5 {
				t.Fatalf("after a change at %d: %+v %v", rev, res, ok)
			}
		}
		// A newer revision drops it: it is never served again.
		c.Changed(store.Change{Revision: 6, Type: store.Updated, Resource: store.Resource{Collection: "notes", ID: "n1"}})
		if res, ok := cached(c, k); ok {
			t.Fatalf("stale entry served after the feed reported revision 6: %+v", res)
		}
		// An older state never replaces a newer one.
		cachePut(c, k, encoded(7, "v7"))
		cachePut(c, k, encoded(6, "v6"))
		if res, _ := cached(c, k); res.Revision != 7 {
			t.Fatalf("revision %d replaced revision 7", res.Revision)
		}
	})
	t.Run("ReadRacingAWrite", func(t *testing.T) {
		c := newResourceCache(1<<20, 0, alwaysCaughtUp)
		// A miss looks up, reads the store (revision 1) … meanwhile a write
		// at revision 2 commits and is invalidated … then the miss inserts.
		_, gen, _ := c.get(k)
		c.written(k, 2)
		c.put(k, gen, encoded(1, "v1"))
		if res, ok := cached(c, k); ok {
			t.Fatalf("the state read before the write was cached after its invalidation: %+v", res)
		}
		// The same through the feed.
		_, gen, _ = c.get(k)
		c.Changed(store.Change{Revision: 3, Type: store.Deleted, Resource: store.Resource{Collection: "notes", ID: "n1"}})
		c.put(k, gen, encoded(2, "v2"))
		if _, ok := cached(c, k); ok {
			t.Fatal("a read from before a deletion was cached after it")
		}
	})
	t.Run("Invalidation", func(t *testing.T) {
		c := newResourceCache(1<<20, 0, alwaysCaughtUp)
		other := resKey{"other", "n1"}
		cachePut(c, k, encoded(1, "a"))
		cachePut(c, other, encoded(2, "b"))
		c.Changed(store.Change{Revision: 3, Type: store.Deleted, Resource: store.Resource{Collection: "notes", ID: "n1"}})
		if _, ok := cached(c, k); ok {
			t.Fatal("deleted resource still cached")
		}
		cachePut(c, k, encoded(4, "a"))
		c.Changed(store.Change{Revision: 5, Type: store.CollectionUpdated, Resource: store.Resource{Collection: "notes"}})
		if _, ok := cached(c, k); ok {
			t.Fatal("entry kept across a change of its collection")
		}
		if _, ok := cached(c, other); !ok {
			t.Fatal("a change of collection notes dropped an entry of another collection")
		}
		c.written(other, 0) // a failed write: whatever it holds goes
		if _, ok := cached(c, other); ok {
			t.Fatal("entry kept after a write of unknown outcome")
		}
		cachePut(c, k, encoded(6, "a"))
		c.Lost()
		if st := c.stats(); st.Entries != 0 || st.Bytes != 0 {
			t.Fatalf("entries left after the feed lost changes: %+v", st)
		}
	})
	t.Run("FeedBehind", func(t *testing.T) {
		var at atomic.Int64
		at.Store(time.Now().UnixNano())
		c := newResourceCache(1<<20, time.Second, func() time.Time { return time.Unix(0, at.Load()) })
		cachePut(c, k, encoded(1, "a"))
		if _, ok := cached(c, k); !ok {
			t.Fatal("no hit while the feed is current")
		}
		at.Store(time.Now().Add(-2 * time.Second).UnixNano())
		if _, ok := cached(c, k); ok {
			t.Fatal("hit while the feed has not caught up for longer than MaxLag")
		}
		c2 := newResourceCache(1<<20, time.Second, func() time.Time { return time.Time{} })
		cachePut(c2, k, encoded(1, "a"))
		if _, ok := cached(c2, k); ok {
			t.Fatal("hit before the feed ever caught up")
		}
	})
	t.Run("Budget", func(t *testing.T) {
		const budget = 256 << 10
		c := newResourceCache(budget, 0, alwaysCaughtUp)
		body := strings.Repeat("x", 900)
		for i := range 5000 {
			cachePut(c, resKey{"notes", fmt.Sprint("r", i)}, encoded(int64(i+1), body))
			if st := c.stats(); st.Bytes > budget {
				t.Fatalf("after %d inserts the cache holds %d bytes, over its budget of %d", i+1, st.Bytes, budget)
			}
		}
		st := c.stats()
		if st.Entries < 100 || st.Bytes < budget/2 {
			t.Fatalf("the cache keeps too little of its budget: %+v", st)
		}
		huge := resKey{"notes", "huge"}
		cachePut(c, huge, encoded(1, strings.Repeat("y", int(c.entryMax))))
		if _, ok := cached(c, huge); ok {
			t.Fatal("an entry over the size limit was cached")
		}
	})
	t.Run("SecondChance", func(t *testing.T) {
		c := newResourceCache(resMinShardBytes, 0, alwaysCaughtUp) // one shard
		if len(c.shards) != 1 {
			t.Fatalf("%d shards", len(c.shards))
		}
		hot := resKey{"notes", "hot"}
		cachePut(c, hot, encoded(1, "h"))
		for i := range 2000 {
			if _, ok := cached(c, hot); !ok {
				t.Fatalf("the entry read between every insert was evicted after %d inserts", i)
			}
			cachePut(c, resKey{"notes", fmt.Sprint("r", i)}, encoded(int64(i+2), strings.Repeat("x", 500)))
		}
	})
	t.Run("ConcurrentReadersAndWriters", func(t *testing.T) {
		c := newResourceCache(64<<10, 0, alwaysCaughtUp)
		// Each key has a "store" (its current revision); writers bump it
		// and invalidate, readers read it and insert. Whatever interleaving,
		// a hit never returns a revision older than one whose invalidation
		// completed before the lookup started.
		const keys = 16
		var (
			storeRev [keys]atomic.Int64
			done     [keys]atomic.Int64 // newest revision whose invalidation completed
			mu       [keys]sync.Mutex   // the store's write lock of each key
			wg       sync.WaitGroup
			errs     = make(chan error, 1)
		)
		stop := time.Now().Add(300 * time.Millisecond)
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(stop); i++ {
					n := (i*7 + w) % keys
					mu[n].Lock()
					rev := storeRev[n].Add(1)
					mu[n].Unlock()
					key := resKey{"c", strconv.Itoa(n)}
					if i%2 == 0 {
						c.written(key, rev)
					} else {
						c.Changed(store.Change{Revision: rev, Type: store.Updated, Resource: store.Resource{Collection: "c", ID: key.id}})
					}
					for {
						d := done[n].Load()
						if d >= rev || done[n].CompareAndSwap(d, rev) {
							break
						}
					}
				}
			}()
		}
		for r := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; time.Now().Before(stop); i++ {
					n := (i*5 + r) % keys
					key := resKey{"c", strconv.Itoa(n)}
					floor := done[n].Load()
					res, gen, ok := c.get(key)
					if ok && res.Revision < floor {
						select {
						case errs <- fmt.Errorf("key %d: hit at revision %d after revision %d was invalidated", n, res.Revision, floor):
						default:
						}
						return
					}
					if !ok {
						rev := storeRev[n].Load()
						c.put(key, gen, encoded(rev, strings.Repeat("z", i%300)))
					}
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			t.Fatal(err)
		default:
		}
		if st := c.stats(); st.Bytes > 64<<10 {
			t.Fatalf("over budget: %+v", st)
		}
	})
}

// resourceJSON is a plain resource encoding (the API's is the edge's,
// internal/wire).
type resourceJSON struct{}

func (resourceJSON) EncodeResource(r store.Resource) ([]byte, string, error) {
	b, err := json.Marshal(map[string]any{"id": r.ID, "data": r.Data, "revision": r.Revision})
	return b, strconv.Quote(strconv.FormatInt(r.Revision, 10)), err
}

// newCachedApp is newRealtimeApp with the resource cache on and its
// change feed running.
func newCachedApp(t *testing.T) (*App, *stream.Feed) {
	t.Helper()
	a, feed := newRealtimeAppWith(t, func(o *Options) {
		o.ResourceEncoder = resourceJSON{}
		o.ResourceCache = ResourceCacheOptions{Bytes: 1 << 20}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = feed.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the feed to catch up", func() bool { return !feed.CaughtUp().IsZero() })
	return a, feed
}

// waitFor polls cond until it holds (failing after 10 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func getEncoded(t *testing.T, a *App, p auth.Principal, id string) (EncodedResource, error) {
	t.Helper()
	return a.GetResourceEncoded(t.Context(), p, "notes", id)
}

func mustBody(t *testing.T, a *App, id string, rev int64, data string) {
	t.Helper()
	res, err := getEncoded(t, a, everyone, id)
	if err != nil {
		t.Fatalf("GET %s: %v", id, err)
	}
	if res.Revision != rev || !strings.Contains(string(res.Body), data) || res.Tag != strconv.Quote(strconv.FormatInt(rev, 10)) {
		t.Fatalf("GET %s = revision %d %s %s, want revision %d with %s", id, res.Revision, res.Body, res.Tag, rev, data)
	}
}

func TestGetResourceEncodedCache(t *testing.T) {
	ctx := context.Background()
	a, feed := newCachedApp(t)
	put := func(id, data string) store.Resource {
		t.Helper()
		r, _, err := a.ReplaceResource(ctx, everyone, "notes", id, json.RawMessage(data), nil, store.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		// The feed invalidates the write's key again when it reads the
		// change; a miss racing that invalidation does not store what it
		// read, so the hit counts below wait for it.
		waitFor(t, "the feed to read the write", func() bool { return feed.Last() >= r.Revision })
		return r
	}
	r1 := put("n1", `{"v":1}`)
	mustBody(t, a, "n1", r1.Revision, `{"v":1}`)
	before := a.ResourceCacheStats()
	mustBody(t, a, "n1", r1.Revision, `{"v":1}`)
	if after := a.ResourceCacheStats(); !after.Enabled || after.Hits != before.Hits+1 || after.Entries != 1 {
		t.Fatalf("second GET was not a hit: %+v then %+v", before, after)
	}

	t.Run("Authorization", func(t *testing.T) {
		// Cached or not, the caller is authorised.
		if _, err := getEncoded(t, a, principal(auth.KindJWT, "eve", "read:collections/other/**"), "n1"); !errors.Is(err, auth.ErrInsufficientScope) {
			t.Fatalf("err = %v, want insufficient scope", err)
		}
	})
	t.Run("Put", func(t *testing.T) {
		r := put("n1", `{"v":2}`)
		mustBody(t, a, "n1", r.Revision, `{"v":2}`)
	})
	t.Run("Patch", func(t *testing.T) {
		mustBody(t, a, "n1", a.mustRev(t, "n1"), `{"v":2}`)
		r, err := a.PatchResource(ctx, everyone, "notes", "n1", json.RawMessage(`{"data":{"w":3}}`), 0)
		if err != nil {
			t.Fatal(err)
		}
		mustBody(t, a, "n1", r.Revision, `"w":3`)
	})
	t.Run("Batch", func(t *testing.T) {
		mustBody(t, a, "n1", a.mustRev(t, "n1"), `"w":3`)
		res, err := a.Batch(ctx, everyone, []BatchOp{{Kind: BatchPut, Collection: "notes", ID: "n1", Data: json.RawMessage(`{"b":1}`)}})
		if err != nil {
			t.Fatal(err)
		}
		mustBody(t, a, "n1", res.LastRevision, `{"b":1}`)
	})
	t.Run("Delete", func(t *testing.T) {
		mustBody(t, a, "n1", a.mustRev(t, "n1"), `{"b":1}`)
		if _, err := a.DeleteResource(ctx, everyone, "notes", "n1", store.Precondition{}); err != nil {
			t.Fatal(err)
		}
		if _, err := getEncoded(t, a, everyone, "n1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GET after DELETE: %v, want not found", err)
		}
	})
	t.Run("CollectionDelete", func(t *testing.T) {
		r := put("n2", `{"v":1}`)
		mustBody(t, a, "n2", r.Revision, `{"v":1}`)
		mustBody(t, a, "n2", r.Revision, `{"v":1}`)
		if err := a.DeleteCollection(ctx, everyone, "notes"); err != nil {
			t.Fatal(err)
		}
		if _, err := getEncoded(t, a, everyone, "n2"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GET after the collection's deletion: %v, want not found", err)
		}
		if _, err := a.CreateCollection(ctx, everyone, "notes", nil); err != nil {
			t.Fatal(err)
		}
		r = put("n2", `{"v":"again"}`)
		mustBody(t, a, "n2", r.Revision, `"again"`)
	})
	t.Run("CollectionUpdate", func(t *testing.T) {
		mustBody(t, a, "n2", a.mustRev(t, "n2"), `"again"`)
		if _, err := a.UpdateCollection(ctx, everyone, "notes", json.RawMessage(`{"description":"d"}`), UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		if st := a.ResourceCacheStats(); st.Entries != 0 {
			t.Fatalf("entries of notes kept across its update: %+v", st)
		}
	})
	t.Run("WriteOfAnotherNode", func(t *testing.T) {
		// A write this App did not make (another node sharing the store)
		// reaches the cache through the change feed only.
		r := put("n3", `{"v":1}`)
		mustBody(t, a, "n3", r.Revision, `{"v":1}`)
		mustBody(t, a, "n3", r.Revision, `{"v":1}`)
		next, _, err := a.store.PutResource(ctx, store.Resource{Collection: "notes", ID: "n3", Data: json.RawMessage(`{"v":2}`), Labels: map[string]string{}}, store.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the feed to deliver the write", func() bool { return feed.Last() >= next.Revision })
		mustBody(t, a, "n3", next.Revision, `{"v":2}`)
		gone, err := a.store.DeleteResource(ctx, "notes", "n3", store.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the feed to deliver the deletion", func() bool { return feed.Last() >= gone.Revision })
		if _, err := getEncoded(t, a, everyone, "n3"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("GET after another node's DELETE: %v, want not found", err)
		}
	})
}

// mustRev is the current revision of a resource of notes.
func (a *App) mustRev(t *testing.T, id string) int64 {
	t.Helper()
	r, err := a.store.GetResource(t.Context(), "notes", id)
	if err != nil {
		t.Fatal(err)
	}
	return r.Revision
}

func TestGetResourceEncodedWithoutCache(t *testing.T) {
	a, _ := newRealtimeAppWith(t, func(o *Options) { o.ResourceEncoder = resourceJSON{} })
	ctx := context.Background()
	r, _, err := a.ReplaceResource(ctx, everyone, "notes", "n1", json.RawMessage(`{"v":1}`), nil, store.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	mustBody(t, a, "n1", r.Revision, `{"v":1}`)
	if st := a.ResourceCacheStats(); st.Enabled {
		t.Fatalf("a cache without ResourceCache.Bytes: %+v", st)
	}
	b, _ := newRealtimeApp(t)
	if _, err := b.GetResourceEncoded(ctx, everyone, "notes", "n1"); err == nil {
		t.Fatal("GetResourceEncoded without a ResourceEncoder did not fail")
	}
}
