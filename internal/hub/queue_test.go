package hub

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

func msg(size int) *Message { return NewMessage([]byte(strings.Repeat("x", size))) }

func TestQueuePushBound(t *testing.T) {
	tests := []struct {
		name       string
		max        int
		sizes      []int
		want       []bool // result of each Push
		wantLen    int
		wantBytes  int
		overflowed bool
	}{
		{"OK", 100, []int{10, 20, 30}, []bool{true, true, true}, 3, 60, false},
		{"ExactlyFull", 100, []int{50, 50}, []bool{true, true}, 2, 100, false},
		{"Overflow", 100, []int{50, 50, 1}, []bool{true, true, false}, 0, 0, true},
		{"RefusedAfterOverflow", 100, []int{60, 60, 1}, []bool{true, false, false}, 0, 0, true},
		{"OversizeIntoEmpty", 100, []int{150}, []bool{true}, 1, 150, false},
		{"OversizeIntoNonEmpty", 100, []int{1, 150}, []bool{true, false}, 0, 0, true},
		{"NothingAfterOversize", 100, []int{150, 1}, []bool{true, false}, 0, 0, true},
		{"Default", 0, []int{DefaultQueueBytes, 1}, []bool{true, false}, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue(tt.max)
			for i, n := range tt.sizes {
				if got := q.Push(msg(n)); got != tt.want[i] {
					t.Fatalf("Push #%d (%d bytes) = %v, want %v", i, n, got, tt.want[i])
				}
			}
			if q.Len() != tt.wantLen || q.Bytes() != tt.wantBytes {
				t.Errorf("Len, Bytes = %d, %d; want %d, %d", q.Len(), q.Bytes(), tt.wantLen, tt.wantBytes)
			}
			if q.Overflowed() != tt.overflowed || q.Closed() != tt.overflowed {
				t.Errorf("Overflowed, Closed = %v, %v; want %v", q.Overflowed(), q.Closed(), tt.overflowed)
			}
			if tt.overflowed {
				select {
				case <-q.Done():
				default:
					t.Error("Done not closed after overflow")
				}
				if q.Wait(context.Background()) {
					t.Error("Wait = true on an overflowed queue")
				}
			}
		})
	}
}

func TestQueuePopAllOrder(t *testing.T) {
	q := NewQueue(1 << 10)
	var want []*Message
	for i := range 10 {
		m := msg(i + 1)
		want = append(want, m)
		if !q.Push(m) {
			t.Fatal("Push failed")
		}
	}
	got := q.PopAll(nil)
	if len(got) != len(want) {
		t.Fatalf("PopAll returned %d messages, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("message %d out of order", i)
		}
	}
	if q.Len() != 0 || q.Bytes() != 0 {
		t.Fatalf("after PopAll: Len, Bytes = %d, %d", q.Len(), q.Bytes())
	}
	// PopAll appends to buf; the byte budget is free again.
	q.Push(want[0])
	got = q.PopAll(got[:1])
	if len(got) != 2 || got[1] != want[0] {
		t.Fatalf("PopAll did not append: %v", got)
	}
	if got := q.PopAll(nil); len(got) != 0 {
		t.Fatalf("PopAll on empty queue returned %d", len(got))
	}
}

func TestQueueIdleBufferReleased(t *testing.T) {
	q := NewQueue(0)
	for range 10 * maxIdleCap {
		q.Push(msg(1))
	}
	q.PopAll(nil)
	q.mu.Lock()
	c := cap(q.items)
	q.mu.Unlock()
	if c > maxIdleCap {
		t.Fatalf("drained queue keeps capacity %d > %d", c, maxIdleCap)
	}
}

func TestQueueCloseKeepsQueued(t *testing.T) {
	q := NewQueue(0)
	q.Push(msg(3))
	q.Close()
	q.Close() // idempotent
	if q.Push(msg(1)) {
		t.Fatal("Push after Close succeeded")
	}
	if q.Overflowed() {
		t.Fatal("Overflowed after Close")
	}
	if !q.Wait(context.Background()) {
		t.Fatal("Wait = false with a message queued after Close")
	}
	if got := q.PopAll(nil); len(got) != 1 {
		t.Fatalf("PopAll after Close = %d messages, want 1", len(got))
	}
	if q.Wait(context.Background()) {
		t.Fatal("Wait = true on closed, empty queue")
	}
}

func TestQueueCloseWakesWaiters(t *testing.T) {
	q := NewQueue(0)
	const waiters = 4
	var wg sync.WaitGroup
	results := make(chan bool, waiters)
	for range waiters {
		wg.Go(func() { results <- q.Wait(context.Background()) })
	}
	time.Sleep(10 * time.Millisecond) // let them block
	q.Close()
	wg.Wait()
	close(results)
	for r := range results {
		if r {
			t.Error("Wait = true after Close of an empty queue")
		}
	}
}

func TestQueueWait(t *testing.T) {
	t.Run("PushWakes", func(t *testing.T) {
		q := NewQueue(0)
		got := make(chan bool, 1)
		go func() { got <- q.Wait(context.Background()) }()
		time.Sleep(5 * time.Millisecond)
		q.Push(msg(1))
		if !<-got {
			t.Fatal("Wait = false after Push")
		}
	})
	t.Run("ContextCancel", func(t *testing.T) {
		q := NewQueue(0)
		ctx, cancel := context.WithCancel(context.Background())
		got := make(chan bool, 1)
		go func() { got <- q.Wait(ctx) }()
		time.Sleep(5 * time.Millisecond)
		cancel()
		if <-got {
			t.Fatal("Wait = true after cancel")
		}
	})
	t.Run("NoLostWakeup", func(t *testing.T) {
		// A producer and a writer racing: every pushed message must be
		// popped, with no wake-up lost.
		q := NewQueue(0)
		const n = 2000
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done := make(chan int)
		go func() {
			total := 0
			var batch []*Message
			for total < n && q.Wait(ctx) {
				batch = q.PopAll(batch[:0])
				total += len(batch)
				clear(batch)
			}
			done <- total
		}()
		for range n {
			for !q.Push(msg(1)) {
				t.Error("Push failed")
				return
			}
		}
		if got := <-done; got != n {
			t.Fatalf("popped %d, want %d", got, n)
		}
	})
	t.Run("Channel", func(t *testing.T) {
		q := NewQueue(0)
		q.Push(msg(1))
		q.Push(msg(1))
		select {
		case <-q.C():
		default:
			t.Fatal("C not signalled after Push")
		}
		if got := q.PopAll(nil); len(got) != 2 {
			t.Fatalf("PopAll = %d, want 2", len(got))
		}
	})
}

func TestQueueSteadyStateAllocs(t *testing.T) {
	q := NewQueue(0)
	m := msg(100)
	batch := make([]*Message, 0, 16)
	allocs := testing.AllocsPerRun(100, func() {
		for range 8 {
			q.Push(m)
		}
		batch = q.PopAll(batch[:0])
		clear(batch)
	})
	if allocs != 0 {
		t.Fatalf("steady-state push/pop allocates %.1f times per run", allocs)
	}
}

func TestQueuePushWait(t *testing.T) {
	t.Run("WaitsForDrain", func(t *testing.T) {
		q := NewQueue(100)
		if !q.Push(msg(80)) {
			t.Fatal("first push refused")
		}
		done := make(chan error, 1)
		go func() { done <- q.PushWait(context.Background(), msg(80)) }()
		select {
		case err := <-done:
			t.Fatalf("PushWait returned %v before the queue was drained", err)
		case <-time.After(20 * time.Millisecond):
		}
		q.PopAll(nil)
		if err := <-done; err != nil {
			t.Fatalf("PushWait = %v after drain", err)
		}
		if q.Len() != 1 || q.Bytes() != 80 {
			t.Fatalf("Len, Bytes = %d, %d", q.Len(), q.Bytes())
		}
	})
	t.Run("ErrQueueClosed", func(t *testing.T) {
		q := NewQueue(100)
		q.Push(msg(80))
		done := make(chan error, 1)
		go func() { done <- q.PushWait(context.Background(), msg(80)) }()
		q.Close()
		if err := <-done; err != ErrQueueClosed {
			t.Fatalf("PushWait = %v, want ErrQueueClosed", err)
		}
	})
	t.Run("ContextDone", func(t *testing.T) {
		q := NewQueue(100)
		q.Push(msg(80))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- q.PushWait(ctx, msg(80)) }()
		cancel()
		if err := <-done; err != context.Canceled {
			t.Fatalf("PushWait = %v, want context.Canceled", err)
		}
	})
	t.Run("NeverAboveBound", func(t *testing.T) {
		// Many replayers against one slow writer: the queue never holds
		// more than half its bound plus one message, and never overflows.
		q := NewQueue(1000)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 200; i++ {
					if err := q.PushWait(context.Background(), msg(100)); err != nil {
						t.Errorf("PushWait: %v", err)
						return
					}
				}
			}()
		}
		got, stop := 0, make(chan struct{})
		go func() { wg.Wait(); close(stop) }()
		var batch []*Message
		for got < 1600 {
			stopped := false
			select {
			case <-q.C():
			case <-stop:
				stopped = true
			}
			if b := q.Bytes(); b > 600 {
				t.Fatalf("queue holds %d bytes, bound 1000 (PushWait waits below 500)", b)
			}
			batch = q.PopAll(batch[:0])
			got += len(batch)
			if stopped && len(batch) == 0 && got < 1600 {
				t.Fatalf("pushers ended with %d of 1600 messages queued (overflowed: %v)", got, q.Overflowed())
			}
		}
		if q.Overflowed() {
			t.Fatal("PushWait overflowed the queue")
		}
	})
}

func TestQueueBudget(t *testing.T) {
	b := NewBudget(250)
	q1, q2 := NewQueueBudget(1000, b), NewQueueBudget(1000, b)
	q1.Push(msg(100))
	q2.Push(msg(100))
	if b.Used() != 200 || b.Exhausted() {
		t.Fatalf("Used %d, Exhausted %v", b.Used(), b.Exhausted())
	}
	q1.Push(msg(100)) // takes the server to 300 > 250: allowed, it was under before
	if !b.Exhausted() {
		t.Fatalf("Used %d: not exhausted", b.Used())
	}
	// Over budget: a lagging queue overflows, an empty one still takes a message.
	if q2.Push(msg(10)) || !q2.Overflowed() {
		t.Fatal("lagging queue did not overflow over budget")
	}
	if b.Used() != 200 {
		t.Fatalf("overflow did not release the queue's bytes: Used %d", b.Used())
	}
	q3 := NewQueueBudget(1000, b)
	if !q3.Push(msg(10)) {
		t.Fatal("empty queue refused over budget")
	}
	q1.PopAll(nil)
	q3.Close()
	q3.Discard()
	if b.Used() != 0 {
		t.Fatalf("Used %d after drain and discard, want 0", b.Used())
	}
}
