package hub

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// recorder records what it is delivered; subscribers sharing a recorder
// (one connection's subscriptions) record into one log.
type recorder struct {
	mu  sync.Mutex
	got []string
}

func (r *recorder) add(s string) {
	r.mu.Lock()
	r.got = append(r.got, s)
	r.mu.Unlock()
}

func (r *recorder) log() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// laneSub is a subscription of a connection: it is a Laner when lane is
// set, and records "key:payload" into its connection's recorder.
type laneSub struct {
	key    string
	rec    *recorder
	lane   uint64
	laned  bool
	gate   chan struct{} // when set, Deliver waits for it
	closed chan struct{}
	once   sync.Once
}

func (s *laneSub) Deliver(m *Message) bool {
	if s.gate != nil {
		<-s.gate
	}
	s.rec.add(s.key + ":" + string(m.Bytes()))
	return true
}

func (s *laneSub) Close() {
	s.once.Do(func() {
		if s.closed != nil {
			close(s.closed)
		}
	})
}

// lanedSub is a laneSub that is a Laner.
type lanedSub struct{ laneSub }

func (s *lanedSub) Lane() uint64 { return s.lane }

var _ Laner = (*lanedSub)(nil)

func TestDispatchOrder(t *testing.T) {
	tests := []struct {
		name  string
		lanes int
		conns int
		keys  int
		laned bool
	}{
		{"one lane", 1, 50, 3, true},
		{"four lanes, connections as Laners", 4, 200, 3, true},
		{"four lanes, key lanes", 4, 200, 3, false},
		{"many lanes, few connections", MaxLanes, 3, 5, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{Lanes: tt.lanes})
			recs := make([]*recorder, tt.conns)
			for c := range recs {
				recs[c] = &recorder{}
				for k := range tt.keys {
					key := fmt.Sprintf("k%d", k)
					var s Subscriber = &laneSub{key: key, rec: recs[c], lane: uint64(c)}
					if tt.laned {
						s = &lanedSub{laneSub{key: key, rec: recs[c], lane: uint64(c)}}
					}
					h.Subscribe(key, s)
				}
			}
			// Dispatch from one goroutine: one order for everybody.
			var want []string
			for i := range 300 {
				key := fmt.Sprintf("k%d", i%tt.keys)
				h.Dispatch(key, NewMessage([]byte(fmt.Sprint(i))))
				want = append(want, fmt.Sprintf("%s:%d", key, i))
			}
			if err := h.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			for c, r := range recs {
				got := r.log()
				if !tt.laned {
					// Only each key's order is promised.
					got, want := perKey(got), perKey(want)
					if fmt.Sprint(got) != fmt.Sprint(want) {
						t.Fatalf("connection %d: per-key order\n got %v\nwant %v", c, got, want)
					}
					continue
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("connection %d got\n%v\nwant\n%v", c, got, want)
				}
			}
			st := h.Stats()
			if want := uint64(300 * tt.conns); st.Deliveries != want || st.Broadcasts != 300 {
				t.Fatalf("stats %+v, want %d deliveries of 300 dispatches", st, want)
			}
		})
	}
}

func perKey(log []string) map[string][]string {
	out := map[string][]string{}
	for _, s := range log {
		for i := 0; i < len(s); i++ {
			if s[i] == ':' {
				out[s[:i]] = append(out[s[:i]], s)
				break
			}
		}
	}
	return out
}

// TestDispatchReturnsBeforeDelivery: the broadcaster does not wait for a
// subscriber that is slow to take the message.
func TestDispatchReturnsBeforeDelivery(t *testing.T) {
	h := New(Options{Lanes: 2})
	gate := make(chan struct{})
	rec := &recorder{}
	h.Subscribe("k", &laneSub{key: "k", rec: rec, gate: gate})
	if n := h.Dispatch("k", NewMessage([]byte("1"))); n != 1 {
		t.Fatalf("queued for %d", n)
	}
	if got := rec.log(); len(got) != 0 {
		t.Fatalf("delivered before the gate opened: %v", got)
	}
	close(gate)
	if err := h.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := rec.log(); fmt.Sprint(got) != "[k:1]" {
		t.Fatalf("got %v", got)
	}
}

// TestDispatchBackpressure: a lane holds at most its byte bound; the
// Dispatch beyond it waits for the worker instead of growing the lane,
// and nothing is dropped or reordered.
func TestDispatchBackpressure(t *testing.T) {
	h := New(Options{Lanes: 1, LaneBytes: 10})
	gate := make(chan struct{})
	rec := &recorder{}
	h.Subscribe("k", &laneSub{key: "k", rec: rec, gate: gate})
	payload := func(i int) *Message { return NewMessage(fmt.Appendf(nil, "%08d", i)) } // 8 bytes
	h.Dispatch("k", payload(0))                                                        // taken by the worker, which blocks in Deliver
	l := &h.lanes[0]
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return len(l.jobs) == 0 && l.running })
	h.Dispatch("k", payload(1)) // queued: 8 of 10 bytes
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 2; i < 6; i++ {
			h.Dispatch("k", payload(i)) // would take the lane past 10 bytes
		}
	}()
	waitFor(t, func() bool { l.mu.Lock(); defer l.mu.Unlock(); return l.waiting == 1 })
	l.mu.Lock()
	if l.bytes > 10 || len(l.jobs) != 1 {
		t.Errorf("lane holds %d bytes in %d jobs past its bound", l.bytes, len(l.jobs))
	}
	l.mu.Unlock()
	close(gate)
	<-done
	if err := h.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	want := []string{}
	for i := range 6 {
		want = append(want, fmt.Sprintf("k:%08d", i))
	}
	if got := rec.log(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestShutdownDeliversDispatched: what was dispatched before Shutdown
// reaches a subscriber before its Close.
func TestShutdownDeliversDispatched(t *testing.T) {
	h := New(Options{Lanes: 2})
	gate := make(chan struct{})
	rec := &recorder{}
	s := &lanedSub{laneSub{key: "k", rec: rec, gate: gate, closed: make(chan struct{})}}
	h.Subscribe("k", s)
	for i := range 20 {
		h.Dispatch("k", NewMessage([]byte(fmt.Sprint(i))))
	}
	errc := make(chan error, 1)
	go func() { errc <- h.Shutdown(context.Background()) }()
	close(gate)
	<-s.closed
	if got := rec.log(); len(got) != 20 {
		t.Fatalf("Close came after %d of 20 deliveries", len(got))
	}
	h.Unsubscribe("k", s)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestFlushHonoursContext: Flush gives up when ctx ends.
func TestFlushHonoursContext(t *testing.T) {
	h := New(Options{Lanes: 1})
	gate := make(chan struct{})
	h.Subscribe("k", &laneSub{key: "k", rec: &recorder{}, gate: gate})
	h.Dispatch("k", NewMessage(nil))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := h.Flush(ctx); err != context.Canceled {
		t.Fatalf("Flush = %v", err)
	}
	close(gate)
	if err := h.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestAfter: After's function runs only once what was dispatched before it
// has been delivered, at once when nothing is pending, and successive
// calls run in order.
func TestAfter(t *testing.T) {
	h := New(Options{Lanes: 4})
	ran := make(chan int, 10)
	h.After(func() { ran <- 0 })
	if got := <-ran; got != 0 { // idle: inline
		t.Fatalf("got %d", got)
	}
	gate := make(chan struct{})
	rec := &recorder{}
	h.Subscribe("k", &lanedSub{laneSub{key: "k", rec: rec, gate: gate, lane: 1}})
	h.Subscribe("k", &lanedSub{laneSub{key: "k", rec: rec, lane: 2}})
	h.Dispatch("k", NewMessage([]byte("a")))
	h.After(func() { ran <- len(rec.log()) })
	h.Dispatch("k", NewMessage([]byte("b")))
	h.After(func() { ran <- len(rec.log()) })
	select {
	case n := <-ran:
		t.Fatalf("After ran with the gated lane still delivering (%d delivered)", n)
	default:
	}
	close(gate)
	if first, second := <-ran, <-ran; first < 2 || second != 4 {
		t.Fatalf("After ran after %d and %d deliveries, want ≥ 2 then 4", first, second)
	}
	if err := h.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
}
