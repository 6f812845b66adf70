package wsapi

// The connection's writer: one goroutine at a time, started on demand,
// that coalesces the queue into few socket writes, sends pings, bookmarks
// and the close frame, and ends the write side (see conn for the reader).

import (
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

// writerLinger is how long an idle writer waits for more work before it
// exits: a connection that receives regularly (a fan-out subscriber at a
// few messages per second) keeps its writer instead of starting a
// goroutine per message; one that falls idle frees it soon after.
const writerLinger = 250 * time.Millisecond

// DefaultWriteDelay is the write window the server command uses by
// default (Config.WriteDelay), chosen by measurement: see
// docs/benchmarks.md, "Performance round (issue 19)", --ws-write-delay.
const DefaultWriteDelay = 0 * time.Millisecond

// due flags a ping or bookmark as due and wakes the writer, unless the
// connection is ending.
func (c *conn) due(flag *atomic.Bool) {
	if c.ctx.Err() != nil {
		return
	}
	flag.Store(true)
	c.kick()
}

// kick starts the writer goroutine unless one is running, or wakes the one
// lingering. There is at most one writer at a time, and none while the
// connection is idle: it exits writerLinger after its last work, so an idle
// connection holds neither its goroutine stack nor a write buffer (the
// batch buffer is pooled too).
func (c *conn) kick() {
	if c.writing.CompareAndSwap(false, true) {
		go c.writeLoop()
		return
	}
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// hasWork reports whether the writer has something to do.
func (c *conn) hasWork() bool {
	return c.ctx.Err() != nil || c.pingDue.Load() || c.bookmarkDue.Load() || c.q.Len() > 0
}

// writeLoop drains the queue, coalescing everything queued into one socket
// write, sends pings and bookmarks when due, and finally the close frame;
// it returns once it has had nothing to do for writerLinger.
func (c *conn) writeLoop() {
	cfg := c.srv.cfg
	var batch []*hub.Message
	var linger, window *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
		if window != nil {
			window.Stop()
		}
	}()
	for {
		if c.ctx.Err() != nil {
			c.finish(batch)
			close(c.writerDone) // writing stays true: no writer after this
			if c.polled {
				c.end()
			}
			return
		}
		if c.pingDue.Swap(false) {
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteWait)); err != nil {
				c.closeWith(0, "", err)
			}
		}
		if c.bookmarkDue.Swap(false) {
			c.bookmarks()
		}
		if c.q.Len() > 0 {
			if wait := cfg.WriteDelay - time.Since(c.lastWrite); cfg.WriteDelay > 0 && wait > 0 {
				// Written to less than a window ago: let what arrives
				// meanwhile go out in the same write.
				if window == nil {
					window = time.NewTimer(wait)
				} else {
					window.Reset(wait)
				}
				select {
				case <-window.C:
				case <-c.ctx.Done():
					continue
				}
			}
			var err error
			adm := admission{slots: c.srv.writers}
			if !c.urgent.Swap(false) {
				adm.acquire()
			}
			batch, err = c.writeBatch(batch, &adm)
			adm.release()
			if cfg.WriteDelay > 0 { // only the write window reads it
				c.lastWrite = time.Now()
			}
			if err != nil {
				c.writeFailed(err)
			}
			continue
		}
		// Idle: linger for more work, then stop, unless work arrived
		// between the checks above and the store (whoever queued it saw
		// writing still true and relied on this re-check).
		if linger == nil {
			linger = time.NewTimer(writerLinger)
		} else {
			linger.Reset(writerLinger)
		}
		select {
		case <-c.wake:
			continue
		case <-c.ctx.Done():
			continue
		case <-linger.C:
		}
		c.writing.Store(false)
		if !c.hasWork() || !c.writing.CompareAndSwap(false, true) {
			return
		}
	}
}

// writeFailed ends the connection after a failed write. A write that ran
// out of its deadline means the client does not read fast enough: it is
// closed as a slow consumer (the error frame and close 4008 follow if the
// socket can still carry them; see finish).
func (c *conn) writeFailed(err error) {
	c.broken = true
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.SlowConsumer()
		return
	}
	c.closeWith(0, "", err)
}

// writeBatch writes everything queued with a single flush, holding adm
// (a writer slot, when held) only while the socket takes the batch
// without waiting. A frame's cursor counts as delivered (c.written) only
// once the flush carrying it has succeeded.
func (c *conn) writeBatch(batch []*hub.Message, adm *admission) ([]*hub.Message, error) {
	batch = c.q.PopAll(batch[:0])
	if len(batch) == 0 {
		return batch, nil
	}
	wait := c.srv.cfg.WriteWait
	var denied map[string]struct{}
	if c.hasDenied.Load() {
		c.mu.Lock()
		denied = maps.Clone(c.denied)
		c.mu.Unlock()
	}
	c.raw.begin()
	var err error
	n := 0 // frames written into the batch
	for i, m := range batch {
		if _, no := denied[m.Key()]; no && m.Key() != "" {
			batch[i] = nil
			continue
		}
		if err == nil {
			var pm *websocket.PreparedMessage
			if pm, err = prepared(m); err == nil {
				_ = c.ws.SetWriteDeadline(time.Now().Add(wait))
				err = c.ws.WritePreparedMessage(pm)
			}
			if err == nil {
				batch[n] = m
				n++
			}
		}
		if i >= n {
			batch[i] = nil
		}
	}
	if ferr := c.raw.flush(wait, adm); err == nil {
		err = ferr
	}
	if err == nil {
		for _, m := range batch[:n] {
			if m.Cursor() != "" && m.Key() != "" {
				if c.written == nil {
					c.written = map[string]string{}
				}
				c.written[m.Key()] = m.Cursor()
			}
		}
	}
	clear(batch[:n])
	c.framesOut.Add(int64(len(batch)))
	c.srv.metrics.framesOut.Add(float64(len(batch)))
	c.srv.metrics.writes.Inc()
	return batch, err
}

// bookmarks queues the current cursor of every live subscription.
func (c *conn) bookmarks() {
	for _, s := range c.subscriptions() {
		// Bookmark queues under the subscription's lock, so the bookmark
		// cannot land behind a newer event of the same subscription.
		attempted, pushed := s.Bookmark(func(pos stream.Cursor) bool {
			return c.Push(hub.NewEvent(wire.Bookmark(s.Topic.Path, s.Labels, s.Filter, pos), s.Key, pos.String(), 0))
		})
		if attempted && !pushed {
			return
		}
	}
}

// finish ends the connection: on shutdown it flushes what is queued first;
// a slow consumer instead gets an error frame with the cursor of the last
// frame it received for each subscription. Then the close frame.
func (c *conn) finish(batch []*hub.Message) {
	wait := c.srv.cfg.WriteWait
	if c.broken {
		// A write stopped part-way: the client has every frame up to the
		// last complete one, perhaps part of the next, and then sees the
		// connection end without a close frame (1006). It resumes from the
		// cursor of its last complete event and loses nothing.
		c.q.Close()
		c.halfClose()
		return
	}
	if c.echo {
		msg := websocket.FormatCloseMessage(c.closeCode, "")
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait))
		c.halfClose()
		return
	}
	switch c.closeCode {
	case CloseGoingAway, CloseDisconnected:
		if _, err := c.writeBatch(batch, &admission{}); err != nil {
			c.halfClose() // the socket is broken or blocked: no close frame
			return
		}
	case CloseSlowConsumer:
		c.q.Close()
		c.mu.Lock()
		var cursors []TopicCursor
		for key, s := range c.subs {
			cur, ok := c.written[key]
			if !ok {
				cur = c.start[key]
			}
			cursors = append(cursors, TopicCursor{Topic: s.Topic.Path, Labels: s.Labels, Filter: s.Filter, Cursor: cur})
		}
		c.mu.Unlock()
		p := wire.NewProblem(wire.KindSlowConsumer, "the connection could not keep up and its queue overflowed; reconnect and resume from these cursors (the cursor of the last frame flushed to the connection for each subscription)", nil)
		b, _ := json.Marshal(ErrorFrame{Type: "error", Problem: p, Cursors: cursors})
		_ = c.ws.SetWriteDeadline(time.Now().Add(wait))
		_ = c.ws.WriteMessage(websocket.TextMessage, b)
	}
	if c.closeCode != 0 {
		msg := websocket.FormatCloseMessage(c.closeCode, truncateReason(c.closeReason))
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait))
	}
	c.halfClose()
}

// lingerTimeout bounds how long a closing connection keeps reading what the
// peer still sends (a close reply, the rest of an oversized message).
const lingerTimeout = time.Second

// halfClose ends the write side after the close frame and bounds the
// reader, instead of closing the socket at once: closing with unread input
// (say, the rest of a message past the read limit) makes the kernel send a
// TCP reset, which can destroy the close frame before the client reads it.
// serve closes the socket once the reader has stopped (lingeringClose).
func (c *conn) halfClose() {
	if hc, ok := c.raw.Conn.(interface{ CloseWrite() error }); ok {
		_ = hc.CloseWrite()
		_ = c.raw.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		return
	}
	_ = c.ws.Close()
}

// lingeringClose discards what the peer still sends for at most
// lingerTimeout, then closes the socket. Only after the reader has ended.
func (c *conn) lingeringClose() {
	_ = c.raw.Conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	_, _ = io.Copy(io.Discard, io.LimitReader(c.raw.Conn, 4<<20))
	_ = c.ws.Close()
}

func truncateReason(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// prepared returns m as a WebSocket text message ready for
// WritePreparedMessage, framed once per Message for every connection that
// sends it (hub.Message.Framed). Errors: the frame cannot be prepared.
func prepared(m *hub.Message) (*websocket.PreparedMessage, error) {
	f, err := m.Framed(newPrepared)
	if err != nil {
		return nil, err
	}
	return f.(*websocket.PreparedMessage), nil
}

func newPrepared(data []byte) (any, error) {
	return websocket.NewPreparedMessage(websocket.TextMessage, data)
}
