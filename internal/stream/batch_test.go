package stream

// The batch marks of events on every path that reads the change log: the
// live feed, a replay and a long-poll tail. A batch of 100 changes (more
// than a replay page, and straddling a feed page) over two collections,
// seen by subscriptions that each see a different part of it.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/sqlite"
)

// recSink records every frame it is given.
var _ Sink = (*recSink)(nil)

type recSink struct {
	mu     sync.Mutex
	frames []testFrame
}

func (s *recSink) Push(m *hub.Message) bool {
	var f testFrame
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
	return true
}
func (s *recSink) PushWait(_ context.Context, m *hub.Message) error { s.Push(m); return nil }
func (s *recSink) Close()                                           {}
func (s *recSink) SlowConsumer()                                    {}
func (s *recSink) got() []testFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.frames)
}

const batchSize = 100

// batchEnv is a store with collections c and d and a feed that only
// moves when the test steps it.
type batchEnv struct {
	st   *sqlite.Store
	feed *Feed
	res  *Resources
}

func newBatchEnv(t *testing.T) *batchEnv {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, c := range []string{"c", "d"} {
		if _, err := st.CreateCollection(t.Context(), store.Collection{Name: c}); err != nil {
			t.Fatal(err)
		}
	}
	h := hub.New(hub.Options{})
	feed, err := NewFeed(t.Context(), st, h, FeedOptions{Frames: testFrames{}})
	if err != nil {
		t.Fatal(err)
	}
	return &batchEnv{st: st, feed: feed, res: &Resources{Store: st, Hub: h, Feed: feed, Frames: testFrames{}}}
}

// write makes singles single writes to d, then the batch: operation i
// puts c/r<i> for even i and d/r<i> for odd i, labelled env=prod for
// i < 10 and env=dev after; then one single write to c. It returns the
// batch's first revision.
func (e *batchEnv) write(t *testing.T, singles int) int64 {
	t.Helper()
	for i := range singles {
		if _, _, err := e.st.PutResource(t.Context(), store.Resource{Collection: "d", ID: fmt.Sprint("s", i), Data: json.RawMessage(`{}`)}, store.Precondition{}); err != nil {
			t.Fatal(err)
		}
	}
	ops := make([]store.BatchOp, batchSize)
	for i := range ops {
		env := "dev"
		if i < 10 {
			env = "prod"
		}
		ops[i].Resource = store.Resource{Collection: []string{"c", "d"}[i%2], ID: fmt.Sprint("r", i), Data: json.RawMessage(`{}`), Labels: map[string]string{"env": env}}
	}
	res, err := e.st.Batch(t.Context(), "b1", ops)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.st.PutResource(t.Context(), store.Resource{Collection: "c", ID: "after", Data: json.RawMessage(`{}`), Labels: map[string]string{"env": "prod"}}, store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	return res.FirstRevision()
}

// batchSub is one subscription of the test and what it must see of the
// batch: the operations whose changes reach it.
type batchSub struct {
	topic, labels string
	ops           []int
}

func batchSubs() []batchSub {
	var even, odd []int
	for i := range batchSize {
		if i%2 == 0 {
			even = append(even, i)
		} else {
			odd = append(odd, i)
		}
	}
	return []batchSub{
		// The batch's last change (operation 99) is in d: it never reaches c.
		{"collections/c/resources", "", even},
		{"collections/c/resources", "env=prod", []int{0, 2, 4, 6, 8}},
		{"collections/d/resources", "", odd},
		{"collections/c/resources/r4", "", []int{4}},
		{"collections/d/resources", "env=none", nil},
	}
}

// checkBatchEvents checks that frames are the batch's events for s (ending
// with End on the last one), then the single write after it when s sees it.
func checkBatchEvents(t *testing.T, s batchSub, first int64, frames []testFrame) {
	t.Helper()
	last := first + batchSize - 1
	var batch []testFrame
	for _, f := range frames {
		if f.B != nil {
			batch = append(batch, f)
		} else if f.Rev >= first && f.Rev <= last {
			t.Fatalf("%s?%s: event at %d carries no batch", s.topic, s.labels, f.Rev)
		}
	}
	if len(batch) != len(s.ops) {
		t.Fatalf("%s?%s: %d events of the batch, want %d: %+v", s.topic, s.labels, len(batch), len(s.ops), batch)
	}
	for k, i := range s.ops {
		f := batch[k]
		want := BatchMark{ID: "b1", LastRevision: last, End: k == len(s.ops)-1}
		if f.Rev != first+int64(i) || *f.B != want {
			t.Fatalf("%s?%s: event %d = revision %d %+v, want %d %+v", s.topic, s.labels, k, f.Rev, *f.B, first+int64(i), want)
		}
	}
}

func parseBatchSub(t *testing.T, s batchSub) (Topic, store.Selector) {
	t.Helper()
	topic, err := ParseTopic(s.topic)
	if err != nil {
		t.Fatal(err)
	}
	sel, err := store.ParseSelector(s.labels)
	if err != nil {
		t.Fatal(err)
	}
	return topic, sel
}

func TestBatchEvents(t *testing.T) {
	t.Run("Live", func(t *testing.T) {
		e := newBatchEnv(t)
		subs := batchSubs()
		sinks := make([]*recSink, len(subs))
		for i, s := range subs {
			topic, sel := parseBatchSub(t, s)
			sinks[i] = &recSink{}
			sub, _, run, err := e.res.Subscribe(t.Context(), Request{Topic: topic, Selector: sel}, sinks[i])
			if err != nil {
				t.Fatal(err)
			}
			if err := run(t.Context()); err != nil || !sub.Live() {
				t.Fatalf("run: %v (live %v)", err, sub.Live())
			}
		}
		// 450 singles: the feed's first page of 500 ends inside the batch.
		first := e.write(t, 450)
		head, _ := e.st.Revision(t.Context())
		for e.feed.Last() < head {
			if _, err := e.feed.step(t.Context()); err != nil {
				t.Fatal(err)
			}
			if l := e.feed.Last(); l > first && l < first+batchSize-1 {
				t.Fatalf("the feed stopped inside the batch, at %d", l)
			}
		}
		for i, s := range subs {
			checkBatchEvents(t, s, first, sinks[i].got())
		}
	})
	t.Run("Replay", func(t *testing.T) {
		e := newBatchEnv(t)
		from, _ := e.st.Revision(t.Context())
		first := e.write(t, 10)
		for _, s := range batchSubs() {
			topic, sel := parseBatchSub(t, s)
			since := e.feed.Cursor(from)
			sink := &recSink{}
			sub, _, run, err := e.res.Subscribe(t.Context(), Request{Topic: topic, Selector: sel, Since: &since}, sink)
			if err != nil {
				t.Fatal(err)
			}
			if err := run(t.Context()); err != nil {
				t.Fatal(err)
			}
			e.res.Unsubscribe(sub)
			checkBatchEvents(t, s, first, sink.got())
		}
	})
	t.Run("Poll", func(t *testing.T) {
		e := newBatchEnv(t)
		from, _ := e.st.Revision(t.Context())
		first := e.write(t, 0)
		last := first + batchSize - 1
		for _, s := range batchSubs() {
			topic, sel := parseBatchSub(t, s)
			for _, limit := range []int{1000, 3, 5} {
				cur := e.feed.Cursor(from)
				var got []testFrame
				for range 100 {
					evs, next, err := e.res.Tail(t.Context(), topic, store.Predicate{Selector: sel}, &cur, limit, time.Millisecond, nil)
					if err != nil {
						t.Fatal(err)
					}
					if len(evs) > limit {
						t.Fatalf("limit %d: %d events", limit, len(evs))
					}
					for _, ev := range evs {
						b, _ := testFrames{}.Event(ev)
						var f testFrame
						_ = json.Unmarshal(b, &f)
						got = append(got, f)
					}
					if n := len(evs); n == limit && evs[n-1].Batch != nil && evs[n-1].Batch.End && next.Pos != last {
						t.Fatalf("limit %d: the poll ended on the batch's last visible event but its cursor is at %d, not %d", limit, next.Pos, last)
					}
					if len(evs) == 0 {
						break
					}
					cur = next
				}
				checkBatchEvents(t, s, first, got)
			}
		}
	})
}
