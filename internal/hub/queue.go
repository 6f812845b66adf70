package hub

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// DefaultQueueBytes is the byte bound a [Queue] uses when NewQueue is given a
// non-positive limit: 1 MiB, as centrifuge.
const DefaultQueueBytes = 1 << 20

// maxIdleCap is the largest backing array (in messages) a drained queue keeps
// for reuse. Bigger arrays, grown by a burst, are released so that an idle
// connection holds at most a few hundred bytes of queue storage.
const maxIdleCap = 64

// Queue is a connection's outbound queue, bounded in bytes. Any number of
// goroutines may Push; one writer goroutine waits for messages and takes all
// of them at once with PopAll, so it can coalesce them into few writes.
//
// Push never blocks. A Push that would take the queue past its bound
// overflows it: the queued messages are discarded, the queue is closed, and
// every later Push fails. The writer then sees Wait return false and
// Overflowed report true, and closes the connection as a slow consumer.
// Close, by contrast, keeps what is queued so the writer can flush it.
//
// A Queue starts no goroutine and, while idle, holds no large buffer.
// Its methods are safe for concurrent use.
type Queue struct {
	mu         sync.Mutex
	items      []*Message
	bytes      int
	max        int
	closed     bool
	overflowed bool

	notify chan struct{} // capacity 1: "the queue became non-empty"
	done   chan struct{} // closed when the queue closes
	// room is closed (and replaced) whenever PopAll drains the queue, so
	// that PushWait callers wake up without polling; nil while nobody waits.
	room chan struct{}

	budget *Budget // server-wide accounting (nil: none)
}

// Budget is a server-wide bound on the bytes queued for all connections:
// every [Queue] made with [NewQueueBudget] adds what it holds. A queue
// that is already lagging (non-empty) overflows instead of growing while
// the server as a whole is over its budget, and transports refuse new
// subscriptions while [Budget.Exhausted] (see their docs). The zero value
// is not usable; make one with NewBudget. Its methods are safe for
// concurrent use.
type Budget struct {
	max  int64
	used atomic.Int64
}

// NewBudget returns a budget of max bytes; a non-positive max means no
// bound (the budget still counts).
func NewBudget(max int64) *Budget { return &Budget{max: max} }

// Used returns the bytes currently counted against the budget.
func (b *Budget) Used() int64 { return b.used.Load() }

// Max returns the bound (≤ 0: none).
func (b *Budget) Max() int64 { return b.max }

// Exhausted reports whether the counted bytes have reached the bound.
func (b *Budget) Exhausted() bool { return b.max > 0 && b.used.Load() >= b.max }

// Add counts n more bytes (negative to release). Queues call it.
func (b *Budget) Add(n int64) { b.used.Add(n) }

// ErrQueueClosed is returned by [Queue.PushWait] when the queue closed
// (by Close or by overflow) before m could be queued.
var ErrQueueClosed = errors.New("hub: queue closed")

// NewQueue returns an empty queue holding at most maxBytes bytes of messages
// (see [Message.Size]); a non-positive maxBytes means [DefaultQueueBytes].
//
// One message larger than maxBytes is still accepted into an empty queue, so
// a single large event does not disconnect an idle client; the queue is then
// over its bound until drained and refuses (overflows on) any further Push.
func NewQueue(maxBytes int) *Queue {
	return NewQueueBudget(maxBytes, nil)
}

// NewQueueBudget is [NewQueue] with the queue's bytes also counted against
// b (nil: none). While b is over its bound, a Push into a non-empty queue
// overflows it, so the connections that lag are the ones closed.
func NewQueueBudget(maxBytes int, b *Budget) *Queue {
	if maxBytes <= 0 {
		maxBytes = DefaultQueueBytes
	}
	return &Queue{
		max:    maxBytes,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
		budget: b,
	}
}

// Push appends m to the queue without blocking. It returns false if the
// queue is closed or if m would take it past its byte bound; in the latter
// case the queue overflows: it discards its messages and closes.
func (q *Queue) Push(m *Message) bool {
	q.mu.Lock()
	ok, signal := q.pushLocked(m)
	q.mu.Unlock()
	if signal {
		q.signal()
	}
	return ok
}

// pushLocked is Push under q.mu; signal says the queue became non-empty.
func (q *Queue) pushLocked(m *Message) (ok, signal bool) {
	if q.closed {
		return false, false
	}
	n := m.Size()
	wasEmpty := len(q.items) == 0
	if !wasEmpty && (q.bytes+n > q.max || q.budget != nil && q.budget.Exhausted()) {
		q.overflowLocked()
		return false, false
	}
	q.items = append(q.items, m)
	q.bytes += n
	if q.budget != nil {
		q.budget.Add(int64(n))
	}
	return true, wasEmpty
}

// signal tells the writer that the queue became non-empty. Only the empty
// → non-empty transition is signalled; a pending signal already covers any
// later push until the writer drains the queue.
func (q *Queue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// overflowLocked discards what is queued and closes the queue as
// overflowed. Callers hold q.mu.
func (q *Queue) overflowLocked() {
	q.releaseLocked()
	q.overflowed = true
	q.closeLocked()
}

// releaseLocked empties the queue and gives its bytes back to the budget.
// Callers hold q.mu.
func (q *Queue) releaseLocked() {
	clear(q.items)
	if cap(q.items) > maxIdleCap {
		q.items = nil
	} else {
		q.items = q.items[:0]
	}
	if q.budget != nil && q.bytes > 0 {
		q.budget.Add(-int64(q.bytes))
	}
	q.bytes = 0
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// PushWait queues m once the queue holds at most half its bound (or is
// empty), waiting — without polling — for the writer to drain it: replays
// and snapshots go at the client's pace, and never hold more than the
// queue's bound. Errors: ErrQueueClosed when the queue closes (Close, or
// an overflow by a concurrent Push) first; ctx.Err() when ctx ends first.
func (q *Queue) PushWait(ctx context.Context, m *Message) error {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return ErrQueueClosed
		}
		if err := ctx.Err(); err != nil {
			// Checked under the lock: once ctx is cancelled, nothing more
			// of this caller's is queued behind what others queue next.
			q.mu.Unlock()
			return err
		}
		if len(q.items) == 0 || q.bytes <= q.max/2 {
			// Checked and queued under one lock: concurrent PushWaits
			// cannot together take the queue past its bound.
			ok, signal := q.pushLocked(m)
			q.mu.Unlock()
			if signal {
				q.signal()
			}
			if !ok {
				return ErrQueueClosed
			}
			return nil
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-q.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// PopAll removes every queued message and appends them, oldest first, to
// buf, returning the extended slice. Passing the previous result resliced to
// zero length (batch = q.PopAll(batch[:0])) makes the steady state
// allocation-free; the caller should clear(batch) once written so that it
// does not keep sent messages alive. PopAll keeps working after Close, so a
// writer can flush what was queued before the queue closed.
func (q *Queue) PopAll(buf []*Message) []*Message {
	q.mu.Lock()
	buf = append(buf, q.items...)
	q.releaseLocked()
	q.mu.Unlock()
	return buf
}

// Wait blocks until the queue holds a message, the queue is closed, or ctx is
// done. It returns true if there are messages to PopAll (even if the queue
// has since been closed), and false if the queue is closed and empty or ctx
// is done. Closing the queue wakes every waiter.
func (q *Queue) Wait(ctx context.Context) bool {
	for {
		q.mu.Lock()
		n, closed := len(q.items), q.closed
		q.mu.Unlock()
		if n > 0 {
			return true
		}
		if closed {
			return false
		}
		select {
		case <-q.notify:
		case <-q.done:
		case <-ctx.Done():
			return false
		}
	}
}

// C returns a channel that receives a value when the queue becomes
// non-empty, for writers that select on other events too (ping tickers,
// context). Wake-ups may be spurious: after a receive, call PopAll and cope
// with an empty result. Use [Queue.Done] to learn that the queue closed.
func (q *Queue) C() <-chan struct{} { return q.notify }

// Done returns a channel that is closed when the queue closes, by Close or
// by overflow.
func (q *Queue) Done() <-chan struct{} { return q.done }

// Close closes the queue: every later Push fails, waiters wake up, and the
// messages already queued stay available to PopAll. Close is idempotent.
func (q *Queue) Close() {
	q.mu.Lock()
	q.closeLocked()
	q.mu.Unlock()
}

func (q *Queue) closeLocked() {
	if !q.closed {
		q.closed = true
		close(q.done)
	}
}

// Discard empties a closed queue, giving its bytes back to the budget; a
// transport calls it when its connection has ended without flushing.
func (q *Queue) Discard() {
	q.mu.Lock()
	q.releaseLocked()
	q.mu.Unlock()
}

// Closed reports whether the queue has been closed, by Close or by overflow.
func (q *Queue) Closed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Overflowed reports whether the queue closed because a Push exceeded its
// byte bound (the slow-consumer case) rather than by Close.
func (q *Queue) Overflowed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.overflowed
}

// Len returns the number of queued messages.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

// Bytes returns the total size of the queued messages.
func (q *Queue) Bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// MaxBytes returns the queue's byte bound.
func (q *Queue) MaxBytes() int { return q.max }
