package wsapi

// A connection's life (start, end, close reasons) and its outbound queue
// (stream.Sink); its client commands are in commands.go, reading in
// reader.go, writing in writer.go.

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/internal/accesslog"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/ratelimit"
	"github.com/tandemhq/tandem/internal/stream"
)

// conn is one WebSocket connection: the reader runs in serve's goroutine,
// the writer in its own, started on demand (see kick) so that an idle
// connection holds one goroutine, not two; the reader cancels ctx on any
// read error, and the writer owns every write of data frames, pings and
// the close frame.
type conn struct {
	srv *Server
	id  string
	ws  *websocket.Conn
	raw *batchConn
	q   *hub.Queue

	ctx    context.Context
	cancel context.CancelFunc

	closeOnce   sync.Once
	closeCode   int
	closeReason string

	mu   sync.Mutex
	subs map[string]*app.Subscription
	// server holds the keys of server-side subscriptions (under mu).
	server map[string]bool
	// ending: end is releasing the connection; no subscription may be
	// added (under mu).
	ending bool
	// shared is the principal for other goroutines (the connection API,
	// server-side subscriptions); hookMeta is the connect hook's presence
	// metadata (under mu).
	shared   atomic.Pointer[auth.Principal]
	hookMeta json.RawMessage
	// hooked: the connect hook has run (reader goroutine only, as
	// principal); extra are the grants it added.
	hooked bool
	extra  auth.Grants
	// rpcs counts the RPCs in flight.
	rpcs atomic.Int32
	// kicked: the connection API is disconnecting it (set before its
	// disconnect frame is queued; such a connection is no longer listed).
	kicked      atomic.Bool
	connectedAt time.Time
	// start is the cursor each subscription's reply carried, the resume
	// point until a frame of it has been written.
	start map[string]string

	// written maps keys to the cursor of the last frame the writer sent
	// (writer goroutine only, read after it ends; nil until the first).
	written map[string]string

	workers sync.WaitGroup
	// replays admits the subscriptions' snapshots and replays, a few at a
	// time (each holds one page while it reads).
	replays stream.Replays

	// principal is who the connection acts as; read and replaced by the
	// reader goroutine only (auth frames run there).
	principal auth.Principal
	// expiry closes the connection with 4001 when the principal's token
	// expires; authWait closes it with 4010 when an anonymous connection
	// that may do nothing does not authenticate in time. Either may be nil.
	expiry, authWait *time.Timer
	// denied holds keys whose subscription a token refresh revoked: the
	// writer drops their frames still queued (guarded by mu; hasDenied
	// keeps the check off the hot path).
	denied    map[string]struct{}
	hasDenied atomic.Bool

	limit   *ratelimit.Bucket // nil: unlimited
	refused int               // consecutive rate-limited frames

	// writing is true while a writer goroutine runs (and for good once it
	// has sent the close frame); pingDue and bookmarkDue are set by the
	// server's ping and bookmark wheels, which wake the writer instead of
	// keeping one parked per connection with its own tickers.
	writing, pingDue, bookmarkDue atomic.Bool
	// urgent: a connection-specific frame (a reply, an error) is queued;
	// the next write takes no writer slot.
	urgent atomic.Bool
	wake   chan struct{} // kick's signal to a lingering writer
	// lastWrite is when the writer last wrote data frames, kept only
	// with a write window (Config.WriteDelay; writer goroutine only, one
	// writer at a time, handed over through writing).
	lastWrite  time.Time
	writerDone chan struct{} // closed after the close frame

	// echo: the client sent a close frame; the writer answers with its
	// code instead of a close of our own.
	echo bool
	// broken: a batch write failed, possibly half-way through a frame, so
	// nothing more may be written (writer goroutine only).
	broken bool
	// onEnd runs once the connection has ended and released everything.
	onEnd func()
	// access is the upgrade request's access log entry (nil: none);
	// framesIn and framesOut count the data frames for its close line.
	access              *accesslog.Entry
	framesIn, framesOut atomic.Int64

	pollState
}

// pollState is what only polled connections use. Polled connections (see
// poller) have no reader goroutine while idle: readReady runs when the
// socket turns readable, under rmu, and the writer ends the connection
// after the close frame.
type pollState struct {
	polled   bool
	poller   *poller
	rawConn  syscall.RawConn
	pollID   uint32
	rmu      sync.Mutex
	rdone    bool // no more reading (under rmu)
	parser   frameParser
	lastRead atomic.Int64 // unix nanoseconds of the last bytes read
}

var (
	_ stream.Sink = (*conn)(nil)
	_ hub.Laner   = (*conn)(nil)
)

// newConn makes connection id of p; hooked says whether the connect hook
// has run (its result is cr).
func newConn(s *Server, ws *websocket.Conn, raw *batchConn, id string, cr app.ConnectResult, hooked bool) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{srv: s, id: id, ws: ws, raw: raw, q: hub.NewQueueBudget(s.cfg.QueueBytes, s.cfg.Budget), ctx: ctx, cancel: cancel,
		subs: map[string]*app.Subscription{}, start: map[string]string{},
		wake: make(chan struct{}, 1), writerDone: make(chan struct{}), replays: stream.NewReplays(),
		hooked: hooked, extra: cr.Extra, hookMeta: cr.Meta, connectedAt: time.Now().UTC()}
	p := cr.Principal
	c.setPrincipal(p)
	if s.needsAuthFrame(p) {
		c.authWait = time.AfterFunc(s.cfg.AuthTimeout, func() {
			c.closeWith(CloseAuthRequired, "authentication required: send an auth frame within "+s.cfg.AuthTimeout.String(), nil)
		})
	}
	if s.cfg.FrameRate > 0 {
		c.limit = ratelimit.NewBucket(s.cfg.FrameRate, s.cfg.FrameBurst, time.Now())
	}
	return c
}

// serve runs the connection with a reader goroutine until it closes.
func (c *conn) serve() {
	c.begin()
	c.readLoop()
	c.end()
}

// begin registers the connection with the ping and bookmark wheels and
// queues the welcome frame.
func (c *conn) begin() {
	c.lastRead.Store(time.Now().UnixNano())
	c.srv.pings.add(c)
	c.srv.bookmarks.add(c)
	if c.ctx.Err() != nil {
		// Closed (by Shutdown) before begin: end may have unregistered
		// already, so undo what it could not see.
		c.srv.pings.remove(c)
		c.srv.bookmarks.remove(c)
	}
	c.send(Welcome{Type: "welcome", ConnectionID: c.id, Protocol: Protocol,
		HeartbeatSeconds: heartbeatSeconds(c.srv.cfg.PingInterval, c.srv.cfg.BookmarkInterval), MaxFrameBytes: c.srv.cfg.MaxFrameBytes})
}

// bookmarkTick is the server's bookmark wheel serving c: the writer
// queues c's bookmarks.
func (c *conn) bookmarkTick(time.Duration) { c.due(&c.bookmarkDue) }

// pingTick is the server's ping wheel serving c. A polled connection has
// no read deadline, so this is where one that has sent nothing (not even
// a pong) for PongWait is dropped: within PongWait + PingInterval.
func (c *conn) pingTick(time.Duration) {
	cfg := &c.srv.cfg
	if c.polled && time.Since(time.Unix(0, c.lastRead.Load())) > cfg.PongWait {
		c.closeWith(0, "", errors.New("no pong within "+cfg.PongWait.String()))
		return
	}
	c.due(&c.pingDue)
}

// end releases the connection once reading has stopped (serve) or, for a
// polled connection, once the writer has sent the close frame (writeLoop).
func (c *conn) end() {
	c.cancel()
	c.stopTimers()
	c.srv.pings.remove(c)
	c.srv.bookmarks.remove(c)
	c.kick() // a running writer sees ctx done; otherwise this one finishes
	<-c.writerDone
	if c.polled {
		c.rmu.Lock() // wait for a reader still running
		c.rdone = true
		c.rmu.Unlock()
		c.poller.remove(c)
	}
	c.lingeringClose()
	c.mu.Lock()
	c.ending = true // no subscription or worker is added from here on
	c.mu.Unlock()
	c.workers.Wait()
	c.srv.renew.remove(c)
	c.mu.Lock()
	subs := c.subs
	c.subs = map[string]*app.Subscription{}
	c.mu.Unlock()
	for _, sub := range subs {
		c.unsub(sub)
	}
	c.q.Close()
	c.q.Discard()
	c.logClose()
	if c.onEnd != nil {
		c.onEnd()
	}
}

// logClose writes the connection's access log close line (once the
// writer has ended: it reads what the writer recorded).
func (c *conn) logClose() {
	if c.access == nil {
		return
	}
	// RFC 6455's code for a connection that ended without a close frame
	// (never sent on the wire).
	const abnormal = 1006
	c.closeOnce.Do(func() {}) // after whichever closeWith won, or no later one runs
	code, reason := c.closeCode, c.closeReason
	switch {
	case c.broken || code == 0:
		code, reason = abnormal, "connection lost"
	case c.echo:
		reason = "closed by the client"
	}
	if p := c.shared.Load(); p != nil {
		c.access.SetSubject(p.Subject)
	}
	c.access.Close("websocket", code, reason, c.framesIn.Load(), c.framesOut.Load())
}

// closeWith records why the connection ends and stops it; the writer
// sends the close frame. The first reason wins.
func (c *conn) closeWith(code int, reason string, _ error) (first bool) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeReason = code, reason
		c.cancel()
		first = true
	})
	if first {
		c.kick() // the writer sends the close frame
	}
	return first
}

// closeEcho ends the connection the client closed: the writer answers its
// close frame with the same code (RFC 6455 §5.5.1), unless the connection
// was closing already.
func (c *conn) closeEcho(code int) {
	first := false
	c.closeOnce.Do(func() {
		c.closeCode, c.echo = code, true
		c.cancel()
		first = true
	})
	if first {
		c.kick()
	}
}

// send encodes a connection-specific frame and queues it.
func (c *conn) send(frame any) {
	b, err := json.Marshal(frame)
	if err != nil {
		c.srv.cfg.Logger.Error("encode frame", "err", err)
		return
	}
	if c.srv.cfg.Strict {
		if err := c.srv.cfg.Validator.ValidateServerFrame(b); err != nil {
			c.srv.cfg.Logger.Error("frame violates spec/asyncapi.yaml", "err", err, "frame", string(b))
		}
	}
	// A reply is what its client waits for: the writer sends it without
	// queueing for a writer slot behind a fan-out (see admission).
	c.urgent.Store(true)
	c.Push(hub.NewMessage(b))
}

// Push implements stream.Sink.
func (c *conn) Push(m *hub.Message) bool {
	if c.q.Push(m) {
		c.kick()
		return true
	}
	if c.q.Overflowed() {
		c.SlowConsumer()
	}
	return false
}

// PushWait implements stream.Sink: it waits, without polling, until the
// queue is at most half full, so replays go at the client's pace. Errors:
// hub.ErrQueueClosed, ctx.Err().
func (c *conn) PushWait(ctx context.Context, m *hub.Message) error {
	err := c.q.PushWait(ctx, m)
	switch {
	case err == nil:
		c.kick()
	case c.q.Overflowed():
		c.SlowConsumer()
	}
	return err
}

// Lane implements hub.Laner: the connection's subscriptions share one
// fan-out lane, so they receive their events in broadcast order.
func (c *conn) Lane() uint64 { return hub.LaneOf(c.id) }

// Close implements stream.Sink (server shutdown).
func (c *conn) Close() {
	c.closeWith(CloseGoingAway, "server shutting down; reconnect and resume with your cursors", nil)
}

// SlowConsumer implements stream.Sink.
func (c *conn) SlowConsumer() {
	if c.closeWith(CloseSlowConsumer, "slow consumer: resume with the cursors of the last error frame", nil) {
		c.srv.metrics.slowClosed.Inc()
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// heartbeatSeconds is the welcome frame's promise: a ping or a bookmark
// comes at least this often (the longer interval, rounded up, at least 1).
func heartbeatSeconds(ping, bookmark time.Duration) int {
	d := max(ping, bookmark)
	return max(1, int((d+time.Second-1)/time.Second))
}
