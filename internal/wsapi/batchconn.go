package wsapi

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// batchConn wraps the hijacked connection so the writer can coalesce: while
// a batch is open, every frame gorilla writes is appended to one buffer,
// and flush sends the whole batch with a single write. Outside a batch
// (handshake, control frames from other goroutines) writes go straight
// through. The buffer comes from a pool and is returned after each flush,
// so an idle connection holds no write buffer.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      *[]byte
	deadline time.Time // the write deadline last set on Conn
	// raw is Conn's file descriptor access for flush's non-blocking first
	// write (nil: none, e.g. TLS; rawKnown: looked up).
	raw      syscall.RawConn
	rawKnown bool
}

// SetWriteDeadline is a no-op inside a batch: gorilla sets a deadline
// before every frame, but inside a batch frames only reach the buffer, and
// flush sets the deadline of the one real write. Each real set is a runtime
// timer update, which at 200,000 deliveries/s is worth saving.
func (c *batchConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		return nil
	}
	c.deadline = t
	return c.Conn.SetWriteDeadline(t)
}

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.batching {
		*c.buf = append(*c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.buf = batchPool.Get().(*[]byte)
	c.mu.Unlock()
}

// flush writes the batch under a deadline and releases the buffer. The
// first write does not wait: when the socket takes the whole batch at
// once (the usual case) flush returns with adm still held; otherwise it
// releases adm before it waits for the socket to drain, so a client that
// does not read holds no writer slot (see admission).
func (c *batchConn) flush(wait time.Duration, adm *admission) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	b := c.buf
	c.buf = nil
	if b == nil {
		return nil
	}
	var err error
	if p := *b; len(p) > 0 {
		p = p[c.tryWrite(p):]
		if len(p) > 0 {
			adm.release()
			// Keep the deadline between wait − slack and wait ahead
			// rather than moving it (a timer update) before every write.
			now := time.Now()
			if slack := min(time.Second, wait/10); c.deadline.Before(now.Add(wait - slack)) {
				c.deadline = now.Add(wait)
				_ = c.Conn.SetWriteDeadline(c.deadline)
			}
			_, err = c.Conn.Write(p)
		}
	}
	if cap(*b) <= 256<<10 {
		*b = (*b)[:0]
		batchPool.Put(b)
	}
	return err
}

// tryWrite writes as much of p as the socket takes without waiting, with
// one write(2), and returns how much that was (0 when the connection
// offers no file descriptor, or on any error: the blocking write that
// follows reports it). Callers hold c.mu.
func (c *batchConn) tryWrite(p []byte) int {
	if !c.rawKnown {
		c.rawKnown = true
		if sc, ok := c.Conn.(syscall.Conn); ok {
			c.raw, _ = sc.SyscallConn()
		}
	}
	if c.raw == nil {
		return 0
	}
	n := 0
	_ = c.raw.Write(func(fd uintptr) bool {
		if w, err := syscall.Write(int(fd), p); err == nil && w > 0 {
			n = w
		}
		return true // never wait here
	})
	return n
}

// admission bounds how many connections' writers write to their sockets
// at once (Server.writers: Config.WriteConcurrency, one per CPU by
// default). Without it, a fan-out to
// thousands of connections makes thousands of writer goroutines runnable
// together, and every other goroutine — a REST publish, a reply — queues
// behind all of them; with it the others park and the scheduler serves
// the rest of the server between a few writes. A writer holds its slot
// only while the socket takes its batch without waiting (flush).
type admission struct {
	slots chan struct{}
	held  bool
}

// acquire waits for a slot.
func (a *admission) acquire() {
	a.slots <- struct{}{}
	a.held = true
}

// release gives the slot back if it is held.
func (a *admission) release() {
	if a.held {
		a.held = false
		<-a.slots
	}
}

// hijackWriter hands gorilla a batchConn instead of the raw connection.
type hijackWriter struct {
	http.ResponseWriter
	conn *batchConn
}

func (h *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("websocket: response does not support hijacking")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = &batchConn{Conn: nc}
	return h.conn, brw, nil
}
