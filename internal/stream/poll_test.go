package stream

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// countingStore counts the change-log reads made through it.
type countingStore struct {
	store.Store
	reads atomic.Int64
}

func (s *countingStore) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	s.reads.Add(1)
	return s.Store.Changes(ctx, after, limit)
}

// TestPollWaitsOnItsTopic: a long-poll waiting on one collection does not
// read the change log for writes to another (it waits on its hub key, which
// the feed wakes only for its own events), and answers the first write to
// its own.
func TestPollWaitsOnItsTopic(t *testing.T) {
	e := newHandoffEnv(t)
	if _, err := e.st.CreateCollection(t.Context(), store.Collection{Name: "other", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: e.st}
	res := &Resources{Store: cs, Hub: e.res.Hub, Feed: e.feed, Frames: testFrames{}}
	topic, _ := ParseTopic("collections/c/resources")
	type answer struct {
		evs []Event
		err error
	}
	done := make(chan answer, 1)
	go func() {
		evs, _, err := res.Poll(t.Context(), topic, store.Predicate{}, nil, 10, 30*time.Second, nil)
		done <- answer{evs, err}
	}()
	waitFor(t, "the poll to wait on its key", func() bool { return len(e.res.Hub.Keys("collections/c/resources")) == 1 && cs.reads.Load() > 0 })
	before := cs.reads.Load()
	var last int64
	for i := range 50 {
		r, _, err := e.st.PutResource(t.Context(), store.Resource{Collection: "other", ID: fmt.Sprintf("o%d", i), Data: []byte(`{}`), Labels: map[string]string{},
			CreatedAt: time.Now(), UpdatedAt: time.Now()}, store.Precondition{})
		if err != nil {
			t.Fatal(err)
		}
		last = r.Revision
	}
	waitFor(t, "the feed to broadcast the other writes", func() bool { return e.feed.Last() >= last })
	if got := cs.reads.Load() - before; got != 0 {
		t.Fatalf("the waiting poll read the change log %d times for 50 writes to another collection", got)
	}
	rev := e.put(t, "mine", 1)
	a := <-done
	if a.err != nil || len(a.evs) != 1 || a.evs[0].Resource.Revision != rev {
		t.Fatalf("poll answered %+v, %v; want the write at %d", a.evs, a.err, rev)
	}
}
