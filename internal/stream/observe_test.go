package stream

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
)

// changeLog is a ChangeObserver that records what it is told.
type changeLog struct {
	mu   sync.Mutex
	revs []int64
	lost int
}

func (l *changeLog) Changed(ch store.Change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.revs = append(l.revs, ch.Revision)
}

func (l *changeLog) Lost() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lost++
}

// catchUp steps the feed until it has delivered the store's head.
func catchUp(t *testing.T, e *batchEnv) int64 {
	t.Helper()
	head, err := e.st.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for e.feed.Last() < head {
		if _, err := e.feed.step(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	return head
}

// TestFeedObservers: an observer is told every change once, in revision
// order, batches included; CaughtUp is set once a read reaches the log's
// end; a compaction the feed skips is reported as Lost.
func TestFeedObservers(t *testing.T) {
	e := newBatchEnv(t)
	var log changeLog
	e.feed.Observe(&log)
	if !e.feed.CaughtUp().IsZero() {
		t.Fatal("CaughtUp set before the feed read the log")
	}
	from := e.feed.Last()
	e.write(t, 3)
	head := catchUp(t, e)
	if e.feed.CaughtUp().IsZero() {
		t.Fatal("CaughtUp not set after the feed read the log to its end")
	}
	if len(log.revs) != int(head-from) {
		t.Fatalf("observer told %d changes, want %d", len(log.revs), head-from)
	}
	for i, rev := range log.revs {
		if rev != from+int64(i)+1 {
			t.Fatalf("change %d is revision %d, want %d (in order, no gap)", i, rev, from+int64(i)+1)
		}
	}

	// The change log is compacted past the feed: the feed skips ahead and
	// says so.
	last := e.feed.Last()
	for i := range 3 {
		if _, _, err := e.st.PutResource(t.Context(), store.Resource{Collection: "c", ID: "x", Data: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))}, store.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	newHead, _ := e.st.Revision(t.Context())
	if err := e.st.Compact(t.Context(), newHead-1); err != nil {
		t.Fatal(err)
	}
	if _, err := e.feed.step(t.Context()); err != nil {
		t.Fatal(err)
	}
	if log.lost != 1 || e.feed.Last() != newHead {
		t.Fatalf("after a compaction past the feed (at %d): lost %d, feed at %d, want lost 1 at %d", last, log.lost, e.feed.Last(), newHead)
	}
}

// revRecorder is a hub subscriber that records the revisions it is given,
// slowly, so that the hub's lanes are still busy when the feed steps on.
type revRecorder struct {
	mu   sync.Mutex
	revs []int64
}

func (r *revRecorder) Deliver(m *hub.Message) bool {
	time.Sleep(100 * time.Microsecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.revs = append(r.revs, m.Seq())
	return true
}

func (r *revRecorder) Close() {}

// TestFeedBroadcastsOnce: while the hub's lanes still deliver, the feed
// reads on from where it read, not from Last (which trails until the
// lanes delivered): every change is broadcast exactly once, in order,
// and Last reaches the head only once the subscriber has it.
func TestFeedBroadcastsOnce(t *testing.T) {
	e := newBatchEnv(t)
	rec := &revRecorder{}
	e.res.Hub.Subscribe(CollectionTopic("d"), rec)
	from := e.feed.Last()
	for i := range 40 {
		if _, _, err := e.st.PutResource(t.Context(), store.Resource{Collection: "d", ID: fmt.Sprint("r", i), Data: json.RawMessage(`{}`)}, store.Precondition{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.feed.step(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	head := catchUp(t, e)
	rec.mu.Lock()
	got := append([]int64(nil), rec.revs...)
	rec.mu.Unlock()
	if len(got) != int(head-from) {
		t.Fatalf("subscriber got %d changes once Last reached %d, want %d: %v", len(got), head, head-from, got)
	}
	for i, rev := range got {
		if rev != from+1+int64(i) {
			t.Fatalf("change %d has revision %d, want %d (duplicate or disorder): %v", i, rev, from+1+int64(i), got)
		}
	}
}
