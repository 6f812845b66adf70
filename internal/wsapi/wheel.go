package wsapi

import (
	"context"
	"sync"
	"time"
)

// wheelSlots is how many groups a wheel spreads connections over: one
// group is due per tick, every interval/wheelSlots.
const wheelSlots = 16

// wheel runs something periodic for every connection registered with it
// — a ping, a bookmark, a presence renewal — from one goroutine for the
// whole server, running only while a connection is registered, instead of
// a timer (or a goroutine and a ticker) per connection. Connections are
// spread over wheelSlots groups by the order they were added; each tick
// serves one group, so every connection is served once per interval, the
// work arrives evenly, and a slow fire delays only later groups of that
// tick.
type wheel struct {
	interval func() time.Duration
	// fire serves one connection, outside the wheel's lock.
	fire func(c *conn, tick time.Duration)

	mu    sync.Mutex
	slots [wheelSlots]map[*conn]struct{}
	where map[*conn]int
	next  int           // the slot the next tick serves
	quit  chan struct{} // closed when the last connection leaves; nil: not running
	busy  *conn         // the connection being served
	idle  sync.Cond     // signalled when busy is cleared
}

// add registers c, starting the wheel if it is not running. c joins the
// slot served last, so it is first served between 15/16 and one interval
// from now, then every interval.
func (w *wheel) add(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, ok := w.where[c]; ok {
		return
	}
	if w.where == nil {
		w.where = map[*conn]int{}
		w.idle.L = &w.mu
	}
	i := (w.next + wheelSlots - 1) % wheelSlots
	if w.slots[i] == nil {
		w.slots[i] = map[*conn]struct{}{}
	}
	w.slots[i][c] = struct{}{}
	w.where[c] = i
	if w.quit == nil {
		w.quit = make(chan struct{})
		go w.run(w.quit)
	}
}

// remove unregisters c, waiting for a fire of c in progress: once it
// returns, c is not served again (so, for renewals, the leaves that
// follow cannot be undone by a late renewal). The wheel stops with its
// last connection.
func (w *wheel) remove(c *conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.busy == c {
		w.idle.Wait()
	}
	i, ok := w.where[c]
	if !ok {
		return
	}
	delete(w.slots[i], c)
	delete(w.where, c)
	if len(w.where) == 0 && w.quit != nil {
		close(w.quit)
		w.quit = nil
	}
}

// run ticks until quit is closed.
func (w *wheel) run(quit chan struct{}) {
	every := max(w.interval()/wheelSlots, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var due []*conn
	for {
		select {
		case <-quit:
			return
		case <-t.C:
		}
		w.mu.Lock()
		due = due[:0]
		for c := range w.slots[w.next] {
			due = append(due, c)
		}
		w.next = (w.next + 1) % wheelSlots
		w.mu.Unlock()
		for _, c := range due {
			w.mu.Lock()
			_, live := w.where[c]
			if live {
				w.busy = c
			}
			w.mu.Unlock()
			if !live {
				continue
			}
			w.fire(c, every)
			w.mu.Lock()
			w.busy = nil
			w.idle.Broadcast()
			w.mu.Unlock()
		}
		clear(due)
	}
}

// renewPresence renews every lease of c's subscriptions, giving the
// broker at most budget (at least a second) for all of them.
func (c *conn) renewPresence(budget time.Duration) {
	ctx, cancel := context.WithTimeout(c.ctx, max(budget, time.Second))
	defer cancel()
	for _, s := range c.subscriptions() {
		if err := s.RenewPresence(ctx); err != nil && c.ctx.Err() == nil {
			c.srv.cfg.Logger.Warn("presence renewal", "conn", c.id, "err", err)
		}
	}
}
