package hub

import (
	"context"
	"sync"
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
}

// NewQueue returns an empty queue holding at most maxBytes bytes of messages
// (see [Message.Size]); a non-positive maxBytes means [DefaultQueueBytes].
//
// One message larger than maxBytes is still accepted into an empty queue, so
// a single large event does not disconnect an idle client; the queue is then
// over its bound until drained and refuses (overflows on) any further Push.
func NewQueue(maxBytes int) *Queue {
	if maxBytes <= 0 {
		maxBytes = DefaultQueueBytes
	}
	return &Queue{
		max:    maxBytes,
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// Push appends m to the queue without blocking. It returns false if the
// queue is closed or if m would take it past its byte bound; in the latter
// case the queue overflows: it discards its messages and closes.
func (q *Queue) Push(m *Message) bool {
	n := m.Size()
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	wasEmpty := len(q.items) == 0
	if !wasEmpty && q.bytes+n > q.max {
		clear(q.items)
		q.items = nil
		q.bytes = 0
		q.overflowed = true
		q.closeLocked()
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, m)
	q.bytes += n
	q.mu.Unlock()
	if wasEmpty {
		// Signal only the empty → non-empty transition; a pending signal
		// already covers any later push until the writer drains the queue.
		select {
		case q.notify <- struct{}{}:
		default:
		}
	}
	return true
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
	clear(q.items)
	if cap(q.items) > maxIdleCap {
		q.items = nil
	} else {
		q.items = q.items[:0]
	}
	q.bytes = 0
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
