package wsapi

// A connection's life (start, end, close reasons) and its client commands
// (subscribe, unsubscribe, publish, auth); reading is in reader.go, writing
// in writer.go.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/ratelimit"
	"github.com/tandemhq/tandem/internal/store"
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
	subs map[string]*stream.Subscription
	// start is the cursor each subscription's reply carried, the resume
	// point until a frame of it has been written.
	start map[string]string
	// releases gives back each subscription's per-principal and
	// server-wide slots (Config.Caps); unsub calls it once.
	releases map[*stream.Subscription]func()

	// written maps keys to the cursor of the last frame the writer sent
	// (writer goroutine only, read after it ends).
	written map[string]string

	workers   sync.WaitGroup
	renewOnce sync.Once
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
	// ping and bookmark timers, which wake the writer instead of keeping
	// one parked per connection with its own tickers.
	writing, pingDue, bookmarkDue atomic.Bool
	pingT, bookmarkT              *time.Timer
	wake                          chan struct{} // kick's signal to a lingering writer
	writerDone                    chan struct{} // closed after the close frame

	// echo: the client sent a close frame; the writer answers with its
	// code instead of a close of our own.
	echo bool
	// broken: a batch write failed, possibly half-way through a frame, so
	// nothing more may be written (writer goroutine only).
	broken bool
	// onEnd runs once the connection has ended and released everything.
	onEnd func()

	// Polled connections (see poller) have no reader goroutine while idle:
	// readReady runs when the socket turns readable, under rmu, and the
	// writer ends the connection after the close frame.
	polled   bool
	poller   *poller
	rawConn  syscall.RawConn
	pollID   uint32
	rmu      sync.Mutex
	rdone    bool // no more reading (under rmu)
	parser   frameParser
	lastRead atomic.Int64 // unix nanoseconds of the last bytes read
}

var _ stream.Sink = (*conn)(nil)

func newConn(s *Server, ws *websocket.Conn, raw *batchConn, p auth.Principal) *conn {
	ctx, cancel := context.WithCancel(context.Background())
	c := &conn{srv: s, id: newID(), ws: ws, raw: raw, q: hub.NewQueueBudget(s.cfg.QueueBytes, s.cfg.Budget), ctx: ctx, cancel: cancel,
		subs: map[string]*stream.Subscription{}, start: map[string]string{}, written: map[string]string{},
		wake: make(chan struct{}, 1), writerDone: make(chan struct{}), replays: stream.NewReplays()}
	c.setPrincipal(p)
	if s.cfg.Auth != nil && s.cfg.Auth.Enabled() && p.Anonymous() && len(p.Grants) == 0 {
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

// begin starts the heartbeat timers and queues the welcome frame.
func (c *conn) begin() {
	cfg := c.srv.cfg
	c.lastRead.Store(time.Now().UnixNano())
	c.mu.Lock() // tick reads the timers under mu
	c.pingT = time.AfterFunc(cfg.PingInterval, c.pingTick)
	c.bookmarkT = time.AfterFunc(cfg.BookmarkInterval, func() { c.tick(&c.bookmarkDue, &c.bookmarkT, cfg.BookmarkInterval) })
	c.mu.Unlock()
	c.send(Welcome{Type: "welcome", ConnectionID: c.id, Protocol: Protocol,
		HeartbeatSeconds: heartbeatSeconds(c.srv.cfg.PingInterval, c.srv.cfg.BookmarkInterval), MaxFrameBytes: c.srv.cfg.MaxFrameBytes})
}

// pingTick is the ping timer firing. A polled connection has no read
// deadline, so this is where one that has sent nothing (not even a pong)
// for PongWait is dropped: within PongWait + PingInterval.
func (c *conn) pingTick() {
	cfg := c.srv.cfg
	if c.polled && time.Since(time.Unix(0, c.lastRead.Load())) > cfg.PongWait {
		c.closeWith(0, "", errors.New("no pong within "+cfg.PongWait.String()))
		return
	}
	c.tick(&c.pingDue, &c.pingT, cfg.PingInterval)
}

// end releases the connection once reading has stopped (serve) or, for a
// polled connection, once the writer has sent the close frame (writeLoop).
func (c *conn) end() {
	c.cancel()
	c.stopTimers()
	c.mu.Lock()
	if c.pingT != nil { // nil: closed before begin
		c.pingT.Stop()
		c.bookmarkT.Stop()
	}
	c.mu.Unlock()
	c.kick() // a running writer sees ctx done; otherwise this one finishes
	<-c.writerDone
	if c.polled {
		c.rmu.Lock() // wait for a reader still running
		c.rdone = true
		c.rmu.Unlock()
		c.poller.remove(c)
	}
	c.lingeringClose()
	c.workers.Wait()
	c.mu.Lock()
	subs := c.subs
	c.subs = map[string]*stream.Subscription{}
	c.mu.Unlock()
	for _, sub := range subs {
		c.unsub(sub)
	}
	c.q.Close()
	c.q.Discard()
	if c.onEnd != nil {
		c.onEnd()
	}
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

// rateLimited answers a frame refused by the rate limit.
func (c *conn) rateLimited(data []byte, retry time.Duration) {
	var head struct {
		Ref any `json:"ref"`
	}
	_ = json.Unmarshal(data, &head)
	ref, _ := head.Ref.(string)
	err := store.Errorf(store.CodeTooManyRequests, "rate limit of %g frames per second exceeded; retry in %s", c.srv.cfg.FrameRate, retry.Round(time.Millisecond))
	if ref == "" || len(ref) > 64 {
		c.send(ErrorFrame{Type: "error", Problem: c.srv.cfg.Problem(err)})
		return
	}
	c.fail(ref, err)
}

func (c *conn) fail(ref string, err error) {
	p := c.srv.cfg.Problem(err)
	var capped *quota.Error // a full server (503) is counted, not logged per refusal
	if p.Status >= 500 && !errors.As(err, &capped) {
		c.srv.cfg.Logger.Error("websocket request failed", "conn", c.id, "err", err)
	}
	c.reply(ref, nil, &p)
}

func (c *conn) subscribe(f Subscribe) {
	topic, err := stream.ParseTopic(f.Topic)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	if err := c.allowed(auth.ActionRead, topic.Path); err != nil {
		c.fail(f.Ref, err)
		return
	}
	isChannel := topic.Kind == stream.TopicChannel || topic.Kind == stream.TopicPresence
	if isChannel && f.Labels != "" {
		c.fail(f.Ref, store.Errorf(store.CodeInvalid, "label selectors apply to resource topics only"))
		return
	}
	sel, err := store.ParseSelector(f.Labels)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	req := stream.Request{Topic: topic, Selector: sel, Snapshot: f.Snapshot}
	if f.Since != "" {
		if f.Snapshot {
			c.fail(f.Ref, store.Errorf(store.CodeInvalid, "since and snapshot cannot be combined"))
			return
		}
		cur, err := stream.ParseCursor(f.Since)
		if err != nil {
			c.fail(f.Ref, err)
			return
		}
		req.Since = &cur
	}
	key := stream.Key(topic.Path, sel)
	c.mu.Lock()
	delete(c.denied, key) // allowed again
	old, dup := c.subs[key]
	if dup && old.Closed() {
		delete(c.subs, key)
		dup = false
	}
	n := len(c.subs)
	c.mu.Unlock()
	if !dup && old != nil {
		c.unsub(old)
	}
	if dup {
		c.fail(f.Ref, store.Errorf(store.CodeConflict, "already subscribed to %q with this selector", f.Topic))
		return
	}
	if n >= c.srv.cfg.MaxSubscriptions {
		c.fail(f.Ref, store.Errorf(store.CodeTooManyRequests, "at most %d subscriptions per connection", c.srv.cfg.MaxSubscriptions))
		return
	}
	release, err := c.srv.cfg.Caps.Subscription(quota.ClientKey(c.principal.Scope(), c.ws.RemoteAddr().String()))
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	var (
		sub *stream.Subscription
		res stream.Result
		run func(context.Context) error
	)
	if isChannel {
		var member *broker.Member
		if topic.Kind == stream.TopicChannel {
			member = &broker.Member{ID: c.memberID(), ConnID: c.id, Meta: f.Meta}
		}
		sub, res, run, err = c.srv.cfg.Channels.Subscribe(c.ctx, req, member, c)
		if err == nil && member != nil {
			c.startPresenceRenewal()
		}
	} else {
		sub, res, run, err = c.srv.cfg.Resources.Subscribe(c.ctx, req, c)
	}
	if err != nil {
		release()
		c.fail(f.Ref, err)
		return
	}
	c.mu.Lock()
	c.subs[key] = sub
	c.start[key] = res.Cursor.String()
	if c.releases == nil {
		c.releases = map[*stream.Subscription]func(){}
	}
	c.releases[sub] = release
	c.mu.Unlock()
	c.srv.metrics.subscriptions.Inc()
	body := SubscribeResult{Topic: res.Topic, Labels: res.Labels, Start: string(res.Start)}
	if res.Cursor.Epoch != "" {
		body.Cursor = res.Cursor.String()
	}
	c.reply(f.Ref, body, nil)
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		if err := c.replays.Run(c.ctx, run); err != nil && c.ctx.Err() == nil {
			// The replay could not complete (e.g. the log was compacted
			// meanwhile): end this subscription and say why.
			c.dropSub(key, sub)
			c.send(ErrorFrame{Type: "error", Topic: res.Topic, Labels: res.Labels, Problem: c.srv.cfg.Problem(err)})
		}
	}()
}

func (c *conn) dropSub(key string, sub *stream.Subscription) {
	c.mu.Lock()
	cur, ok := c.subs[key]
	if ok && cur == sub {
		delete(c.subs, key)
		delete(c.start, key)
	}
	c.mu.Unlock()
	if ok && cur == sub {
		c.unsub(sub)
	}
}

// unsub ends a subscription with the engine that made it and gives back
// its slots. Every path that takes a subscription out of subs calls it
// once: unsubscribe, dropSub (token refresh, replay failure), a closed
// one replaced, and end.
func (c *conn) unsub(sub *stream.Subscription) {
	switch sub.Topic.Kind {
	case stream.TopicChannel, stream.TopicPresence:
		c.srv.cfg.Channels.Unsubscribe(sub)
	default:
		c.srv.cfg.Resources.Unsubscribe(sub)
	}
	c.srv.metrics.subscriptions.Dec()
	c.mu.Lock()
	release := c.releases[sub]
	delete(c.releases, sub)
	c.mu.Unlock()
	if release != nil {
		release()
	}
}

// memberID is the presence member key: the token subject, or the
// connection id for anonymous connections.
func (c *conn) memberID() string {
	if !c.principal.Anonymous() && c.principal.Subject != "" {
		return c.principal.Subject
	}
	return c.id
}

// allowed checks the connection's principal for action on path. Errors:
// auth.ErrInvalidToken (expired), auth.ErrNoToken, auth.ErrInsufficientScope.
func (c *conn) allowed(action auth.Action, path string) error {
	if c.principal.Expired(time.Now()) {
		return &auth.TokenError{Reason: auth.ReasonExpired}
	}
	return c.principal.Check(action, path)
}

// setPrincipal makes p the connection's principal and arms the expiry
// close for its token.
func (c *conn) setPrincipal(p auth.Principal) {
	c.principal = p
	if c.expiry != nil {
		c.expiry.Stop()
		c.expiry = nil
	}
	if !p.ExpiresAt.IsZero() {
		c.expiry = time.AfterFunc(time.Until(p.ExpiresAt), func() {
			c.closeWith(CloseAuthExpired, "token expired; reconnect with a fresh token and resume with your cursors", nil)
		})
	}
}

func (c *conn) stopTimers() {
	if c.expiry != nil {
		c.expiry.Stop()
	}
	if c.authWait != nil {
		c.authWait.Stop()
	}
}

// auth authenticates the connection or refreshes its token. A refresh must
// keep the subject; subscriptions the new grants no longer cover end with
// an error frame naming their topic, so no further event of theirs is
// delivered.
func (c *conn) auth(f Auth) {
	if c.srv.cfg.Auth == nil || !c.srv.cfg.Auth.Enabled() {
		c.fail(f.Ref, store.Errorf(store.CodeInvalid, "authentication is not configured on this server"))
		return
	}
	p, err := c.srv.cfg.Auth.Resolve(f.Token)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	if !c.principal.Anonymous() && p.Subject != c.principal.Subject {
		c.fail(f.Ref, fmt.Errorf("%w: a refreshed token must keep the subject %q", auth.ErrInsufficientScope, c.principal.Subject))
		return
	}
	if c.authWait != nil {
		c.authWait.Stop()
		c.authWait = nil
	}
	c.setPrincipal(p)
	c.mu.Lock()
	type lost struct {
		key string
		sub *stream.Subscription
	}
	var drop []lost
	for key, sub := range c.subs {
		if !p.Can(auth.ActionRead, sub.Topic.Path) {
			drop = append(drop, lost{key, sub})
		}
	}
	c.mu.Unlock()
	if len(drop) > 0 {
		c.mu.Lock()
		if c.denied == nil {
			c.denied = map[string]struct{}{}
		}
		for _, l := range drop {
			c.denied[l.key] = struct{}{}
		}
		c.mu.Unlock()
		c.hasDenied.Store(true)
	}
	for _, l := range drop {
		c.dropSub(l.key, l.sub)
		c.send(ErrorFrame{Type: "error", Topic: l.sub.Topic.Path, Labels: l.sub.Labels, Problem: c.srv.cfg.Problem(p.Check(auth.ActionRead, l.sub.Topic.Path))})
	}
	res := AuthResult{Subject: p.Subject}
	if !p.ExpiresAt.IsZero() {
		t := p.ExpiresAt.UTC()
		res.ExpiresAt = &t
	}
	c.reply(f.Ref, res, nil)
}

// startPresenceRenewal starts (once) the goroutine that renews this
// connection's presence leases; connections without presence pay nothing.
func (c *conn) startPresenceRenewal() {
	c.renewOnce.Do(func() {
		c.workers.Add(1)
		go func() {
			defer c.workers.Done()
			t := time.NewTicker(c.srv.cfg.Channels.RenewInterval())
			defer t.Stop()
			for {
				select {
				case <-c.ctx.Done():
					return
				case <-t.C:
				}
				c.mu.Lock()
				subs := make([]*stream.Subscription, 0, len(c.subs))
				for _, s := range c.subs {
					subs = append(subs, s)
				}
				c.mu.Unlock()
				for _, s := range subs {
					if err := c.srv.cfg.Channels.RenewPresence(c.ctx, s); err != nil && c.ctx.Err() == nil {
						c.srv.cfg.Logger.Warn("presence renewal", "conn", c.id, "err", err)
					}
				}
			}
		}()
	})
}

func (c *conn) publish(f Publish) {
	topic, err := stream.ParseTopic(f.Topic)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	if topic.Kind != stream.TopicChannel {
		c.fail(f.Ref, store.Errorf(store.CodeInvalid, "publish to a channels/{ch}/messages topic; resources change over REST"))
		return
	}
	if err := c.allowed(auth.ActionPublish, topic.Path); err != nil {
		c.fail(f.Ref, err)
		return
	}
	if !c.srv.cfg.Channels.Namespaces.For(topic.Channel).ClientPublish {
		c.fail(f.Ref, store.Errorf(store.CodeForbidden, "clients may not publish to channel %q (its namespace disallows client publishing)", topic.Channel))
		return
	}
	m, err := c.srv.cfg.Channels.Publish(c.ctx, topic.Channel, f.Data, c.memberID())
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	c.reply(f.Ref, stream.ChannelMessageJSON(m), nil)
}

func (c *conn) unsubscribe(f Unsubscribe) {
	topic, err := stream.ParseTopic(f.Topic)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	sel, err := store.ParseSelector(f.Labels)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	key := stream.Key(topic.Path, sel)
	c.mu.Lock()
	sub, ok := c.subs[key]
	c.mu.Unlock()
	if !ok {
		c.fail(f.Ref, store.Errorf(store.CodeNotFound, "not subscribed to %q with this selector", f.Topic))
		return
	}
	c.dropSub(key, sub)
	c.reply(f.Ref, struct{}{}, nil)
}

func (c *conn) reply(ref string, body any, p *api.Problem) {
	r := Reply{Type: "reply", Ref: ref, OK: p == nil, Body: body, Problem: p}
	c.send(r)
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
