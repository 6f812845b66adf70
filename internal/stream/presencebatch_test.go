package stream

// Presence diffs batched per window: real memory broker, real hub, a
// presence subscriber whose frames are folded the way the SDKs fold them
// (state replaces, join adds or replaces, leave removes).

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/broker/memory"
	"github.com/tandemhq/tandem/internal/hub"
)

// presenceFrames encodes presence frames as action + members (ID/conn).
type presenceFrames struct{ testFrames }

type presenceFrame struct {
	Action  string   `json:"action"`
	Members []string `json:"members"`
}

func (presenceFrames) Presence(_, action string, ms []broker.Member) []byte {
	f := presenceFrame{Action: action, Members: []string{}}
	for _, m := range ms {
		f.Members = append(f.Members, m.ID+"/"+m.ConnID)
	}
	b, _ := json.Marshal(f)
	return b
}

// presenceSink records presence frames.
type presenceSink struct {
	mu     sync.Mutex
	frames []presenceFrame
}

func (s *presenceSink) record(m *hub.Message) {
	var f presenceFrame
	if err := json.Unmarshal(m.Bytes(), &f); err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.frames = append(s.frames, f)
	s.mu.Unlock()
}

func (s *presenceSink) Push(m *hub.Message) bool                         { s.record(m); return true }
func (s *presenceSink) PushWait(_ context.Context, m *hub.Message) error { s.record(m); return nil }
func (s *presenceSink) Close()                                           {}
func (s *presenceSink) SlowConsumer()                                    { panic("slow consumer") }

func (s *presenceSink) got() []presenceFrame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.frames)
}

// fold applies frames to start the way a client does and returns the
// present members (ID/conn), sorted.
func fold(start map[string]string, frames []presenceFrame) []string {
	state := map[string]string{} // member ID → ID/conn
	for id, v := range start {
		state[id] = v
	}
	for _, f := range frames {
		if f.Action == "state" {
			clear(state)
		}
		for _, m := range f.Members {
			id, _, _ := strings.Cut(m, "/")
			switch f.Action {
			case "state", "join":
				state[id] = m
			case "leave":
				delete(state, id)
			}
		}
	}
	out := make([]string, 0, len(state))
	for _, v := range state {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// runningHandler says when the broker delivered its first message.
type runningHandler struct {
	*Channels
	once    sync.Once
	running chan struct{}
}

func (h *runningHandler) HandleMessage(m broker.Message) {
	h.once.Do(func() { close(h.running) })
	h.Channels.HandleMessage(m)
}

type presenceEnv struct {
	br  *memory.Broker
	ch  *Channels
	sub *presenceSink
}

// newPresenceEnv runs a memory broker into Channels with the given batch
// window and subscribes one presence subscriber to channel "room", live
// after its (empty) state frame.
func newPresenceEnv(t *testing.T, window time.Duration) *presenceEnv {
	t.Helper()
	br := memory.New(memory.Options{})
	h := hub.New(hub.Options{})
	ch := &Channels{Broker: br, Hub: h, Frames: presenceFrames{}, PresenceBatchWindow: window}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	running := &runningHandler{Channels: ch, running: make(chan struct{})}
	go func() { defer close(done); _ = br.Run(ctx, running) }()
	t.Cleanup(func() { stop(); <-done; _ = br.Close() })
	// Events before Run are delivered when it starts, from its goroutine:
	// wait for that, so that the test's joins are handled in order.
	if err := br.Subscribe(ctx, "running"); err != nil {
		t.Fatal(err)
	}
	if _, err := br.Publish(ctx, "running", json.RawMessage(`{}`), "", broker.HistoryOptions{}); err != nil {
		t.Fatal(err)
	}
	<-running.running
	topic, err := ParseTopic(PresenceTopic("room"))
	if err != nil {
		t.Fatal(err)
	}
	sink := &presenceSink{}
	sub, _, run, err := ch.Subscribe(t.Context(), Request{Topic: topic}, nil, sink)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Unsubscribe(sub) })
	if err := run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := sink.got(); len(got) != 1 || got[0].Action != "state" || len(got[0].Members) != 0 {
		t.Fatalf("first frames %v, want an empty state", got)
	}
	return &presenceEnv{br: br, ch: ch, sub: sink}
}

func (e *presenceEnv) join(t *testing.T, id, conn string) {
	t.Helper()
	if err := e.br.Join(t.Context(), "room", broker.Member{ID: id, ConnID: conn}, time.Minute); err != nil {
		t.Fatal(err)
	}
}

func (e *presenceEnv) leave(t *testing.T, conn string) {
	t.Helper()
	if err := e.br.Leave(t.Context(), "room", conn); err != nil {
		t.Fatal(err)
	}
}

// fence joins a member of its own and waits for its join, which is in
// the last frame of its window (a window's joins come last, in the order
// of their first events), then makes it leave and waits for that, so that
// every diff before the fence has arrived and the fence is gone again. It
// returns every frame after the state.
func (e *presenceEnv) fence(t *testing.T, name string) []presenceFrame {
	t.Helper()
	e.join(t, name, name)
	waitDiff(t, e.sub, "join", name+"/"+name)
	e.leave(t, name)
	return waitDiff(t, e.sub, "leave", name+"/"+name)
}

// waitDiff waits until sink got an action frame naming member (ID/conn)
// and returns its frames after the first (the state).
func waitDiff(t *testing.T, sink *presenceSink, action, member string) []presenceFrame {
	t.Helper()
	var frames []presenceFrame
	waitFor(t, action+" of "+member, func() bool {
		frames = sink.got()[1:]
		for _, f := range frames {
			if f.Action == action && slices.Contains(f.Members, member) {
				return true
			}
		}
		return false
	})
	return frames
}

// actions lists the frames' actions and members.
func actions(fs []presenceFrame) string {
	var parts []string
	for _, f := range fs {
		parts = append(parts, f.Action+fmt.Sprint(f.Members))
	}
	return strings.Join(parts, " ")
}

// TestPresenceBatchJoinThenLeave: a member that joins and leaves within
// one window is not shown as present, neither to a client that never saw
// it nor to one whose state listed it; the window's diffs are one leave
// frame and one join frame, leave first.
func TestPresenceBatchJoinThenLeave(t *testing.T) {
	e := newPresenceEnv(t, time.Hour) // flushed by hand
	e.join(t, "x", "cx")
	e.join(t, "y", "cy")
	e.leave(t, "cx")
	e.ch.presenceBatch().flush("room")
	frames := waitDiff(t, e.sub, "join", "y/cy")
	if got, want := actions(frames), "leave[x/cx] join[y/cy]"; got != want {
		t.Fatalf("frames %s, want %s", got, want)
	}
	if got := fold(nil, frames); !slices.Equal(got, []string{"y/cy"}) {
		t.Errorf("client from empty state ends with %v, want [y/cy]", got)
	}
	if got := fold(map[string]string{"x": "x/cx"}, frames); !slices.Equal(got, []string{"y/cy"}) {
		t.Errorf("client whose state listed x ends with %v, want [y/cy]", got)
	}
}

// TestPresenceBatchLeaveThenJoin: a member that leaves and comes back
// within one window ends present, with its new connection.
func TestPresenceBatchLeaveThenJoin(t *testing.T) {
	e := newPresenceEnv(t, 20*time.Millisecond)
	e.join(t, "x", "c1")
	before := e.fence(t, "f1")
	if got := fold(nil, before); !slices.Equal(got, []string{"x/c1"}) {
		t.Fatalf("after the join: %v (frames %s)", got, actions(before))
	}
	e.leave(t, "c1")
	e.join(t, "x", "c2")
	e.join(t, "x", "c3") // a second connection of x: no diff
	all := e.fence(t, "f2")
	after := all[len(before):]
	if got := fold(nil, all); !slices.Equal(got, []string{"x/c2"}) {
		t.Errorf("client ends with %v, want [x/c2] (frames %s)", got, actions(all))
	}
	for _, f := range after {
		if f.Action == "leave" && slices.Contains(f.Members, "x/c1") {
			t.Errorf("x left and came back within a window but was sent a leave: %s", actions(after))
		}
	}
}

// TestPresenceBatchManyMembers: thousands of joins within a window arrive
// in a handful of frames (at most maxPresenceFrameMembers members each),
// each diff of a member at most once, and the client ends with the broker's
// presence.
func TestPresenceBatchManyMembers(t *testing.T) {
	e := newPresenceEnv(t, 200*time.Millisecond)
	const n = 2000
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				id := fmt.Sprintf("m%04d", i)
				if err := e.br.Join(context.Background(), "room", broker.Member{ID: id, ConnID: "c" + id}, time.Minute); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for i := 0; i < n; i += 10 { // a tenth leave again
		e.leave(t, fmt.Sprintf("cm%04d", i))
	}
	frames := e.fence(t, "zz")
	seen := map[string]int{}
	for _, f := range frames {
		if len(f.Members) > maxPresenceFrameMembers {
			t.Errorf("a %s frame lists %d members", f.Action, len(f.Members))
		}
		for _, m := range f.Members {
			seen[f.Action+" "+m]++
		}
	}
	for m, k := range seen {
		if k > 1 {
			t.Errorf("%s: in %d frames", m, k)
		}
	}
	// Each window of the load sends at most a leave frame and 4 join
	// frames; the load spans a few windows, the fence two more.
	if len(frames) > 3*5+2 {
		t.Errorf("%d frames for %d joins", len(frames), n)
	}
	ms, err := e.br.Presence(t.Context(), "room")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, m := range ms {
		want = append(want, m.ID+"/"+m.ConnID)
	}
	if got := fold(nil, frames); !slices.Equal(got, want) || len(got) != n-n/10 {
		t.Errorf("client ends with %d members, broker has %d (want %d)", len(got), len(want), n-n/10)
	}
}

// TestPresenceBatchWindowZero: without a window every diff is its own
// frame, sent at once, in order.
func TestPresenceBatchWindowZero(t *testing.T) {
	e := newPresenceEnv(t, 0)
	e.join(t, "x", "cx")
	e.join(t, "y", "cy")
	e.leave(t, "cx")
	var frames []presenceFrame
	waitFor(t, "three diffs", func() bool { frames = e.sub.got()[1:]; return len(frames) >= 3 })
	if got, want := actions(frames), "join[x/cx] join[y/cy] leave[x/cx]"; got != want {
		t.Errorf("frames %s, want %s", got, want)
	}
	if e.ch.presenceBatch() != nil {
		t.Error("window 0 made a batcher")
	}
}

// TestPresenceBatchStateBetween: a subscriber whose state is read inside
// a window (after a join, before the leave) still ends without the member.
func TestPresenceBatchStateBetween(t *testing.T) {
	e := newPresenceEnv(t, time.Hour)
	e.join(t, "x", "cx")
	// The first subscriber's (empty) state frame would be shared, since no
	// diff went out since: make this one read the broker's, as after a diff.
	e.ch.stateChanged("room")
	topic, _ := ParseTopic(PresenceTopic("room"))
	late := &presenceSink{}
	sub, _, run, err := e.ch.Subscribe(t.Context(), Request{Topic: topic}, nil, late)
	if err != nil {
		t.Fatal(err)
	}
	defer e.ch.Unsubscribe(sub)
	if err := run(t.Context()); err != nil {
		t.Fatal(err)
	}
	e.leave(t, "cx")
	e.ch.presenceBatch().flush("room")
	waitDiff(t, late, "leave", "x/cx")
	frames := late.got()
	if len(frames) == 0 || frames[0].Action != "state" || !slices.Equal(frames[0].Members, []string{"x/cx"}) {
		t.Fatalf("late subscriber's frames %s, want a state listing x first", actions(frames))
	}
	if got := fold(nil, frames); len(got) != 0 {
		t.Errorf("late subscriber ends with %v, want nobody (frames %s)", got, actions(frames))
	}
}

// TestPresenceStateShared: presence subscriptions starting while no diff
// went out share one state frame; the next diff makes the next one read
// the broker again, and every subscriber ends with the same members.
func TestPresenceStateShared(t *testing.T) {
	e := newPresenceEnv(t, 10*time.Millisecond)
	e.join(t, "x", "cx")
	e.fence(t, "f1")
	topic, _ := ParseTopic(PresenceTopic("room"))
	subscribe := func() (*presenceSink, *hub.Message) {
		t.Helper()
		sink := &recordingSink{}
		sub, _, run, err := e.ch.Subscribe(t.Context(), Request{Topic: topic}, nil, sink)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.ch.Unsubscribe(sub) })
		if err := run(t.Context()); err != nil {
			t.Fatal(err)
		}
		return &sink.presenceSink, sink.first
	}
	a, ma := subscribe()
	b, mb := subscribe()
	if ma != mb {
		t.Error("two subscriptions without a diff between them did not share the state frame")
	}
	e.join(t, "y", "cy") // pending in its window: a third still shares…
	c, mc := subscribe()
	if mc != ma {
		t.Error("a pending diff made a new state frame")
	}
	e.fence(t, "f2") // …but after the diffs went out, a fourth reads anew
	d, md := subscribe()
	if md == ma {
		t.Error("the state frame was shared after a diff went out")
	}
	for i, s := range []*presenceSink{a, b, c, d} {
		waitFor(t, "y's join", func() bool { return slices.Contains(fold(nil, s.got()), "y/cy") })
		if got := fold(nil, s.got()); !slices.Equal(got, []string{"x/cx", "y/cy"}) {
			t.Errorf("subscriber %d ends with %v, want x and y", i, got)
		}
	}
}

// recordingSink is a presenceSink remembering the first message pushed.
type recordingSink struct {
	presenceSink
	first *hub.Message
}

func (s *recordingSink) PushWait(ctx context.Context, m *hub.Message) error {
	s.mu.Lock()
	if s.first == nil {
		s.first = m
	}
	s.mu.Unlock()
	return s.presenceSink.PushWait(ctx, m)
}
