package wsapi

import (
	"context"
	"sync"
	"time"
)

// renewSlots is how many groups the renewer spreads connections over: one
// group is renewed per tick, every interval/renewSlots.
const renewSlots = 16

// renewer renews the presence leases of every connection that joined a
// channel's presence. It is one goroutine for the whole server, running
// while at least one such connection exists, instead of a goroutine and
// a ticker per connection (which cost a 10,000-member channel 10,000
// parked goroutines). Connections are spread over renewSlots groups by
// the order they joined; each tick renews one group, so every connection
// is renewed once per interval (the lease is three intervals), the work
// arrives evenly, and a broker that is slow to answer delays only later
// groups of that tick.
type renewer struct {
	interval func() time.Duration

	mu      sync.Mutex
	slots   [renewSlots]map[*conn]struct{}
	where   map[*conn]int
	next    int // the slot the next tick renews
	running bool
	busy    *conn     // the connection being renewed
	idle    sync.Cond // signalled when busy is cleared
}

// add makes c's leases renewed from now on, starting the renewer if it
// is not running. c joins the slot renewed last, so its first renewal
// comes about one interval after its join.
func (r *renewer) add(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.where[c]; ok {
		return
	}
	if r.where == nil {
		r.where = map[*conn]int{}
		r.idle.L = &r.mu
	}
	i := (r.next + renewSlots - 1) % renewSlots
	if r.slots[i] == nil {
		r.slots[i] = map[*conn]struct{}{}
	}
	r.slots[i][c] = struct{}{}
	r.where[c] = i
	if !r.running {
		r.running = true
		go r.run()
	}
}

// remove stops renewing c's leases (the connection ended), waiting for a
// renewal of c in progress: once it returns, no lease of c is renewed, so
// the leaves that follow cannot be undone by a late renewal.
func (r *renewer) remove(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.busy == c {
		r.idle.Wait()
	}
	if i, ok := r.where[c]; ok {
		delete(r.slots[i], c)
		delete(r.where, c)
	}
}

// run ticks until no connection is left to renew.
func (r *renewer) run() {
	every := max(r.interval()/renewSlots, time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	var due []*conn
	for range t.C {
		r.mu.Lock()
		if len(r.where) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		due = due[:0]
		for c := range r.slots[r.next] {
			due = append(due, c)
		}
		r.next = (r.next + 1) % renewSlots
		r.mu.Unlock()
		for _, c := range due {
			r.mu.Lock()
			_, live := r.where[c]
			if live {
				r.busy = c
			}
			r.mu.Unlock()
			if !live {
				continue
			}
			c.renewPresence(every)
			r.mu.Lock()
			r.busy = nil
			r.idle.Broadcast()
			r.mu.Unlock()
		}
		clear(due)
	}
}

// renewPresence renews every lease of c's subscriptions, giving the
// broker at most budget for all of them.
func (c *conn) renewPresence(budget time.Duration) {
	ctx, cancel := context.WithTimeout(c.ctx, max(budget, time.Second))
	defer cancel()
	for _, s := range c.subscriptions() {
		if err := s.RenewPresence(ctx); err != nil && c.ctx.Err() == nil {
			c.srv.cfg.Logger.Warn("presence renewal", "conn", c.id, "err", err)
		}
	}
}
