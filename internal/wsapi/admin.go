package wsapi

// What the application drives: the connect hook at the upgrade, RPC
// frames, and the connection API (app.LocalConnections): list this
// node's connections, disconnect them, subscribe and unsubscribe them
// server-side.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

var _ app.LocalConnections = (*Server)(nil)

// MaxRPCsInFlight bounds the RPCs one connection has waiting for the
// application; beyond, an rpc frame gets a 429 reply.
const MaxRPCsInFlight = 32

// needsAuthFrame reports whether p may do nothing until it sends an auth
// frame (auth configured, anonymous without grants).
func (s *Server) needsAuthFrame(p auth.Principal) bool {
	return s.cfg.Auth != nil && s.cfg.Auth.Enabled() && p.Anonymous() && len(p.Grants) == 0
}

// connect runs the connect hook for a connection about to be upgraded,
// unless it must authenticate first (the hook then runs on its first auth
// frame). false: it answered the request with the hook's problem.
func (s *Server) connect(w http.ResponseWriter, r *http.Request, id string, p auth.Principal) (app.ConnectResult, bool, bool) {
	if s.needsAuthFrame(p) {
		return app.ConnectResult{Principal: p}, false, true
	}
	cr, err := s.cfg.App.Connect(r.Context(), p, app.ClientInfo{Transport: "websocket", ConnID: id, Remote: r.RemoteAddr})
	if err != nil {
		retry := ""
		if st := wire.Problem(err).Status; st == http.StatusServiceUnavailable || st == http.StatusTooManyRequests {
			retry = "1"
		}
		refuseUpgrade(w, r, err, retry)
		return cr, false, false
	}
	return cr, true, true
}

func (c *conn) remote() string { return c.ws.RemoteAddr().String() }

func (c *conn) clientInfo() app.ClientInfo {
	return app.ClientInfo{Transport: "websocket", ConnID: c.id, Remote: c.remote()}
}

// connectMeta is the connect hook's presence metadata (nil: none).
func (c *conn) connectMeta() json.RawMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hookMeta
}

// rpc forwards an rpc frame to the application in a goroutine of its own:
// RPCs do not hold the connection's other frames, and their replies come
// in the order the application answers.
func (c *conn) rpc(f RPC) {
	if c.rpcs.Add(1) > MaxRPCsInFlight {
		c.rpcs.Add(-1)
		c.refuse(f.Ref, wire.KindRateLimited, fmt.Sprintf("at most %d RPCs in flight per connection", MaxRPCsInFlight))
		return
	}
	p, req := c.principal, app.RPCRequest{Method: f.Method, Data: f.Data, Client: c.clientInfo()}
	c.workers.Add(1) // the reader's: end waits for it
	go func() {
		defer c.workers.Done()
		defer c.rpcs.Add(-1)
		data, err := c.srv.cfg.App.RPC(c.ctx, p, req)
		if c.ctx.Err() != nil {
			return
		}
		if err != nil {
			c.fail(f.Ref, err)
			return
		}
		c.reply(f.Ref, RPCResult{Data: data}, nil)
	}()
}

// snapshot returns this node's open connections matching subject ("":
// all). A connection that is closing is left out (kicked is set before the
// disconnect frame is queued, the context is cancelled before the close
// frame is written), so once a client has seen either it is neither listed
// nor disconnected again (404), although its goroutines may still be
// winding down.
func (s *Server) snapshot(subject string) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		if c.ctx.Err() != nil || c.kicked.Load() {
			continue
		}
		if subject == "" || c.subject() == subject {
			out = append(out, c)
		}
	}
	return out
}

// subject is the connection's subject now ("" anonymous).
func (c *conn) subject() string {
	p := c.shared.Load()
	if p == nil || p.Anonymous() {
		return ""
	}
	return p.Subject
}

// Connections implements app.LocalConnections.
func (s *Server) Connections(subject, after string, limit int) []app.ConnectionInfo {
	conns := s.snapshot(subject)
	slices.SortFunc(conns, func(x, y *conn) int { return strings.Compare(x.id, y.id) })
	out := []app.ConnectionInfo{}
	for _, c := range conns {
		if c.id <= after {
			continue
		}
		if limit > 0 && len(out) == limit {
			break
		}
		info := app.ConnectionInfo{ID: c.id, Subject: c.subject(), Transport: "websocket", Remote: c.remote(), ConnectedAt: c.connectedAt}
		c.mu.Lock()
		for key, sub := range c.subs {
			info.Subs = append(info.Subs, app.SubscriptionInfo{Topic: sub.Topic.Path, Labels: sub.Labels, Server: c.server[key]})
		}
		c.mu.Unlock()
		slices.SortFunc(info.Subs, func(x, y app.SubscriptionInfo) int {
			return strings.Compare(x.Topic+"\x00"+x.Labels, y.Topic+"\x00"+y.Labels)
		})
		out = append(out, info)
	}
	return out
}

// Disconnect implements app.LocalConnections.
func (s *Server) Disconnect(id, subject, reason string, reconnect bool) int {
	closeReason := reason
	if closeReason == "" {
		closeReason = "disconnected by the server"
	}
	closeReason += "; reconnect=" + strconv.FormatBool(reconnect)
	n := 0
	for _, c := range s.snapshot(subject) {
		if id != "" && c.id != id || !c.kicked.CompareAndSwap(false, true) {
			continue
		}
		c.send(Disconnect{Type: "disconnect", Code: CloseDisconnected, Reason: reason, Reconnect: reconnect})
		if c.closeWith(CloseDisconnected, closeReason, nil) {
			n++
		}
	}
	return n
}

// ServerSubscribe implements app.LocalConnections.
func (s *Server) ServerSubscribe(subject string, topic stream.Topic, sel store.Selector) int {
	n := 0
	for _, c := range s.snapshot(subject) {
		if c.serverSubscribe(topic, sel) {
			n++
		}
	}
	return n
}

// ServerUnsubscribe implements app.LocalConnections.
func (s *Server) ServerUnsubscribe(subject string, topic stream.Topic, sel store.Selector) int {
	key := stream.Key(topic.Path, store.Predicate{Selector: sel})
	n := 0
	for _, c := range s.snapshot(subject) {
		c.mu.Lock()
		sub, ok := c.subs[key]
		c.mu.Unlock()
		if !ok {
			continue
		}
		c.dropSub(key, sub)
		c.send(Unsubscribed{Type: "unsubscribed", Topic: sub.Topic.Path, Labels: sub.Labels})
		n++
	}
	return n
}

// serverSubscribe subscribes the connection to topic live, unless it is
// subscribed with that selector already or at its subscription limit.
func (c *conn) serverSubscribe(topic stream.Topic, sel store.Selector) bool {
	key := stream.Key(topic.Path, store.Predicate{Selector: sel})
	c.mu.Lock()
	old, dup := c.subs[key]
	n, meta := len(c.subs), c.hookMeta
	c.mu.Unlock()
	if dup && !old.Closed() || n >= c.srv.cfg.MaxSubscriptions || c.ctx.Err() != nil {
		return false
	}
	p := *c.shared.Load()
	req := app.SubscribeRequest{Topic: topic, Selector: sel, ConnID: c.id, Meta: meta, Client: c.remote(), Transport: "websocket", Server: true}
	sub, res, run, err := c.srv.cfg.App.Subscribe(c.ctx, p, req, c)
	if err != nil {
		c.srv.cfg.Logger.Warn("server-side subscribe", "conn", c.id, "topic", topic.Path, "err", err)
		return false
	}
	frame := Subscribed{Type: "subscribed", Topic: res.Topic, Labels: res.Labels, Cursor: startCursor(res), Start: string(res.Start)}
	return c.startSub(key, sub, res, run, true, frame)
}
