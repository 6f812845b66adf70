package tandem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/gen/client"
)

// Protocol is the WebSocket subprotocol the SDK offers.
const Protocol = "tandem.v1"

// Close codes the server uses (spec/asyncapi.yaml).
const (
	CloseGoingAway     = 1001 // server shutting down: reconnect and resume
	ClosePolicy        = 1008
	CloseAuthExpired   = 4001 // the token expired without an in-band refresh
	CloseForbidden     = 4003
	CloseSlowConsumer  = 4008 // the outbound queue overflowed: resume
	CloseAuthRequired  = 4010
	CloseTooManyFrames = 4029
)

// stableAfter is how long a connection must have lived for the next
// disconnect to start the backoff from the beginning again.
const stableAfter = 10 * time.Second

// State is a Conn's connection state.
type State int

// Connection states reported through WithStatus.
const (
	// StateConnected: a connection is up and every subscription is being
	// (re)established on it.
	StateConnected State = iota + 1
	// StateDisconnected: the connection was lost (Status.Err says why); the
	// next attempt comes after Status.Delay.
	StateDisconnected
	// StateClosed: the Conn ended for good (Close, or a fatal error such as
	// rejected credentials, in Status.Err).
	StateClosed
)

func (s State) String() string {
	switch s {
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateClosed:
		return "closed"
	}
	return "State(" + strconv.Itoa(int(s)) + ")"
}

// Status is a connection state change.
type Status struct {
	State State
	// Err is why the connection was lost or closed.
	Err error
	// Delay is the wait before the next attempt (StateDisconnected).
	Delay time.Duration
	// Attempt counts consecutive failed attempts (StateDisconnected).
	Attempt int
	// ConnectionID is the server's id of the new connection (StateConnected).
	ConnectionID string
}

// Conn is a realtime connection that reconnects by itself. Every
// subscription survives reconnects: it is re-established from the last
// cursor seen, so no event is lost or repeated. Requests in flight when a
// connection drops (Publish, Ping) fail with ErrConnectionLost; new ones
// wait for the next connection. It is safe for concurrent use.
type Conn struct {
	c      *Client
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	wmu sync.Mutex // serialises data writes

	mu           sync.Mutex
	ws           *websocket.Conn // nil while disconnected
	gen          uint64          // incremented by every new connection
	ready        chan struct{}   // closed while connected
	welcome      Welcome
	upSince      time.Time
	subs         map[*Subscription]struct{}
	byKey        map[string]*Subscription // topic "\x00" labels → subscription, on the current connection
	pending      map[string]*call
	ref          uint64
	err          error // why the Conn ended
	refreshTimer *time.Timer
}

type call struct {
	done    chan reply // buffered: the reader never blocks
	onReply func(*serverFrame)
}

type reply struct {
	f   *serverFrame
	err error
}

// Connect opens a realtime connection. ctx bounds only the first dial; the
// Conn then lives until Close or a fatal error (Done, Err). Errors: the
// first dial failed (ErrUnauthorized, ErrForbidden, network errors).
func (c *Client) Connect(ctx context.Context) (*Conn, error) {
	cn := &Conn{c: c, done: make(chan struct{}), ready: make(chan struct{}),
		subs: map[*Subscription]struct{}{}, byKey: map[string]*Subscription{}, pending: map[string]*call{}}
	cn.ctx, cn.cancel = context.WithCancel(context.Background())
	ws, w, tok, err := cn.dial(ctx)
	if err != nil {
		cn.cancel()
		return nil, err
	}
	cn.attach(ws, w, tok)
	go cn.run(ws)
	return cn, nil
}

// Welcome returns the welcome frame of the current (or last) connection.
func (cn *Conn) Welcome() Welcome {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.welcome
}

// Done is closed when the Conn has ended (after Close or a fatal error).
func (cn *Conn) Done() <-chan struct{} { return cn.done }

// Err returns why the Conn ended: ErrClosed after Close, or the fatal
// error (e.g. a *websocket.CloseError with code 4003, or ErrUnauthorized);
// nil while it runs.
func (cn *Conn) Err() error {
	cn.mu.Lock()
	defer cn.mu.Unlock()
	return cn.err
}

// Close closes the connection (code 1000) and ends every subscription with
// ErrClosed. It returns no error.
func (cn *Conn) Close() error {
	cn.cancel()
	<-cn.done
	return nil
}

func (cn *Conn) notify(st Status) {
	cn.c.logger.Debug("tandem connection", "state", st.State.String(), "err", st.Err, "delay", st.Delay, "attempt", st.Attempt)
	if cn.c.status != nil {
		cn.c.status(st)
	}
}

// wsURL is the WebSocket URL of the server.
func (cn *Conn) wsURL() string {
	u := *cn.c.base
	if u.Scheme == "https" {
		u.Scheme = "wss"
	} else {
		u.Scheme = "ws"
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/v1/ws"
	return u.String()
}

// dial opens a connection and reads its welcome frame. It returns the
// bearer token it presented ("" for none).
func (cn *Conn) dial(ctx context.Context) (*websocket.Conn, Welcome, string, error) {
	h := http.Header{}
	var tok string
	if cn.c.tokens != nil {
		var err error
		if tok, err = cn.c.tokens(ctx); err != nil {
			return nil, Welcome{}, "", fmt.Errorf("tandem: token source: %w", err)
		}
		if tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
	}
	if cn.c.apiKey != "" {
		h.Set("X-API-Key", cn.c.apiKey)
	}
	d := *cn.c.dialer
	d.Subprotocols = []string{Protocol}
	ws, resp, err := d.DialContext(ctx, cn.wsURL(), h)
	if err != nil {
		if resp != nil && resp.StatusCode >= 300 {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
			return nil, Welcome{}, "", check(resp.StatusCode, body)
		}
		return nil, Welcome{}, "", fmt.Errorf("tandem: dial %s: %w", cn.wsURL(), err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		ws.Close()
		return nil, Welcome{}, "", fmt.Errorf("tandem: waiting for welcome: %w", err)
	}
	if cn.c.trace != nil {
		cn.c.trace(false, b)
	}
	var f serverFrame
	if err := json.Unmarshal(b, &f); err != nil || f.Type != "welcome" {
		ws.Close()
		return nil, Welcome{}, "", fmt.Errorf("tandem: first frame is not a welcome: %.200s", b)
	}
	return ws, Welcome{ConnectionID: f.ConnectionID, Protocol: f.Protocol, HeartbeatSeconds: f.HeartbeatSeconds, MaxFrameBytes: f.MaxFrameBytes}, tok, nil
}

// attach makes ws the current connection and re-establishes every
// subscription on it.
func (cn *Conn) attach(ws *websocket.Conn, w Welcome, tok string) {
	cn.mu.Lock()
	cn.ws = ws
	cn.gen++
	gen := cn.gen
	cn.welcome = w
	cn.upSince = time.Now()
	close(cn.ready)
	subs := make([]*Subscription, 0, len(cn.subs))
	for s := range cn.subs {
		subs = append(subs, s)
	}
	cn.mu.Unlock()
	cn.notify(Status{State: StateConnected, ConnectionID: w.ConnectionID})
	for _, s := range subs {
		// A paused subscription whose application caught up while
		// disconnected resumes here; the others wait for it.
		cn.mu.Lock()
		if s.paused && s.pending.Load() == 0 {
			s.paused = false
		}
		cn.mu.Unlock()
		cn.sendSubscribe(s, gen)
	}
	if cn.c.refreshable && tok != "" {
		if exp, ok := jwtExpiry(tok); ok {
			cn.scheduleRefresh(gen, exp)
		}
	}
}

// run reads the current connection until it breaks, then reconnects with
// backoff, until the Conn is closed or a fatal error ends it.
func (cn *Conn) run(ws *websocket.Conn) {
	defer close(cn.done)
	attempt := 0
	for {
		err := cn.readLoop(ws)
		up := cn.detach(ws, err)
		if cn.ctx.Err() != nil {
			cn.finish(ErrClosed)
			return
		}
		if up >= stableAfter {
			attempt = 0
		}
		if cn.fatal(err) {
			cn.finish(err)
			return
		}
		// An expired token with a refreshable source: reconnect at once
		// with a fresh one.
		immediate := cn.c.refreshable && closeCode(err) == CloseAuthExpired
		for {
			var delay time.Duration
			if !immediate {
				delay = cn.c.backoff.Delay(attempt)
				attempt++
			}
			immediate = false
			cn.notify(Status{State: StateDisconnected, Err: err, Delay: delay, Attempt: attempt})
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-cn.ctx.Done():
				t.Stop()
				cn.finish(ErrClosed)
				return
			}
			dctx, cancel := context.WithTimeout(cn.ctx, 30*time.Second)
			nws, w, tok, derr := cn.dial(dctx)
			cancel()
			if derr == nil {
				ws = nws
				cn.attach(ws, w, tok)
				break
			}
			if cn.ctx.Err() != nil {
				cn.finish(ErrClosed)
				return
			}
			err = derr
			if cn.fatal(err) {
				cn.finish(err)
				return
			}
		}
	}
}

func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return 0
}

// fatal reports whether err ends the Conn instead of a reconnect.
func (cn *Conn) fatal(err error) bool {
	if errors.Is(err, ErrForbidden) || errors.Is(err, ErrNotFound) {
		return true
	}
	if errors.Is(err, ErrUnauthorized) {
		return !cn.c.refreshable
	}
	switch closeCode(err) {
	case CloseForbidden, CloseAuthRequired, ClosePolicy:
		return true
	case CloseAuthExpired:
		return !cn.c.refreshable
	}
	return false
}

// readLoop reads frames until the connection breaks or the Conn closes.
func (cn *Conn) readLoop(ws *websocket.Conn) error {
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-cn.ctx.Done():
			_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			ws.Close()
		case <-stop:
		}
	}()
	cn.mu.Lock()
	hb := cn.welcome.HeartbeatSeconds
	cn.mu.Unlock()
	// The server pings or sends a bookmark at least every hb seconds.
	timeout := time.Duration(max(hb, 1))*2*time.Second + 10*time.Second
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(timeout))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(10*time.Second))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil
		}
		return err
	})
	for {
		_ = ws.SetReadDeadline(time.Now().Add(timeout))
		_, b, err := ws.ReadMessage()
		if err != nil {
			return err
		}
		if cn.c.trace != nil {
			cn.c.trace(false, b)
		}
		cn.dispatch(b)
	}
}

// detach forgets the broken connection ws and fails the requests waiting
// on it. It returns how long the connection was up.
func (cn *Conn) detach(ws *websocket.Conn, cause error) time.Duration {
	cn.mu.Lock()
	if cn.ws == ws {
		cn.ws = nil
		cn.ready = make(chan struct{})
	}
	up := time.Since(cn.upSince)
	pend := cn.pending
	cn.pending = map[string]*call{}
	cn.byKey = map[string]*Subscription{}
	for s := range cn.subs {
		s.active, s.unsubscribing = false, false
	}
	if cn.refreshTimer != nil {
		cn.refreshTimer.Stop()
		cn.refreshTimer = nil
	}
	cn.mu.Unlock()
	ws.Close()
	for _, c := range pend {
		c.done <- reply{err: fmt.Errorf("%w: %v", ErrConnectionLost, cause)}
	}
	return up
}

// finish ends the Conn and every subscription with err.
func (cn *Conn) finish(err error) {
	cn.mu.Lock()
	if cn.err == nil {
		cn.err = err
	}
	subs := cn.subs
	cn.subs = map[*Subscription]struct{}{}
	cn.byKey = map[string]*Subscription{}
	pend := cn.pending
	cn.pending = map[string]*call{}
	for s := range subs {
		s.ended, s.err = true, err
		s.signalFirstLocked(err)
	}
	cn.mu.Unlock()
	cn.cancel()
	for s := range subs {
		s.finish()
	}
	for _, c := range pend {
		c.done <- reply{err: err}
	}
	cn.notify(Status{State: StateClosed, Err: err})
}

func (cn *Conn) nextRefLocked() string {
	cn.ref++
	return strconv.FormatUint(cn.ref, 10)
}

// write sends one frame. Errors: the connection broke (the reader will
// notice and reconnect).
func (cn *Conn) write(ws *websocket.Conn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	cn.wmu.Lock()
	defer cn.wmu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return err
	}
	if cn.c.trace != nil {
		cn.c.trace(true, b)
	}
	return nil
}

// request sends the frame build makes for a fresh ref, waiting for a
// connection first, and returns the successful reply. Errors: ctx.Err(),
// ErrConnectionLost, the Conn's end error, *ProblemError.
func (cn *Conn) request(ctx context.Context, build func(ref string) any) (*serverFrame, error) {
	for {
		cn.mu.Lock()
		if cn.err != nil {
			err := cn.err
			cn.mu.Unlock()
			return nil, err
		}
		ws, ready := cn.ws, cn.ready
		if ws == nil {
			cn.mu.Unlock()
			select {
			case <-ready:
				continue
			case <-cn.done:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		ref := cn.nextRefLocked()
		c := &call{done: make(chan reply, 1)}
		cn.pending[ref] = c
		cn.mu.Unlock()
		if err := cn.write(ws, build(ref)); err != nil {
			cn.mu.Lock()
			delete(cn.pending, ref)
			cn.mu.Unlock()
			return nil, fmt.Errorf("%w: %v", ErrConnectionLost, err)
		}
		select {
		case r := <-c.done:
			if r.err != nil {
				return nil, r.err
			}
			if !r.f.OK {
				return nil, replyError(r.f, "", "", "")
			}
			return r.f, nil
		case <-ctx.Done():
			cn.mu.Lock()
			delete(cn.pending, ref)
			cn.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

func replyError(f *serverFrame, topic, labels, cursor string) error {
	p := client.Problem{Type: "about:blank", Title: "Request failed", Status: 500}
	if f.Problem != nil {
		p = *f.Problem
	}
	return newProblemError(p, topic, labels, cursor)
}

// Publish publishes data (any JSON value; json.RawMessage is sent as is)
// to a channel and returns the message the server stored, with its cursor.
// If the connection is down it waits for the next one (bounded by ctx).
// Errors: ErrConnectionLost (the outcome is unknown), ErrForbidden,
// *ProblemError, ctx.Err().
func (cn *Conn) Publish(ctx context.Context, channel string, data any) (*client.ChannelMessage, error) {
	raw, err := rawJSON(data)
	if err != nil {
		return nil, err
	}
	f, err := cn.request(ctx, func(ref string) any {
		return publishFrame{Type: "publish", Ref: ref, Topic: ChannelTopic(channel), Data: raw}
	})
	if err != nil {
		return nil, err
	}
	var m client.ChannelMessage
	if err := json.Unmarshal(f.Body, &m); err != nil {
		return nil, fmt.Errorf("tandem: publish reply: %w", err)
	}
	return &m, nil
}

// Ping sends an application-level ping and returns the round-trip time.
// Errors: as Publish.
func (cn *Conn) Ping(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	_, err := cn.request(ctx, func(ref string) any { return pingFrame{Type: "ping", Ref: ref} })
	return time.Since(start), err
}

// Authenticate sends a fresh token from the client's token source in-band
// (an auth frame), replacing the connection's credentials without
// reconnecting. The SDK does this by itself before a JWT from a
// WithTokenSource source expires. Errors: no token source configured,
// ErrUnauthorized, *ProblemError, ErrConnectionLost.
func (cn *Conn) Authenticate(ctx context.Context) (*AuthResult, error) {
	res, _, err := cn.authenticate(ctx)
	return res, err
}

func (cn *Conn) authenticate(ctx context.Context) (*AuthResult, string, error) {
	if cn.c.tokens == nil {
		return nil, "", errors.New("tandem: Authenticate needs WithToken or WithTokenSource")
	}
	tok, err := cn.c.tokens(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("tandem: token source: %w", err)
	}
	f, err := cn.request(ctx, func(ref string) any { return authFrame{Type: "auth", Ref: ref, Token: tok} })
	if err != nil {
		return nil, tok, err
	}
	var res AuthResult
	if len(f.Body) > 0 {
		if err := json.Unmarshal(f.Body, &res); err != nil {
			return nil, tok, fmt.Errorf("tandem: auth reply: %w", err)
		}
	}
	return &res, tok, nil
}

// scheduleRefresh refreshes the token of connection gen in-band before exp.
func (cn *Conn) scheduleRefresh(gen uint64, exp time.Time) {
	d := refreshDelay(time.Now(), exp)
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.gen != gen || cn.ws == nil {
		return
	}
	if cn.refreshTimer != nil {
		cn.refreshTimer.Stop()
	}
	cn.refreshTimer = time.AfterFunc(d, func() {
		ctx, cancel := context.WithTimeout(cn.ctx, 15*time.Second)
		defer cancel()
		res, tok, err := cn.authenticate(ctx)
		if err != nil {
			// The server closes with 4001 at expiry; the reconnect then
			// presents a fresh token.
			cn.c.logger.Warn("tandem: in-band token refresh failed", "err", err)
			return
		}
		next, ok := time.Time{}, false
		if res.ExpiresAt != "" {
			if t, err := time.Parse(time.RFC3339, res.ExpiresAt); err == nil {
				next, ok = t, true
			}
		}
		if !ok {
			next, ok = jwtExpiry(tok)
		}
		if ok {
			cn.scheduleRefresh(gen, next)
		}
	})
}

// dispatch routes one server frame.
func (cn *Conn) dispatch(b []byte) {
	var f serverFrame
	if err := json.Unmarshal(b, &f); err != nil {
		cn.c.logger.Warn("tandem: undecodable frame", "err", err)
		return
	}
	switch f.Type {
	case "reply":
		cn.mu.Lock()
		c := cn.pending[f.Ref]
		delete(cn.pending, f.Ref)
		cn.mu.Unlock()
		if c == nil {
			return
		}
		if c.onReply != nil {
			c.onReply(&f)
		}
		c.done <- reply{f: &f}
	case "event", "synced", "bookmark", "presence":
		cn.mu.Lock()
		s := cn.byKey[f.Topic+"\x00"+f.Labels]
		if s == nil || s.ended {
			cn.mu.Unlock()
			return
		}
		var ev *Event
		switch f.Type {
		case "event":
			if s.overLimitLocked() {
				// Drop this event and the rest until the application
				// catches up; resumePaused resubscribes from s.cursor, the
				// last queued event's.
				cn.pauseLocked(s) // unlocks cn.mu
				return
			}
			if s.snapshotting {
				s.sawSnapshot = true
			} else if f.Cursor != "" {
				s.cursor = f.Cursor
			}
			ev = &Event{Type: TypeEvent, Topic: f.Topic, Labels: f.Labels, Event: f.Event, Cursor: f.Cursor, Resource: f.Resource, Message: f.Message, Raw: b}
		case "synced":
			s.snapshotting, s.sawSnapshot = false, false
			s.cursor = f.Cursor
			ev = &Event{Type: TypeSynced, Topic: f.Topic, Labels: f.Labels, Cursor: f.Cursor, Raw: b}
		case "bookmark":
			if !s.snapshotting && f.Cursor != "" {
				s.cursor = f.Cursor
			}
		case "presence":
			ev = &Event{Type: TypePresence, Topic: f.Topic, Action: f.Action, Members: f.Members, Raw: b}
		}
		cn.mu.Unlock()
		if ev != nil {
			s.enqueue(*ev)
		}
	case "error":
		if f.Topic == "" {
			// The connection is about to close (e.g. slow consumer); the
			// subscriptions resume from their own cursors.
			return
		}
		cn.mu.Lock()
		key := f.Topic + "\x00" + f.Labels
		s := cn.byKey[key]
		if s == nil || s.ended {
			cn.mu.Unlock()
			return
		}
		delete(cn.byKey, key)
		s.active = false
		gen, cursor := cn.gen, s.cursor
		cn.mu.Unlock()
		cn.subscriptionFailed(s, gen, replyError(&f, s.topic, s.opts.Labels, cursor))
	}
}

// pauseLocked unsubscribes s until its application has taken every queued
// event (see SubscribeOptions.MaxPending). Frames still in flight for it
// are dropped, since it leaves byKey. It is called with cn.mu held and
// releases it.
func (cn *Conn) pauseLocked(s *Subscription) {
	s.paused, s.active = true, false
	s.pauses++
	if cn.byKey[s.key] == s {
		delete(cn.byKey, s.key)
	}
	ws, labels, gen := cn.ws, s.labels, cn.gen
	ref := cn.nextRefLocked()
	// The subscribe that resumes s must reach the server after this
	// unsubscribe has been handled, or it would find the old subscription
	// still there (409): resumePaused waits for the reply.
	s.unsubscribing = ws != nil
	cn.pending[ref] = &call{done: make(chan reply, 1), onReply: func(*serverFrame) {
		cn.mu.Lock()
		if cn.gen == gen {
			s.unsubscribing = false
		}
		cn.mu.Unlock()
		cn.resumePaused(s)
	}}
	cn.mu.Unlock()
	cn.c.logger.Info("tandem: subscription paused until the application catches up", "topic", s.topic, "pending", s.pending.Load())
	if ws != nil {
		_ = cn.write(ws, unsubscribeFrame{Type: "unsubscribe", Ref: ref, Topic: s.topic, Labels: labels})
	}
	// The delivery goroutine may be idle already (the application took
	// everything after this check): make it look again.
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// resumePaused subscribes a paused subscription again, from its cursor,
// once its application has taken every queued event and the server has
// answered the pause's unsubscribe; whichever comes last calls it. Without
// a connection the next one does it.
func (cn *Conn) resumePaused(s *Subscription) {
	cn.mu.Lock()
	if !s.paused || s.ended || s.unsubscribing || s.pending.Load() > 0 {
		cn.mu.Unlock()
		return
	}
	s.paused = false
	gen, connected := cn.gen, cn.ws != nil
	cn.mu.Unlock()
	if connected {
		cn.sendSubscribe(s, gen)
	}
}

// subscriptionFailed handles a subscription the server refused or ended:
// resync-required restarts it with a snapshot under AutoResync, transient
// problems are retried, anything else ends it.
func (cn *Conn) subscriptionFailed(s *Subscription, gen uint64, err error) {
	if errors.Is(err, ErrResyncRequired) && s.opts.AutoResync {
		cn.mu.Lock()
		s.snapshotting, s.sawSnapshot, s.cursor = true, true, ""
		cn.mu.Unlock()
		cn.sendSubscribe(s, gen)
		return
	}
	var pe *ProblemError
	if errors.As(err, &pe) && (pe.Problem.Status == http.StatusTooManyRequests || pe.Problem.Status == http.StatusServiceUnavailable) {
		cn.mu.Lock()
		n := s.retries
		s.retries++
		cn.mu.Unlock()
		time.AfterFunc(cn.c.backoff.Delay(n), func() { cn.sendSubscribe(s, gen) })
		return
	}
	cn.endSub(s, err)
}

// endSub ends a subscription for good with err.
func (cn *Conn) endSub(s *Subscription, err error) {
	cn.mu.Lock()
	if s.ended {
		cn.mu.Unlock()
		return
	}
	s.ended, s.err = true, err
	delete(cn.subs, s)
	if s.key != "" && cn.byKey[s.key] == s {
		delete(cn.byKey, s.key)
	}
	s.signalFirstLocked(err)
	cn.mu.Unlock()
	s.finish()
}

// sendSubscribe (re)establishes s on connection gen: from its cursor, or
// with a snapshot while the snapshot has not completed.
func (cn *Conn) sendSubscribe(s *Subscription, gen uint64) {
	cn.mu.Lock()
	if cn.gen != gen || cn.ws == nil || s.ended || s.active || s.paused {
		cn.mu.Unlock()
		return
	}
	ws := cn.ws
	f := subscribeFrame{Type: "subscribe", Ref: cn.nextRefLocked(), Topic: s.topic, Labels: s.opts.Labels, Meta: s.meta}
	reset := false
	switch {
	case s.presence:
	case s.snapshotting:
		f.Snapshot = true
		reset, s.sawSnapshot = s.sawSnapshot, false
	case s.cursor != "":
		f.Since = s.cursor
	}
	since := f.Since
	cn.pending[f.Ref] = &call{done: make(chan reply, 1), onReply: func(r *serverFrame) { cn.subscribeReplied(s, gen, since, r) }}
	cn.mu.Unlock()
	if reset {
		s.enqueue(Event{Type: TypeReset, Topic: s.topic, Labels: s.opts.Labels})
	}
	_ = cn.write(ws, f) // on error the reader reconnects and resubscribes
}

// subscribeReplied runs in the reader goroutine for every subscribe reply.
func (cn *Conn) subscribeReplied(s *Subscription, gen uint64, since string, r *serverFrame) {
	if !r.OK {
		cn.subscriptionFailed(s, gen, replyError(r, s.topic, s.opts.Labels, since))
		return
	}
	var res subscribeResult
	_ = json.Unmarshal(r.Body, &res)
	cn.mu.Lock()
	if s.ended {
		// Closed while the subscribe was in flight: undo it.
		ws := cn.ws
		ref := cn.nextRefLocked()
		cn.pending[ref] = &call{done: make(chan reply, 1)}
		cn.mu.Unlock()
		if ws != nil && cn.gen == gen {
			_ = cn.write(ws, unsubscribeFrame{Type: "unsubscribe", Ref: ref, Topic: res.Topic, Labels: res.Labels})
		}
		return
	}
	s.key = res.Topic + "\x00" + res.Labels
	s.labels = res.Labels
	s.active = true
	s.retries = 0
	cn.byKey[s.key] = s
	if !s.snapshotting && s.cursor == "" {
		s.cursor = res.Cursor
	}
	s.signalFirstLocked(nil)
	cn.mu.Unlock()
}
