package wsapi

// The client commands of a connection (subscribe, unsubscribe, publish,
// auth) and their replies: each decodes its frame, calls app with the
// connection's principal and encodes the answer.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/internal/wire"
)

// rateLimited answers a frame refused by the rate limit.
func (c *conn) rateLimited(data []byte, retry time.Duration) {
	var head struct {
		Ref any `json:"ref"`
	}
	_ = json.Unmarshal(data, &head)
	ref, _ := head.Ref.(string)
	p := wire.NewProblem(wire.KindRateLimited, fmt.Sprintf("rate limit of %g frames per second exceeded; retry in %s", c.srv.cfg.FrameRate, retry.Round(time.Millisecond)), nil)
	if ref == "" || len(ref) > 64 {
		c.send(ErrorFrame{Type: "error", Problem: p})
		return
	}
	c.reply(ref, nil, &p)
}

// fail answers the frame ref with err's problem.
func (c *conn) fail(ref string, err error) {
	p := wire.FrameProblem(err)
	var (
		capped *quota.Error         // a full server (503) is counted, not logged per refusal
		hook   *app.HookFailedError // logged by app
	)
	if p.Status >= 500 && !errors.As(err, &capped) && !errors.As(err, &hook) {
		c.srv.cfg.Logger.Error("websocket request failed", "conn", c.id, "err", err)
	}
	c.reply(ref, nil, &p)
}

// refuse answers the frame ref with a problem of the connection itself
// (its subscriptions, its authentication), not of a use case.
func (c *conn) refuse(ref string, k wire.Kind, detail string) {
	p := wire.NewProblem(k, detail, nil)
	c.reply(ref, nil, &p)
}

// subscription decodes the topic, selector and filter of a subscribe or
// unsubscribe frame and the key they make; false means it answered the
// frame with the error.
func (c *conn) subscription(ref, topicPath, labels, filter string) (stream.Topic, store.Predicate, string, bool) {
	topic, err := stream.ParseTopic(topicPath)
	if err != nil {
		c.fail(ref, err)
		return stream.Topic{}, store.Predicate{}, "", false
	}
	sel, err := store.ParseSelector(labels)
	if err != nil {
		c.fail(ref, err)
		return stream.Topic{}, store.Predicate{}, "", false
	}
	flt, err := store.ParseFilter(filter)
	if err != nil {
		c.fail(ref, &app.InputError{Name: "filter", Detail: store.ErrorMessage(err)})
		return stream.Topic{}, store.Predicate{}, "", false
	}
	p := store.Predicate{Selector: sel, Filter: flt}
	return topic, p, stream.Key(topic.Path, p), true
}

// subscriptions lists the connection's subscriptions now.
func (c *conn) subscriptions() []*app.Subscription {
	c.mu.Lock()
	defer c.mu.Unlock()
	subs := make([]*app.Subscription, 0, len(c.subs))
	for _, s := range c.subs {
		subs = append(subs, s)
	}
	return subs
}

func (c *conn) subscribe(f Subscribe) {
	topic, pred, key, ok := c.subscription(f.Ref, f.Topic, f.Labels, f.Filter)
	if !ok {
		return
	}
	req := app.SubscribeRequest{Topic: topic, Selector: pred.Selector, Filter: pred.Filter, Snapshot: f.Snapshot, ConnID: c.id, Meta: f.Meta, Client: c.remote(), Transport: "websocket"}
	if m := c.connectMeta(); m != nil {
		req.Meta = m
	}
	if f.Since != "" {
		cur, err := stream.ParseCursorFor(f.Since, topic.Path)
		if err != nil {
			c.fail(f.Ref, err)
			return
		}
		req.Since = &cur
	}
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
		c.refuse(f.Ref, wire.KindConflict, fmt.Sprintf("already subscribed to %q with this selector and filter", f.Topic))
		return
	}
	if n >= c.srv.cfg.MaxSubscriptions {
		c.refuse(f.Ref, wire.KindRateLimited, fmt.Sprintf("at most %d subscriptions per connection", c.srv.cfg.MaxSubscriptions))
		return
	}
	sub, res, run, err := c.srv.cfg.App.Subscribe(c.ctx, c.principal, req, c)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	body := SubscribeResult{Topic: res.Topic, Labels: res.Labels, Filter: res.Filter, Cursor: startCursor(res), Start: string(res.Start)}
	if !c.startSub(key, sub, res, run, false, Reply{Type: "reply", Ref: f.Ref, OK: true, Body: body}) {
		// A server-side subscription took the key meanwhile.
		c.refuse(f.Ref, wire.KindConflict, fmt.Sprintf("already subscribed to %q with this selector and filter", f.Topic))
	}
}

// startCursor is where a subscription starts, for its reply or subscribed
// frame ("" for presence topics, which have no cursor).
func startCursor(res stream.Result) string {
	if res.Cursor.Epoch == "" {
		return ""
	}
	return res.Cursor.String()
}

// startSub registers sub under key, queues first (the subscribe reply, or
// the subscribed frame of a server-side subscription) and runs its replay.
// It returns false, having closed sub, when the key was taken meanwhile
// or the connection is ending.
func (c *conn) startSub(key string, sub *app.Subscription, res stream.Result, run func(context.Context) error, server bool, first any) bool {
	c.mu.Lock()
	old, dup := c.subs[key]
	if c.ending || dup && !old.Closed() {
		c.mu.Unlock()
		sub.Close()
		return false
	}
	c.subs[key] = sub
	c.start[key] = res.Cursor.String()
	if server {
		if c.server == nil {
			c.server = map[string]bool{}
		}
		c.server[key] = true
	} else {
		delete(c.server, key)
	}
	if sub.Joined() {
		c.startPresenceRenewal()
	}
	c.workers.Add(1)
	c.mu.Unlock()
	if dup {
		c.unsub(old) // closed already: gives back its count
	}
	c.srv.metrics.subscriptions.Inc()
	c.send(first)
	go func() {
		defer c.workers.Done()
		if err := c.replays.Run(c.ctx, run); err != nil && c.ctx.Err() == nil {
			// The replay could not complete (e.g. the log was compacted
			// meanwhile): end this subscription and say why.
			c.dropSub(key, sub)
			c.send(ErrorFrame{Type: "error", Topic: res.Topic, Labels: res.Labels, Filter: res.Filter, Problem: wire.FrameProblem(err)})
		}
	}()
	return true
}

func (c *conn) dropSub(key string, sub *app.Subscription) {
	c.mu.Lock()
	cur, ok := c.subs[key]
	if ok && cur == sub {
		delete(c.subs, key)
		delete(c.start, key)
		delete(c.server, key)
	}
	c.mu.Unlock()
	if ok && cur == sub {
		c.unsub(sub)
	}
}

// unsub ends a subscription (app.Subscription.Close gives back its slots
// too). Every path that takes a subscription out of subs calls it once:
// unsubscribe, dropSub (token refresh, replay failure), a closed one
// replaced, and end.
func (c *conn) unsub(sub *app.Subscription) {
	sub.Close()
	c.srv.metrics.subscriptions.Dec()
}

// setPrincipal makes p the connection's principal and arms the expiry
// close for its token.
func (c *conn) setPrincipal(p auth.Principal) {
	c.principal = p
	c.shared.Store(&p)
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
// keep the subject (app.App.CheckRefresh); subscriptions the new grants no
// longer cover end with an error frame naming their topic, so no further
// event of theirs is delivered.
func (c *conn) auth(f Auth) {
	if c.srv.cfg.Auth == nil || !c.srv.cfg.Auth.Enabled() {
		c.refuse(f.Ref, wire.KindInvalid, "authentication is not configured on this server")
		return
	}
	p, err := c.srv.cfg.Auth.Resolve(f.Token)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	a := c.srv.cfg.App
	if err := a.CheckRefresh(c.principal, p); err != nil {
		c.fail(f.Ref, err)
		return
	}
	if !c.hooked || c.principal.Anonymous() {
		// The first credentials of a connection that opened anonymous
		// (whether or not the hook already saw it as anonymous): the
		// connect hook decides on who it now is.
		cr, err := a.Connect(c.ctx, p, c.clientInfo())
		if err != nil {
			c.fail(f.Ref, err)
			return
		}
		c.hooked, c.extra = true, cr.Extra
		c.mu.Lock()
		c.hookMeta = cr.Meta
		c.mu.Unlock()
	}
	p = app.WithGrants(p, c.extra)
	if c.authWait != nil {
		c.authWait.Stop()
		c.authWait = nil
	}
	c.setPrincipal(p)
	type lost struct {
		key string
		sub *app.Subscription
		err error
	}
	var drop []lost
	c.mu.Lock()
	for key, sub := range c.subs {
		if c.server[key] {
			continue // the server made it: the client's grants do not matter
		}
		if err := a.Authorize(p, auth.ActionRead, sub.Topic.Path); err != nil {
			drop = append(drop, lost{key, sub, err})
		}
	}
	if len(drop) > 0 {
		if c.denied == nil {
			c.denied = map[string]struct{}{}
		}
		for _, l := range drop {
			c.denied[l.key] = struct{}{}
		}
		c.hasDenied.Store(true)
	}
	c.mu.Unlock()
	for _, l := range drop {
		c.dropSub(l.key, l.sub)
		c.send(ErrorFrame{Type: "error", Topic: l.sub.Topic.Path, Labels: l.sub.Labels, Filter: l.sub.Filter, Problem: wire.FrameProblem(l.err)})
	}
	res := AuthResult{Subject: p.Subject}
	if !p.ExpiresAt.IsZero() {
		t := p.ExpiresAt.UTC()
		res.ExpiresAt = &t
	}
	c.reply(f.Ref, res, nil)
}

// startPresenceRenewal makes the server's renewer renew this
// connection's presence leases; connections without presence pay nothing.
func (c *conn) startPresenceRenewal() { c.srv.renew.add(c) }

func (c *conn) publish(f Publish) {
	topic, err := stream.ParseTopic(f.Topic)
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	m, err := c.srv.cfg.App.Publish(c.ctx, c.principal, topic, f.Data, c.clientInfo())
	if err != nil {
		c.fail(f.Ref, err)
		return
	}
	c.reply(f.Ref, wire.Message(m), nil)
}

func (c *conn) unsubscribe(f Unsubscribe) {
	_, _, key, ok := c.subscription(f.Ref, f.Topic, f.Labels, f.Filter)
	if !ok {
		return
	}
	c.mu.Lock()
	sub, ok := c.subs[key]
	c.mu.Unlock()
	if !ok {
		c.refuse(f.Ref, wire.KindNotFound, fmt.Sprintf("not subscribed to %q with this selector and filter", f.Topic))
		return
	}
	c.dropSub(key, sub)
	c.reply(f.Ref, struct{}{}, nil)
}

func (c *conn) reply(ref string, body any, p *api.Problem) {
	c.send(Reply{Type: "reply", Ref: ref, OK: p == nil, Body: body, Problem: p})
}
