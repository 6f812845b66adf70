package tandem

import (
	"context"
	"sort"
	"sync"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// MirrorOptions configure a Mirror.
type MirrorOptions struct {
	// Labels restricts the mirror to resources matching a label selector.
	Labels string
	// Filter restricts the mirror to resources matching a filter
	// expression (SubscribeOptions.Filter), e.g. `data.qty > 2`: a
	// resource enters the mirror when a change makes it match and leaves
	// it when a change makes it stop matching.
	Filter string
	// OnEvent, when set, sees every event after the mirror applied it
	// (from the subscription's delivery goroutine; it must not block long),
	// collection.updated events included (Event.Collection). The events of
	// an atomic batch are applied together, when its last one (Batch.End)
	// arrives: OnEvent sees only that one.
	OnEvent func(m *Mirror, ev Event)
}

// Mirror is a local copy of a collection (or of the resources matching a
// label selector and a filter) that follows every change: a snapshot, then live events,
// across reconnects and server restarts, without a gap. When the server
// answers resync-required the mirror reloads a fresh snapshot and swaps it
// in atomically once complete; readers see the previous state meanwhile.
// The changes of an atomic batch (Client.Batch) are held back until the
// batch's last event for this mirror and then applied at once, so a reader
// never sees half a batch.
type Mirror struct {
	sub *Subscription

	mu       sync.RWMutex
	items    map[string]client.Resource
	next     map[string]client.Resource // a snapshot being received
	revision int64
	cursor   string
	// collection is the newest definition a collection.updated carried.
	collection *client.Collection
	synced     chan struct{}
	once       sync.Once
	onEvent    func(*Mirror, Event)
	// held are the events of a batch whose last event has not come yet.
	held []Event
}

// maxHeld bounds the events of one batch a mirror holds back: the server
// takes at most 1000 operations per batch.
const maxHeld = 1000

// Mirror starts mirroring a collection. It returns once the server accepted
// the subscription; WaitSynced waits for the initial snapshot. Errors: as
// Subscribe (a *ProblemError naming the position for a bad Filter).
func (cn *Conn) Mirror(ctx context.Context, collection string, opts *MirrorOptions) (*Mirror, error) {
	var o MirrorOptions
	if opts != nil {
		o = *opts
	}
	m := &Mirror{items: map[string]client.Resource{}, next: map[string]client.Resource{}, synced: make(chan struct{}), onEvent: o.OnEvent}
	sub, err := cn.SubscribeFunc(ctx, CollectionTopic(collection), &SubscribeOptions{Labels: o.Labels, Filter: o.Filter, Snapshot: true, AutoResync: true}, m.apply)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.sub = sub
	m.mu.Unlock()
	return m, nil
}

func (m *Mirror) apply(ev Event) {
	m.mu.Lock()
	if ev.Type == TypeEvent && ev.Batch != nil && ev.Event != "resource.snapshot" {
		if len(m.held) > 0 && m.held[0].Batch.Id != ev.Batch.Id {
			m.flushLocked() // another batch began: never expected, the server sends a batch whole
		}
		m.held = append(m.held, ev)
		if !ev.Batch.End && len(m.held) < maxHeld {
			m.mu.Unlock()
			return
		}
		m.flushLocked()
	} else {
		if ev.Type == TypeReset {
			m.held = nil // a fresh snapshot follows
		}
		m.flushLocked() // an unfinished batch: never expected
		m.applyLocked(ev)
	}
	m.mu.Unlock()
	if ev.Type == TypeSynced {
		m.once.Do(func() { close(m.synced) })
	}
	if m.onEvent != nil {
		m.onEvent(m, ev)
	}
}

// flushLocked applies the events held back. Callers hold m.mu.
func (m *Mirror) flushLocked() {
	for _, ev := range m.held {
		m.applyLocked(ev)
	}
	m.held = nil
}

// applyLocked applies one event. Callers hold m.mu.
func (m *Mirror) applyLocked(ev Event) {
	switch ev.Type {
	case TypeReset:
		m.next = map[string]client.Resource{}
	case TypeSynced:
		if m.next != nil {
			m.items, m.next = m.next, nil
		}
		m.cursor = ev.Cursor
	case TypeEvent:
		if r := ev.Resource; r != nil {
			switch ev.Event {
			case "resource.snapshot":
				if m.next == nil {
					m.next = map[string]client.Resource{}
				}
				m.next[r.Id] = *r
			case "resource.deleted":
				delete(m.items, r.Id)
			default:
				m.items[r.Id] = *r
			}
			m.revision = max(m.revision, r.Revision)
		}
		if ev.Collection != nil {
			m.collection = ev.Collection
		}
		if ev.Event != "resource.snapshot" {
			m.cursor = ev.Cursor
		}
	}
}

// Pending returns how many events of an atomic batch the mirror holds
// back until the batch's last event arrives.
func (m *Mirror) Pending() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.held)
}

// WaitSynced waits until the initial snapshot has been applied. Errors:
// ctx.Err(), or why the mirror ended.
func (m *Mirror) WaitSynced(ctx context.Context) error {
	select {
	case <-m.synced:
		return nil
	case <-m.sub.Done():
		return m.sub.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get returns the mirrored resource id.
func (m *Mirror) Get(id string) (client.Resource, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.items[id]
	return r, ok
}

// Items returns the mirrored resources ordered by id.
func (m *Mirror) Items() []client.Resource {
	m.mu.RLock()
	out := make([]client.Resource, 0, len(m.items))
	for _, r := range m.items {
		out = append(out, r)
	}
	m.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	return out
}

// Len returns the number of mirrored resources.
func (m *Mirror) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.items)
}

// Revision returns the newest resource revision the mirror has seen.
func (m *Mirror) Revision() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.revision
}

// Collection returns the collection's definition as of the newest
// collection.updated event the mirror received (ok is false before any:
// read it with the REST API). The mirrored resources are unchanged by such
// an event; resources stored before it may not satisfy a new schema.
func (m *Mirror) Collection() (c client.Collection, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.collection == nil {
		return client.Collection{}, false
	}
	return *m.collection, true
}

// Cursor returns the cursor of the newest change applied.
func (m *Mirror) Cursor() string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cursor
}

// Done is closed when the mirror stopped (Close, or its Conn ended).
func (m *Mirror) Done() <-chan struct{} { return m.sub.Done() }

// Err returns why the mirror stopped.
func (m *Mirror) Err() error { return m.sub.Err() }

// Filter returns the mirror's filter in canonical form ("" for none).
func (m *Mirror) Filter() string { return m.sub.Filter() }

// Close stops following changes; the last state stays readable. It
// returns no error.
func (m *Mirror) Close() error { return m.sub.Close() }
