package hub

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// sinkSub is a fake transport: Deliver puts the message into a buffered sink
// channel and refuses when it is full.
type sinkSub struct {
	name   string
	sink   chan *Message
	closes atomic.Int32
	onShut func() // called from Close, if set
}

func newSink(name string, buf int) *sinkSub {
	return &sinkSub{name: name, sink: make(chan *Message, buf)}
}

func (s *sinkSub) Deliver(m *Message) bool {
	select {
	case s.sink <- m:
		return true
	default:
		return false
	}
}

func (s *sinkSub) Close() {
	s.closes.Add(1)
	if s.onShut != nil {
		s.onShut()
	}
}

// drain returns what the sink holds, without blocking.
func (s *sinkSub) drain() []*Message {
	var out []*Message
	for {
		select {
		case m := <-s.sink:
			out = append(out, m)
		default:
			return out
		}
	}
}

// queueSub delivers into a real Queue, as a WebSocket connection does.
type queueSub struct {
	q      *Queue
	closes atomic.Int32
}

func (s *queueSub) Deliver(m *Message) bool { return s.q.Push(m) }
func (s *queueSub) Close()                  { s.closes.Add(1); s.q.Close() }

func TestTopicOf(t *testing.T) {
	tests := []struct{ key, topic string }{
		{"channels/a/messages", "channels/a/messages"},
		{"collections/c/resources?env=prod", "collections/c/resources"},
		{"collections/c/resources?a=b?c", "collections/c/resources"},
		{"?x", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := TopicOf(tt.key); got != tt.topic {
			t.Errorf("TopicOf(%q) = %q, want %q", tt.key, got, tt.topic)
		}
	}
}

func TestBroadcast(t *testing.T) {
	const (
		k1 = "collections/c/resources"
		k2 = "collections/c/resources?env=prod"
		k3 = "channels/x/messages"
	)
	tests := []struct {
		name string
		subs map[string][]string // key → subscriber names
		key  string
		want []string // subscriber names that receive
	}{
		{"OK", map[string][]string{k1: {"a", "b"}, k2: {"c"}, k3: {"d"}}, k1, []string{"a", "b"}},
		{"SelectorKeyIsDistinct", map[string][]string{k1: {"a"}, k2: {"b", "c"}}, k2, []string{"b", "c"}},
		{"SharedSubscriber", map[string][]string{k1: {"a", "b"}, k3: {"a"}}, k3, []string{"a"}},
		{"NoSubscribers", map[string][]string{k1: {"a"}}, k3, nil},
		{"Empty", nil, k1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Options{Shards: 4})
			subs := map[string]*sinkSub{}
			for _, names := range tt.subs {
				for _, n := range names {
					if subs[n] == nil {
						subs[n] = newSink(n, 4)
					}
				}
			}
			for key, names := range tt.subs {
				for _, n := range names {
					h.Subscribe(key, subs[n])
				}
			}
			m := NewMessage([]byte(`{}`))
			if got := h.Broadcast(tt.key, m); got != len(tt.want) {
				t.Errorf("Broadcast delivered %d, want %d", got, len(tt.want))
			}
			var got []string
			for n, s := range subs {
				msgs := s.drain()
				for _, x := range msgs {
					if x != m {
						t.Errorf("%s got a different *Message", n)
					}
				}
				if len(msgs) > 1 {
					t.Errorf("%s got %d copies", n, len(msgs))
				}
				if len(msgs) == 1 {
					got = append(got, n)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("receivers = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSubscribeUnsubscribe(t *testing.T) {
	h := New(Options{})
	a, b := newSink("a", 8), newSink("b", 8)
	const key = "channels/x/messages"
	steps := []struct {
		name  string
		op    func() bool
		want  bool
		nsubs int
		nkeys int
		recv  []*sinkSub
	}{
		{"FirstSubscribe", func() bool { return h.Subscribe(key, a) }, true, 1, 1, []*sinkSub{a}},
		{"SecondSubscribe", func() bool { return h.Subscribe(key, b) }, false, 2, 1, []*sinkSub{a, b}},
		{"DuplicateSubscribe", func() bool { return h.Subscribe(key, a) }, false, 2, 1, []*sinkSub{a, b}},
		{"UnsubscribeNotLast", func() bool { return h.Unsubscribe(key, a) }, false, 1, 1, []*sinkSub{b}},
		{"UnsubscribeAgain", func() bool { return h.Unsubscribe(key, a) }, false, 1, 1, []*sinkSub{b}},
		{"Resubscribe", func() bool { return h.Subscribe(key, a) }, false, 2, 1, []*sinkSub{a, b}},
		{"UnsubscribeB", func() bool { return h.Unsubscribe(key, b) }, false, 1, 1, []*sinkSub{a}},
		{"UnsubscribeLast", func() bool { return h.Unsubscribe(key, a) }, true, 0, 0, nil},
		{"UnsubscribeUnknownKey", func() bool { return h.Unsubscribe("nope", a) }, false, 0, 0, nil},
		{"FirstAgain", func() bool { return h.Subscribe(key, b) }, true, 1, 1, []*sinkSub{b}},
	}
	for _, st := range steps {
		if got := st.op(); got != st.want {
			t.Fatalf("%s: got %v, want %v", st.name, got, st.want)
		}
		if h.NumSubscribers() != st.nsubs || h.NumKeys() != st.nkeys {
			t.Fatalf("%s: NumSubscribers, NumKeys = %d, %d; want %d, %d",
				st.name, h.NumSubscribers(), h.NumKeys(), st.nsubs, st.nkeys)
		}
		m := NewMessage([]byte(st.name))
		if got := h.Broadcast(key, m); got != len(st.recv) {
			t.Fatalf("%s: Broadcast delivered %d, want %d", st.name, got, len(st.recv))
		}
		for _, s := range []*sinkSub{a, b} {
			got := len(s.drain())
			want := 0
			if slices.Contains(st.recv, s) {
				want = 1
			}
			if got != want {
				t.Fatalf("%s: %s received %d, want %d", st.name, s.name, got, want)
			}
		}
	}
}

func TestKeysIndex(t *testing.T) {
	type op struct {
		sub   bool // subscribe, else unsubscribe
		key   string
		subID int
	}
	const (
		t1 = "collections/c/resources"
		t2 = "collections/d/resources"
	)
	steps := []struct {
		name string
		ops  []op
		want map[string][]string // topic → keys
	}{
		{"Empty", nil, map[string][]string{t1: nil, t2: nil}},
		{"PlainKey", []op{{true, t1, 0}}, map[string][]string{t1: {t1}, t2: nil}},
		{"Selectors", []op{{true, t1 + "?env=prod", 1}, {true, t1 + "?env=dev", 2}, {true, t2 + "?x", 1}},
			map[string][]string{t1: {t1, t1 + "?env=dev", t1 + "?env=prod"}, t2: {t2 + "?x"}}},
		{"SecondSubscriberNoNewKey", []op{{true, t1 + "?env=prod", 2}},
			map[string][]string{t1: {t1, t1 + "?env=dev", t1 + "?env=prod"}, t2: {t2 + "?x"}}},
		{"UnsubscribeOneOfTwo", []op{{false, t1 + "?env=prod", 1}},
			map[string][]string{t1: {t1, t1 + "?env=dev", t1 + "?env=prod"}, t2: {t2 + "?x"}}},
		{"UnsubscribeLastOfKey", []op{{false, t1 + "?env=prod", 2}, {false, t1, 0}},
			map[string][]string{t1: {t1 + "?env=dev"}, t2: {t2 + "?x"}}},
		{"UnsubscribeUnknown", []op{{false, t1 + "?env=dev", 9}},
			map[string][]string{t1: {t1 + "?env=dev"}, t2: {t2 + "?x"}}},
		{"AllGone", []op{{false, t1 + "?env=dev", 2}, {false, t2 + "?x", 1}},
			map[string][]string{t1: nil, t2: nil}},
	}
	h := New(Options{Shards: 2}) // few shards: keys and topics collide
	subs := make([]*sinkSub, 10)
	for i := range subs {
		subs[i] = newSink(fmt.Sprint(i), 1)
	}
	for _, st := range steps {
		for _, o := range st.ops {
			if o.sub {
				h.Subscribe(o.key, subs[o.subID])
			} else {
				h.Unsubscribe(o.key, subs[o.subID])
			}
		}
		total := 0
		for topic, want := range st.want {
			got := h.Keys(topic)
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s: Keys(%q) = %q, want %q", st.name, topic, got, want)
			}
			total += len(want)
		}
		if h.NumKeys() != total {
			t.Errorf("%s: NumKeys = %d, want %d", st.name, h.NumKeys(), total)
		}
	}
	h.mustBeEmpty(t)
}

// mustBeEmpty checks that no key, subscriber or index entry is left.
func (h *Hub) mustBeEmpty(t *testing.T) {
	t.Helper()
	if h.NumKeys() != 0 || h.NumSubscribers() != 0 {
		t.Fatalf("NumKeys, NumSubscribers = %d, %d; want 0, 0", h.NumKeys(), h.NumSubscribers())
	}
	for i := range h.shards {
		if n := len(h.shards[i].keys); n != 0 {
			t.Fatalf("shard %d still holds %d keys", i, n)
		}
		if n := len(h.topics[i].topics); n != 0 {
			t.Fatalf("topic shard %d still holds %d topics", i, n)
		}
	}
}

// TestConcurrent runs subscribes, unsubscribes, broadcasts and Keys calls at
// once (meant for -race), then checks the hub's bookkeeping.
func TestConcurrent(t *testing.T) {
	h := New(Options{Shards: 4})
	keys := []string{
		"channels/a/messages", "channels/b/messages",
		"collections/c/resources", "collections/c/resources?env=prod", "collections/c/resources?env=dev",
	}
	const (
		workers     = 4
		subsPerWork = 8
		iterations  = 400
		broadcaster = 2
	)
	stop := make(chan struct{})
	var bwg sync.WaitGroup
	var sent atomic.Int64
	for i := range broadcaster {
		bwg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(i), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				key := keys[r.IntN(len(keys))]
				h.Broadcast(key, NewMessage([]byte(key)))
				h.Keys(TopicOf(key))
				sent.Add(1)
			}
		})
	}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 2))
			subs := make([]*sinkSub, subsPerWork)
			for i := range subs {
				subs[i] = newSink(fmt.Sprint(w, i), 1<<10)
			}
			subscribed := map[[2]int]bool{}
			for range iterations {
				si, ki := r.IntN(len(subs)), r.IntN(len(keys))
				if subscribed[[2]int{si, ki}] {
					h.Unsubscribe(keys[ki], subs[si])
					delete(subscribed, [2]int{si, ki})
				} else {
					h.Subscribe(keys[ki], subs[si])
					subscribed[[2]int{si, ki}] = true
				}
				for _, s := range subs {
					for _, m := range s.drain() {
						_ = m.Bytes()
					}
				}
			}
			for sk := range subscribed {
				h.Unsubscribe(keys[sk[1]], subs[sk[0]])
			}
		})
	}
	wg.Wait()
	close(stop)
	bwg.Wait()
	if sent.Load() == 0 {
		t.Fatal("no broadcast ran")
	}
	h.mustBeEmpty(t)
	for _, k := range keys {
		if got := h.Keys(TopicOf(k)); len(got) != 0 {
			t.Fatalf("Keys(%q) = %q after everyone left", TopicOf(k), got)
		}
	}
	if st := h.Stats(); st.Broadcasts != uint64(sent.Load()) {
		t.Fatalf("Stats.Broadcasts = %d, want %d", st.Broadcasts, sent.Load())
	}
}

// TestSlowSubscriberDoesNotDelayOthers subscribes 1,000 draining subscribers
// and one whose queue is never drained and overflows: every broadcast still
// reaches the 1,000 promptly and in order, and the stuck one is refused
// without being retried or waited for.
func TestSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	const (
		key    = "channels/hot/messages"
		others = 1000
		n      = 100
		size   = 256
	)
	h := New(Options{})
	stuck := &queueSub{q: NewQueue(4 * size)} // overflows on the 5th message
	h.Subscribe(key, stuck)
	subs := make([]*queueSub, others)
	for i := range subs {
		subs[i] = &queueSub{q: NewQueue(0)}
		h.Subscribe(key, subs[i])
	}

	// Writers drain the 1,000 concurrently with the broadcasts.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sent := make([]*Message, n)
	for i := range sent {
		b := make([]byte, size)
		copy(b, fmt.Sprintf(`{"seq":%d}`, i))
		sent[i] = NewMessage(b)
	}
	var wg sync.WaitGroup
	errs := make(chan error, others)
	const writers = 4
	for w := range writers {
		wg.Go(func() {
			var batch []*Message
			for i := w; i < others; i += writers {
				got := 0
				for got < n {
					if !subs[i].q.Wait(ctx) {
						errs <- fmt.Errorf("subscriber %d: queue closed or timeout after %d", i, got)
						return
					}
					batch = subs[i].q.PopAll(batch[:0])
					for _, m := range batch {
						if m != sent[got] {
							errs <- fmt.Errorf("subscriber %d: message %d out of order", i, got)
							return
						}
						got++
					}
					clear(batch)
				}
			}
		})
	}

	start := time.Now()
	for i, m := range sent {
		want := others
		if i < 4 {
			want = others + 1
		}
		if got := h.Broadcast(key, m); got != want {
			t.Fatalf("broadcast %d delivered %d, want %d", i, got, want)
		}
	}
	elapsed := time.Since(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !stuck.q.Overflowed() {
		t.Error("stuck subscriber's queue did not overflow")
	}
	// Generous bound for -race on a shared 2-core machine: 100 × 1,001
	// pushes take a few milliseconds; a hub that waited on the stuck
	// subscriber would never finish.
	if elapsed > 3*time.Second {
		t.Errorf("broadcasts took %v", elapsed)
	}
	st := h.Stats()
	if st.Overflows != n-4 || st.Deliveries != n*others+4 || st.Broadcasts != n {
		t.Errorf("Stats = %+v, want %d overflows, %d deliveries, %d broadcasts", st, n-4, n*others+4, n)
	}
}

func TestShutdown(t *testing.T) {
	t.Run("OK", func(t *testing.T) {
		h := New(Options{})
		keys := []string{"channels/a/messages", "channels/b/messages", "collections/c/resources?x=y"}
		subs := make([]*sinkSub, 20)
		for i := range subs {
			s := newSink(fmt.Sprint(i), 1)
			// Close unsubscribes asynchronously, as a connection's
			// teardown would.
			s.onShut = func() {
				go func() {
					for _, k := range keys {
						h.Unsubscribe(k, s)
					}
				}()
			}
			subs[i] = s
			for _, k := range keys {
				h.Subscribe(k, s)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		for _, s := range subs {
			if n := s.closes.Load(); n != 1 {
				t.Errorf("subscriber %s closed %d times", s.name, n)
			}
		}
		select {
		case <-h.Done():
		default:
			t.Error("Done not closed")
		}
		late := newSink("late", 1)
		if h.Subscribe(keys[0], late) || h.NumSubscribers() != 0 {
			t.Error("Subscribe after Shutdown registered a subscriber")
		}
		if err := h.Shutdown(ctx); err != nil {
			t.Fatalf("second Shutdown: %v", err)
		}
		for _, s := range subs {
			if n := s.closes.Load(); n != 1 {
				t.Errorf("after second Shutdown, subscriber %s closed %d times", s.name, n)
			}
		}
		h.mustBeEmpty(t)
	})
	t.Run("RacingSubscribe", func(t *testing.T) {
		// Subscribes racing with Shutdown: each either registers (and is
		// then closed exactly once) or is refused (and never closed).
		h := New(Options{Shards: 4})
		const n = 200
		subs := make([]*sinkSub, n)
		registered := make([]bool, n)
		for i := range subs {
			key := fmt.Sprintf("channels/%d/messages", i) // one key each: first == registered
			s := newSink(key, 1)
			s.onShut = func() { h.Unsubscribe(key, s) }
			subs[i] = s
		}
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Go(func() {
				for i := g; i < n; i += 2 {
					registered[i] = h.Subscribe(subs[i].name, subs[i])
				}
			})
		}
		time.Sleep(time.Millisecond)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := h.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for i, s := range subs {
			want := int32(0)
			if registered[i] {
				want = 1
			}
			if got := s.closes.Load(); got != want {
				t.Errorf("subscriber %d (registered %v) closed %d times", i, registered[i], got)
			}
		}
		h.mustBeEmpty(t)
	})
	t.Run("SynchronousUnsubscribe", func(t *testing.T) {
		h := New(Options{})
		s := newSink("s", 1)
		s.onShut = func() { h.Unsubscribe("k", s) }
		h.Subscribe("k", s)
		if err := h.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		if err := New(Options{}).Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ErrDeadline", func(t *testing.T) {
		h := New(Options{})
		s := newSink("never-leaves", 1)
		h.Subscribe("k", s)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
		}
		if s.closes.Load() != 1 {
			t.Fatalf("closed %d times, want 1", s.closes.Load())
		}
		// Broadcasts still reach subscribers that have not left.
		if h.Broadcast("k", NewMessage(nil)) != 1 {
			t.Fatal("broadcast after Shutdown did not reach the remaining subscriber")
		}
		h.Unsubscribe("k", s)
		if err := h.Shutdown(context.Background()); err != nil {
			t.Fatalf("Shutdown after the last unsubscribe: %v", err)
		}
		if s.closes.Load() != 1 {
			t.Fatalf("closed %d times, want 1", s.closes.Load())
		}
	})
}

func TestBroadcastAllocs(t *testing.T) {
	h := New(Options{})
	subs := make([]*queueSub, 100)
	for i := range subs {
		subs[i] = &queueSub{q: NewQueue(0)}
		h.Subscribe("k", subs[i])
	}
	h.Unsubscribe("k", subs[0]) // make the snapshot stale once
	m := NewMessage([]byte(`{"type":"event"}`))
	h.Broadcast("k", m)
	var batch []*Message
	allocs := testing.AllocsPerRun(50, func() {
		h.Broadcast("k", m)
		for _, s := range subs[1:] {
			batch = s.q.PopAll(batch[:0])
		}
	})
	if allocs != 0 {
		t.Fatalf("Broadcast allocates %.1f times per call in steady state", allocs)
	}
}
