package hub

import (
	"context"
	"sync"
	"sync/atomic"
)

// The asynchronous fan-out: Dispatch hands a message to the lanes that
// serve the key's subscribers and returns; each lane's worker delivers it
// to its share of them. A subscriber always belongs to the same lane (see
// Laner), and a lane delivers in the order messages were dispatched, so
// every subscriber sees one key's messages — and one connection all its
// keys' messages — in dispatch order, exactly as with Broadcast, while
// the broadcaster (a publish, the change feed) no longer waits for the
// fan-out and the lanes use every core.

// lane is one fan-out worker's queue. Its worker goroutine runs only while
// the lane has work, so an idle hub holds no goroutine.
type lane struct {
	id       uint8
	maxBytes int

	mu      sync.Mutex
	jobs    []job
	bytes   int
	running bool
	waiting int       // Dispatch calls waiting for room
	room    sync.Cond // signalled when the worker takes jobs
	idle    sync.Cond // signalled when the lane is empty and stopped
	_       [64]byte
}

// job is one message for the subscribers of one key in this lane: the
// snapshot's subscribers whose lane index is the lane's.
// A job with a barrier instead is a marker of [Hub.After].
type job struct {
	m       *Message
	subs    []Subscriber
	lanes   []uint8
	barrier *barrier
}

// barrier runs fn when the last of n lanes has reached its marker.
type barrier struct {
	n  atomic.Int32
	fn func()
}

// laneOf is the lane of subscriber s of key.
func (h *Hub) laneOf(key string, s Subscriber) uint8 {
	n := uint64(len(h.lanes))
	if l, ok := s.(Laner); ok {
		return uint8(l.Lane() % n)
	}
	return uint8(uint64(fnv32a(key)) % n)
}

// LaneOf spreads ids over lanes: a [Laner] may return it for a string
// identity such as a connection id.
func LaneOf(id string) uint64 { return uint64(fnv32a(id)) }

// Dispatch queues m for every subscriber of key and returns how many it
// was queued for, without waiting for them: the hub's lanes deliver it
// (see [Subscriber.Deliver]), in dispatch order per subscriber, counting
// deliveries and overflows in [Hub.Stats] as they go. Dispatch blocks only
// while a lane holds more than its byte bound (Options.LaneBytes): a
// broadcaster faster than the fan-out is slowed down, nothing is dropped.
// Subscribers that join or leave during a Dispatch may or may not receive
// m. Do not mix Dispatch and Broadcast on one key: Broadcast would
// overtake what the lanes still hold.
func (h *Hub) Dispatch(key string, m *Message) int {
	subs, lanes, mask := h.snapshot(key)
	h.broadcasts.Add(1)
	if len(subs) == 0 {
		return 0
	}
	size := m.Size()
	for i := range h.lanes {
		if mask&(1<<i) != 0 {
			h.lanes[i].push(job{m: m, subs: subs, lanes: lanes}, size, h)
		}
	}
	return len(subs)
}

// After calls fn once every message dispatched before After was called
// has been handed to its subscribers: at once, in the calling goroutine,
// when the lanes are idle, or else from the lane that finishes last. The
// functions of successive calls run in call order, never concurrently. fn
// must be quick and must not call Dispatch or Flush.
func (h *Hub) After(fn func()) {
	b := &barrier{fn: fn}
	b.n.Store(int32(len(h.lanes)) + 1) // + 1: ours, released below
	for i := range h.lanes {
		if !h.lanes[i].mark(b) {
			b.done()
		}
	}
	b.done()
}

func (b *barrier) done() {
	if b.n.Add(-1) == 0 {
		b.fn()
	}
}

// mark queues b's marker behind the lane's jobs and reports whether it
// did; an idle lane has nothing pending and takes no marker. A marker
// does not wait for room: it holds no message.
func (l *lane) mark(b *barrier) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.running {
		return false
	}
	l.jobs = append(l.jobs, job{barrier: b})
	return true
}

// push queues j, waiting while the lane is over its bounds, and starts the
// lane's worker unless it runs.
func (l *lane) push(j job, size int, h *Hub) {
	l.mu.Lock()
	for len(l.jobs) > 0 && (l.bytes+size > l.maxBytes || len(l.jobs) >= maxLaneJobs) {
		l.waiting++
		l.room.Wait()
		l.waiting--
	}
	l.jobs = append(l.jobs, j)
	l.bytes += size
	start := !l.running
	l.running = true
	l.mu.Unlock()
	if start {
		go l.run(h)
	}
}

// run delivers the lane's jobs until it is empty, then stops.
func (l *lane) run(h *Hub) {
	var batch []job
	for {
		l.mu.Lock()
		if len(l.jobs) == 0 {
			l.running = false
			l.idle.Broadcast()
			l.mu.Unlock()
			return
		}
		batch = append(batch[:0], l.jobs...)
		clear(l.jobs)
		if cap(l.jobs) > maxIdleCap {
			l.jobs = nil
		} else {
			l.jobs = l.jobs[:0]
		}
		l.bytes = 0
		if l.waiting > 0 {
			l.room.Broadcast()
		}
		l.mu.Unlock()
		for i := range batch {
			l.deliver(&batch[i], h)
		}
		clear(batch)
	}
}

// deliver hands j's message to the lane's subscribers of j, or passes
// j's barrier.
func (l *lane) deliver(j *job, h *Hub) {
	if j.barrier != nil {
		j.barrier.done()
		return
	}
	delivered, refused := 0, 0
	for i, s := range j.subs {
		if j.lanes[i] != l.id {
			continue
		}
		if s.Deliver(j.m) {
			delivered++
		} else {
			refused++
		}
	}
	if delivered > 0 {
		h.deliveries.Add(uint64(delivered))
	}
	if refused > 0 {
		h.overflows.Add(uint64(refused))
	}
}

// Flush waits until every message dispatched before it was called has
// been handed to its subscribers (the lanes are empty and stopped), or ctx
// is done, returning ctx.Err() in that case. Messages dispatched while it
// waits may delay it.
func (h *Hub) Flush(ctx context.Context) error {
	for i := range h.lanes {
		l := &h.lanes[i]
		l.mu.Lock()
		if !l.running {
			l.mu.Unlock()
			continue
		}
		stop := context.AfterFunc(ctx, func() {
			l.mu.Lock()
			l.idle.Broadcast()
			l.mu.Unlock()
		})
		for l.running && ctx.Err() == nil {
			l.idle.Wait()
		}
		l.mu.Unlock()
		stop()
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}
