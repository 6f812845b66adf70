package hub

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// frame is a typical small event frame (~200 bytes).
var frame = []byte(`{"type":"event","topic":"collections/orders/resources","cursor":"AAAAAQAAAAAAAAAq",` +
	`"event":"updated","resource":{"id":"01J9Z8","revision":42,"data":{"status":"shipped","total":1299}}}`)

// BenchmarkBroadcast10k measures one Broadcast of one Message to 10,000
// subscribers, each pushing into its own real Queue. The queues are drained
// (outside the timer) every 64 broadcasts, so they never overflow and the
// measured path is the steady state: snapshot read + 10,000 pushes.
func BenchmarkBroadcast10k(b *testing.B) {
	const subscribers = 10_000
	const drainEvery = 64
	h := New(Options{})
	subs := make([]*queueSub, subscribers)
	for i := range subs {
		subs[i] = &queueSub{q: NewQueue(0)}
		h.Subscribe("collections/orders/resources", subs[i])
	}
	m := NewMessage(frame)
	batch := make([]*Message, 0, drainEvery)
	drain := func() {
		for _, s := range subs {
			batch = s.q.PopAll(batch[:0])
			clear(batch)
		}
	}
	// Warm up: grow every queue's buffer once.
	for range drainEvery {
		h.Broadcast("collections/orders/resources", m)
	}
	drain()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%drainEvery == drainEvery-1 {
			b.StopTimer()
			drain()
			b.StartTimer()
		}
		if n := h.Broadcast("collections/orders/resources", m); n != subscribers {
			b.Fatalf("delivered %d", n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subscribers, "ns/delivery")
}

// BenchmarkQueuePushPop measures the per-message cost of a producer pushing
// and a writer draining with PopAll, in batches of 1 and 16 messages.
func BenchmarkQueuePushPop(b *testing.B) {
	for _, batchSize := range []int{1, 16} {
		b.Run(fmt.Sprintf("batch=%d", batchSize), func(b *testing.B) {
			q := NewQueue(0)
			m := NewMessage(frame)
			batch := make([]*Message, 0, batchSize)
			b.ReportAllocs()
			for i := range b.N {
				q.Push(m)
				if i%batchSize == batchSize-1 {
					batch = q.PopAll(batch[:0])
					clear(batch)
				}
			}
		})
	}
}

// BenchmarkDispatch10k is BenchmarkBroadcast10k through the lanes: the
// broadcaster's cost (dispatch-ns/op: how long Dispatch held the caller)
// and the whole fan-out's (ns/delivery, with every lane flushed).
func BenchmarkDispatch10k(b *testing.B) {
	const subscribers = 10_000
	const drainEvery = 64
	h := New(Options{})
	subs := make([]*queueSub, subscribers)
	for i := range subs {
		subs[i] = &queueSub{q: NewQueue(0)}
		h.Subscribe("collections/orders/resources", subs[i])
	}
	m := NewMessage(frame)
	batch := make([]*Message, 0, drainEvery)
	drain := func() {
		for _, s := range subs {
			batch = s.q.PopAll(batch[:0])
			clear(batch)
		}
	}
	for range drainEvery {
		h.Dispatch("collections/orders/resources", m)
	}
	_ = h.Flush(context.Background())
	drain()
	var held time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if i%drainEvery == drainEvery-1 {
			_ = h.Flush(context.Background())
			b.StopTimer()
			drain()
			b.StartTimer()
		}
		t0 := time.Now()
		h.Dispatch("collections/orders/resources", m)
		held += time.Since(t0)
	}
	_ = h.Flush(context.Background())
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/subscribers, "ns/delivery")
	b.ReportMetric(float64(held.Nanoseconds())/float64(b.N), "dispatch-ns/op")
}
