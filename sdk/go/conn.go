// The Conn: dialling, the read loop, reconnecting with backoff, and its
// lifecycle (Connect, Close, Done, Err).

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
)

// Protocol is the WebSocket subprotocol the SDK offers.
const Protocol = "tandem.v1"

// Close codes the server uses (spec/asyncapi.yaml).
const (
	CloseGoingAway     = 1001 // server shutting down: reconnect and resume
	ClosePolicy        = 1008
	CloseAuthExpired   = 4001 // the token expired without an in-band refresh
	CloseDisconnected  = 4003 // disconnected by the server, after a disconnect frame
	CloseSlowConsumer  = 4008 // the outbound queue overflowed: resume
	CloseAuthRequired  = 4010
	CloseTooManyFrames = 4029

	// CloseForbidden is the former name of CloseDisconnected.
	//
	// Deprecated: the server uses 4003 to disconnect a connection (see
	// DisconnectedError), not to refuse one; use CloseDisconnected.
	CloseForbidden = CloseDisconnected
)

// disconnectGrace bounds the wait for the server's close after a
// disconnect frame.
const disconnectGrace = 5 * time.Second

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
	// StateDisconnected: the connection was lost (Status.Err says why, e.g.
	// a *DisconnectedError that allows reconnecting); the next attempt
	// comes after Status.Delay.
	StateDisconnected
	// StateClosed: the Conn ended for good (Close, or a fatal error such as
	// rejected credentials or a disconnect that forbids reconnecting, in
	// Status.Err).
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
// subscription the client made survives reconnects: it is re-established
// from the last cursor seen, so no event is lost or repeated. Server-side
// subscriptions (see WithServerSubscriptions) end with the connection
// instead. Requests in flight when a connection drops (Publish, RPC, Ping)
// fail with ErrConnectionLost and are not sent again; new ones wait for the
// next connection. When the server disconnects it with a disconnect frame
// that forbids reconnecting, the Conn ends with a *DisconnectedError. It is
// safe for concurrent use.
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
	byKey        map[string]*Subscription // subKey(topic, labels, filter) → subscription, on the current connection
	pending      map[string]*call
	ref          uint64
	err          error // why the Conn ended
	refreshTimer *time.Timer
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

// Err returns why the Conn ended: ErrClosed after Close, a
// *DisconnectedError (errors.Is(err, ErrDisconnected)) when the server
// disconnected it and asked it not to reconnect, or another fatal error
// (ErrUnauthorized, ErrForbidden, a *websocket.CloseError with code 4010 or
// 1008); nil while it runs.
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
	var de *DisconnectedError
	if errors.As(err, &de) {
		return !de.Reconnect
	}
	// A 4003 close without a disconnect frame forbids nothing: reconnect.
	switch closeCode(err) {
	case CloseAuthRequired, ClosePolicy:
		return true
	case CloseAuthExpired:
		return !cn.c.refreshable
	}
	return false
}

// readLoop reads frames until the connection breaks or the Conn closes.
// After a disconnect frame, the connection's end is reported as that
// frame's *DisconnectedError, whatever the close code, and the server has
// disconnectGrace to close it.
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
	var disc *DisconnectedError
	var discDeadline time.Time
	for {
		dl := time.Now().Add(timeout)
		if disc != nil && discDeadline.Before(dl) {
			dl = discDeadline
		}
		_ = ws.SetReadDeadline(dl)
		_, b, err := ws.ReadMessage()
		if err != nil {
			if disc != nil {
				cn.c.logger.Debug("tandem: connection ended after a disconnect frame", "err", err)
				return disc
			}
			return err
		}
		if cn.c.trace != nil {
			cn.c.trace(false, b)
		}
		if d := cn.dispatch(b); d != nil && disc == nil {
			disc, discDeadline = d, time.Now().Add(disconnectGrace)
		}
	}
}

// detach forgets the broken connection ws, fails the requests waiting on it
// and ends its server-side subscriptions. It returns how long the
// connection was up.
func (cn *Conn) detach(ws *websocket.Conn, cause error) time.Duration {
	lost := fmt.Errorf("%w: %w", ErrConnectionLost, cause)
	subErr := lost
	if cn.ctx.Err() != nil {
		subErr = ErrClosed
	}
	var ended []*Subscription
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
		if s.server {
			// The server does not make it again on the next connection.
			delete(cn.subs, s)
			s.ended, s.err = true, subErr
			ended = append(ended, s)
		}
	}
	if cn.refreshTimer != nil {
		cn.refreshTimer.Stop()
		cn.refreshTimer = nil
	}
	cn.mu.Unlock()
	ws.Close()
	for _, s := range ended {
		s.finish()
	}
	for _, c := range pend {
		c.done <- reply{err: lost}
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
