package wsapi

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"sync"
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

// flush writes the batch under a deadline and releases the buffer.
func (c *batchConn) flush(wait time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	b := c.buf
	c.buf = nil
	if b == nil {
		return nil
	}
	var err error
	if len(*b) > 0 {
		// Keep the deadline between wait − slack and wait ahead rather
		// than moving it (a timer update) before every write.
		now := time.Now()
		if slack := min(time.Second, wait/10); c.deadline.Before(now.Add(wait - slack)) {
			c.deadline = now.Add(wait)
			_ = c.Conn.SetWriteDeadline(c.deadline)
		}
		_, err = c.Conn.Write(*b)
	}
	if cap(*b) <= 256<<10 {
		*b = (*b)[:0]
		batchPool.Put(b)
	}
	return err
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
