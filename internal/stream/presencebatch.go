// Presence diffs batched per channel: what HandlePresence does with the
// broker's join and leave events when Channels.PresenceBatchWindow > 0.

package stream

import (
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/broker"
)

// DefaultPresenceBatchWindow is the default of `tandem serve
// --presence-batch-window`.
const DefaultPresenceBatchWindow = 50 * time.Millisecond

// maxPresenceFrameMembers caps the members of one join or leave frame
// (about 50 KiB): a larger batch is sent as several frames of each action,
// still leaves first, so no frame approaches the bytes a subscription may
// hold while it sends its state (maxPendingBytes).
const maxPresenceFrameMembers = 500

// presenceBatcher collects each channel's presence events for a window
// that starts with the first event after the previous flush, then sends
// the net change: every member whose last event was a leave in one leave
// frame, then every member whose last event was a join (with that join's
// connection) in one join frame. The two sets are disjoint, so a client
// that applies join as "add or replace" and leave as "remove if present"
// ends with the channel's presence at the end of the window whatever
// happened inside it: join then leave is a leave (a subscriber whose state
// was read between the two saw the member), leave then join is a join.
// An idle channel costs nothing: no timer runs without pending events.
type presenceBatcher struct {
	window time.Duration
	// emit sends one frame; it is called for one channel's frames in
	// order, never concurrently (flushMu).
	emit func(channel, action string, members []broker.Member)

	// flushMu is held by a flush from taking its batch until it has
	// emitted it, so the frames of consecutive windows of a channel are
	// emitted in window order. Lock order: flushMu, then mu.
	flushMu sync.Mutex
	mu      sync.Mutex
	pending map[string]*presenceDiff
}

// presenceDiff is one channel's pending window.
type presenceDiff struct {
	order []string                 // member IDs in first-event order
	last  map[string]memberOutcome // member ID → its last event
}

type memberOutcome struct {
	join   bool
	member broker.Member
}

// add records e, starting the channel's window if it is the first event
// since the last flush.
func (b *presenceBatcher) add(e broker.PresenceEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending == nil {
		b.pending = map[string]*presenceDiff{}
	}
	d := b.pending[e.Channel]
	if d == nil {
		d = &presenceDiff{last: map[string]memberOutcome{}}
		b.pending[e.Channel] = d
		ch := e.Channel
		time.AfterFunc(b.window, func() { b.flush(ch) })
	}
	if _, seen := d.last[e.Member.ID]; !seen {
		d.order = append(d.order, e.Member.ID)
	}
	d.last[e.Member.ID] = memberOutcome{join: e.Join, member: e.Member}
}

// flush emits the channel's pending window: the leave frames, then the
// join frames.
func (b *presenceBatcher) flush(channel string) {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	b.mu.Lock()
	d := b.pending[channel]
	delete(b.pending, channel)
	b.mu.Unlock()
	if d == nil {
		return
	}
	var joins, leaves []broker.Member
	for _, id := range d.order {
		o := d.last[id]
		if o.join {
			joins = append(joins, o.member)
		} else {
			leaves = append(leaves, o.member)
		}
	}
	for _, f := range []struct {
		action  string
		members []broker.Member
	}{{"leave", leaves}, {"join", joins}} {
		for ms := f.members; len(ms) > 0; {
			n := min(len(ms), maxPresenceFrameMembers)
			b.emit(channel, f.action, ms[:n])
			ms = ms[n:]
		}
	}
}
