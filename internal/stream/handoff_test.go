package stream

// The no-loss hand-off of a subscription from its replay or snapshot to
// live events, with writes landing while the replay is held up: a real
// SQLite store, the real hub and feed, and a sink that holds the first
// replayed frame until the test lets it through.

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/sqlite"
)

// testFrames encodes what the hand-off checks need: the frame type, the
// event name, the resource and its revision.
type testFrames struct{}

type testFrame struct {
	T    string          `json:"t"`
	Name string          `json:"name,omitempty"`
	ID   string          `json:"id,omitempty"`
	Rev  int64           `json:"rev,omitempty"`
	Data json.RawMessage `json:"data,omitempty"`
	B    *BatchMark      `json:"b,omitempty"`
}

func (testFrames) Event(ev Event) ([]byte, error) {
	f := testFrame{T: "event", Name: ev.Name, B: ev.Batch}
	if ev.Resource != nil {
		f.ID, f.Rev, f.Data = ev.Resource.ID, ev.Resource.Revision, ev.Resource.Data
	}
	if ev.Collection != nil {
		f.Rev = ev.Collection.Revision
	}
	return json.Marshal(f)
}
func (testFrames) Synced(topic, labels, filter string, cur Cursor) []byte {
	b, _ := json.Marshal(testFrame{T: "synced", Rev: cur.Pos})
	return b
}
func (testFrames) Presence(string, string, []broker.Member) []byte { return []byte(`{"t":"presence"}`) }
func (testFrames) Reset(string, error) []byte                      { return []byte(`{"t":"error"}`) }

// gatedSink records every frame; its first PushWait waits for release
// (and says so on held), so writes can land while a replay is under way.
type gatedSink struct {
	held    chan struct{}
	release chan struct{}
	once    sync.Once

	mu     sync.Mutex
	frames []testFrame
	slow   bool
}

func newGatedSink() *gatedSink {
	return &gatedSink{held: make(chan struct{}), release: make(chan struct{})}
}

func (s *gatedSink) record(m *hub.Message) {
	var f testFrame
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
}

func (s *gatedSink) Push(m *hub.Message) bool { s.record(m); return true }

func (s *gatedSink) PushWait(ctx context.Context, m *hub.Message) error {
	first := false
	s.once.Do(func() { first = true })
	if first {
		close(s.held)
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.record(m)
	return nil
}

func (s *gatedSink) Close() {}
func (s *gatedSink) SlowConsumer() {
	s.mu.Lock()
	s.slow = true
	s.mu.Unlock()
}

func (s *gatedSink) got() []testFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]testFrame(nil), s.frames...)
}

// waitFor waits, without sleeping blindly, until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

type handoffEnv struct {
	st   *sqlite.Store
	feed *Feed
	res  *Resources
}

func newHandoffEnv(t *testing.T) *handoffEnv {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := hub.New(hub.Options{})
	feed, err := NewFeed(ctx, st, h, FeedOptions{Frames: testFrames{}, Poll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = feed.Run(fctx) }()
	t.Cleanup(func() { stop(); <-done })
	if _, err := st.CreateCollection(ctx, store.Collection{Name: "c", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return &handoffEnv{st: st, feed: feed, res: &Resources{Store: st, Hub: h, Feed: feed, Frames: testFrames{}}}
}

func (e *handoffEnv) put(t *testing.T, id string, n int) int64 {
	t.Helper()
	r, _, err := e.st.PutResource(t.Context(), store.Resource{Collection: "c", ID: id, Data: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		Labels: map[string]string{}, CreatedAt: time.Now(), UpdatedAt: time.Now()}, store.Precondition{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Revision
}

func (e *handoffEnv) del(t *testing.T, id string) int64 {
	t.Helper()
	if _, err := e.st.DeleteResource(t.Context(), "c", id, store.Precondition{}); err != nil {
		t.Fatal(err)
	}
	rev, err := e.st.Revision(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// eventRevs are the revisions of the change log after `after`.
func (e *handoffEnv) eventRevs(t *testing.T, after int64) []int64 {
	t.Helper()
	chs, err := e.st.Changes(t.Context(), after, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, ch := range chs {
		out = append(out, ch.Revision)
	}
	return out
}

// TestHandoffReplayToLive resumes a subscription from a cursor while its
// replay is held up and writes land; it must receive every change after
// the cursor exactly once, in order, then live events.
func TestHandoffReplayToLive(t *testing.T) {
	e := newHandoffEnv(t)
	from := e.put(t, "r0", 0)
	for i := 1; i <= 100; i++ { // more than one replay page
		e.put(t, fmt.Sprintf("r%d", i%7), i)
	}
	sink := newGatedSink()
	since := e.feed.Cursor(from)
	topic, _ := ParseTopic("collections/c/resources")
	sub, res, run, err := e.res.Subscribe(t.Context(), Request{Topic: topic, Since: &since}, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer e.res.Unsubscribe(sub)
	if res.Start != StartSince || res.Cursor != since {
		t.Fatalf("result %+v", res)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- run(t.Context()) }()
	<-sink.held // the replay is under way and held at its first frame
	var last int64
	for i := range 50 {
		last = e.put(t, fmt.Sprintf("w%d", i%5), 1000+i)
	}
	waitFor(t, "the feed to broadcast the writes", func() bool { return e.feed.Last() >= last })
	if sub.Live() {
		t.Fatal("live while its replay was held")
	}
	close(sink.release)
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if !sub.Live() {
		t.Fatal("not live after its replay")
	}
	after := e.put(t, "z", 1) // delivered live
	want := e.eventRevs(t, from)
	if want[len(want)-1] != after {
		t.Fatalf("change log ends at %d, want %d", want[len(want)-1], after)
	}
	waitFor(t, "the live event", func() bool { return len(sink.got()) >= len(want) })
	var got []int64
	for _, f := range sink.got() {
		got = append(got, f.Rev)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("received revisions\n%v\nwant every change after %d once, in order:\n%v", got, from, want)
	}
}

// TestHandoffSnapshotToLive subscribes with a snapshot of a collection
// larger than one snapshot page while writes (updates, a create, a
// delete) land during it; the snapshot, synced and the events after it
// must rebuild exactly the store's state, each event once, in order.
func TestHandoffSnapshotToLive(t *testing.T) {
	e := newHandoffEnv(t)
	for i := range 3*snapshotFirstPage + 5 {
		e.put(t, fmt.Sprintf("r%03d", i), i)
	}
	sink := newGatedSink()
	topic, _ := ParseTopic("collections/c/resources")
	sub, res, run, err := e.res.Subscribe(t.Context(), Request{Topic: topic, Snapshot: true}, sink)
	if err != nil {
		t.Fatal(err)
	}
	defer e.res.Unsubscribe(sub)
	at := res.Cursor.Pos
	runErr := make(chan error, 1)
	go func() { runErr <- run(t.Context()) }()
	<-sink.held
	e.put(t, "r001", 1001)   // changed before its page is read
	e.put(t, "r040", 1040)   // changed in a later page
	e.put(t, "new", 1)       // created
	last := e.del(t, "r002") // deleted
	waitFor(t, "the feed to broadcast the writes", func() bool { return e.feed.Last() >= last })
	close(sink.release)
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	last = e.put(t, "r003", 1003) // live
	want := e.eventRevs(t, at)
	waitFor(t, "every event after the snapshot", func() bool {
		fs := sink.got()
		return len(fs) > 0 && fs[len(fs)-1].Rev == last
	})
	mirror := map[string]string{}
	synced := false
	var events []int64
	for _, f := range sink.got() {
		switch {
		case f.T == "synced":
			if synced || f.Rev != at {
				t.Fatalf("synced %+v (again: %v), want one at %d", f, synced, at)
			}
			synced = true
		case !synced:
			if f.Name != EventSnapshot || f.Rev > at {
				t.Fatalf("before synced: %+v (cursor %d)", f, at)
			}
			mirror[f.ID] = string(f.Data)
		default:
			events = append(events, f.Rev)
			if f.Name == EventDeleted {
				delete(mirror, f.ID)
			} else {
				mirror[f.ID] = string(f.Data)
			}
		}
	}
	if fmt.Sprint(events) != fmt.Sprint(want) {
		t.Fatalf("events after synced %v, want %v", events, want)
	}
	page, err := e.st.ListResources(t.Context(), store.ListOptions{Collection: "c", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	state := map[string]string{}
	for _, r := range page.Items {
		state[r.ID] = string(r.Data)
	}
	if fmt.Sprint(sorted(mirror)) != fmt.Sprint(sorted(state)) {
		t.Fatalf("mirror\n%v\nstore\n%v", sorted(mirror), sorted(state))
	}
}

func sorted(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
