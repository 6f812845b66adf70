// Incoming frames and the subscription protocol on a Conn: dispatch of
// replies, subscription and disconnect frames, server-side subscriptions,
// pausing and resuming slow subscriptions, and (re)establishing or ending
// subscriptions.

package tandem

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"
)

// dispatch routes one server frame. It returns the disconnect frame's
// error, nil for every other frame.
func (cn *Conn) dispatch(b []byte) *DisconnectedError {
	var f serverFrame
	if err := json.Unmarshal(b, &f); err != nil {
		cn.c.logger.Warn("tandem: undecodable frame", "err", err)
		return nil
	}
	switch f.Type {
	case "disconnect":
		cn.c.logger.Info("tandem: disconnected by the server", "reason", f.Reason, "reconnect", f.Reconnect)
		return &DisconnectedError{Reason: f.Reason, Reconnect: f.Reconnect}
	case "subscribed":
		cn.serverSubscribed(&f)
	case "unsubscribed":
		cn.mu.Lock()
		s := cn.byKey[subKey(f.Topic, f.Labels, f.Filter)]
		cn.mu.Unlock()
		if s != nil {
			cn.endSub(s, ErrUnsubscribedByServer)
		}
	case "reply":
		cn.mu.Lock()
		c := cn.pending[f.Ref]
		delete(cn.pending, f.Ref)
		cn.mu.Unlock()
		if c == nil {
			return nil
		}
		if c.onReply != nil {
			c.onReply(&f)
		}
		c.done <- reply{f: &f}
	case "event", "synced", "bookmark", "presence":
		cn.mu.Lock()
		s := cn.byKey[subKey(f.Topic, f.Labels, f.Filter)]
		if s == nil || s.ended {
			cn.mu.Unlock()
			return nil
		}
		var ev *Event
		switch f.Type {
		case "event":
			if s.overLimitLocked() {
				// Drop this event and the rest until the application
				// catches up; resumePaused resubscribes from s.cursor, the
				// last queued event's.
				cn.pauseLocked(s) // unlocks cn.mu
				return nil
			}
			if s.snapshotting {
				s.sawSnapshot = true
			} else if f.Cursor != "" {
				s.cursor = f.Cursor
			}
			ev = &Event{Type: TypeEvent, Topic: f.Topic, Labels: f.Labels, Filter: f.Filter, Event: f.Event, Cursor: f.Cursor, Resource: f.Resource, Collection: f.Collection, Message: f.Message, Batch: f.Batch, Raw: b}
		case "synced":
			s.snapshotting, s.sawSnapshot = false, false
			s.cursor = f.Cursor
			ev = &Event{Type: TypeSynced, Topic: f.Topic, Labels: f.Labels, Filter: f.Filter, Cursor: f.Cursor, Raw: b}
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
			return nil
		}
		cn.mu.Lock()
		key := subKey(f.Topic, f.Labels, f.Filter)
		s := cn.byKey[key]
		if s == nil || s.ended {
			cn.mu.Unlock()
			return nil
		}
		delete(cn.byKey, key)
		s.active = false
		gen, cursor := cn.gen, s.cursor
		cn.mu.Unlock()
		cn.subscriptionFailed(s, gen, replyError(&f, s.topic, s.opts.Labels, cursor))
	}
	return nil
}

// serverSubscribed makes the Subscription of a subscribed frame, live from
// the frame's cursor, and hands it to the WithServerSubscriptions callback.
// Without a callback the frame is ignored, and so are the topic's events.
func (cn *Conn) serverSubscribed(f *serverFrame) {
	fn := cn.c.serverSubs
	if fn == nil {
		cn.c.logger.Info("tandem: server-side subscription ignored (no WithServerSubscriptions)", "topic", f.Topic, "labels", f.Labels)
		return
	}
	s := newSubscription(cn, f.Topic, SubscribeOptions{Labels: f.Labels, Filter: f.Filter}, nil)
	s.server, s.firstDone = true, true
	s.key, s.labels, s.filter, s.cursor, s.active = subKey(f.Topic, f.Labels, f.Filter), f.Labels, f.Filter, f.Cursor, true
	cn.mu.Lock()
	if cn.byKey[s.key] != nil {
		// The server holds one subscription per topic, selector and
		// filter; the one already here keeps receiving its events.
		cn.mu.Unlock()
		cn.c.logger.Warn("tandem: subscribed frame for a topic already subscribed", "topic", f.Topic, "labels", f.Labels, "filter", f.Filter)
		return
	}
	cn.subs[s] = struct{}{}
	cn.byKey[s.key] = s
	cn.mu.Unlock()
	go s.deliver()
	fn(s)
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
	ws, labels, filter, gen := cn.ws, s.labels, s.filter, cn.gen
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
		_ = cn.write(ws, unsubscribeFrame{Type: "unsubscribe", Ref: ref, Topic: s.topic, Labels: labels, Filter: filter})
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
	f := subscribeFrame{Type: "subscribe", Ref: cn.nextRefLocked(), Topic: s.topic, Labels: s.opts.Labels, Filter: s.opts.Filter, Meta: s.meta}
	reset, filter := false, s.filter
	if s.key == "" {
		filter = s.opts.Filter // no reply yet: the canonical form is not known
	}
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
		s.enqueue(Event{Type: TypeReset, Topic: s.topic, Labels: s.opts.Labels, Filter: filter})
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
			_ = cn.write(ws, unsubscribeFrame{Type: "unsubscribe", Ref: ref, Topic: res.Topic, Labels: res.Labels, Filter: res.Filter})
		}
		return
	}
	s.key = subKey(res.Topic, res.Labels, res.Filter)
	s.labels, s.filter = res.Labels, res.Filter
	s.active = true
	s.retries = 0
	cn.byKey[s.key] = s
	if !s.snapshotting && s.cursor == "" {
		s.cursor = res.Cursor
	}
	s.signalFirstLocked(nil)
	cn.mu.Unlock()
}
