package stream

import (
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/store"
)

// Event names on the wire.
const (
	EventCreated  = "resource.created"
	EventUpdated  = "resource.updated"
	EventDeleted  = "resource.deleted"
	EventSnapshot = "resource.snapshot"
	// EventCollectionUpdated is a change of the collection's definition,
	// sent to every subscriber of the collection's topic whatever its
	// selector (never to resource topics).
	EventCollectionUpdated = "collection.updated"
)

// Event is one event of a topic, as every transport carries it
// (WebSocket, SSE, long-poll): a resource change (Resource set), a
// collection change (Collection set) or a channel message (Message set).
type Event struct {
	Topic string
	// Labels is the canonical selector of the subscription ("" for none).
	Labels string
	// Filter is the canonical filter of the subscription ("" for none).
	Filter string
	// Name is EventCreated, EventUpdated, EventDeleted, EventSnapshot or
	// EventMessage or EventCollectionUpdated.
	Name       string
	Cursor     Cursor
	Resource   *store.Resource
	Collection *store.Collection
	Message    *broker.Message
	// Batch is set on the events of changes written by an atomic batch.
	Batch *BatchMark
}

// Frames encodes the server frames the engines send; the edge package
// (internal/wire) implements it with the AsyncAPI types, so the engines
// know nothing of wire formats. Implementations must be safe for
// concurrent use.
type Frames interface {
	// Event encodes an event frame. Errors: the resource data is not
	// valid JSON (a store defect).
	Event(ev Event) ([]byte, error)
	// Synced encodes the frame that ends a snapshot.
	Synced(topic, labels, filter string, cur Cursor) []byte
	// Presence encodes a presence state ("state") or diff ("join",
	// "leave").
	Presence(topic, action string, members []broker.Member) []byte
	// Reset encodes the error frame that ends every subscription of topic
	// because its stream was reset; err says why.
	Reset(topic string, err error) []byte
}

// ChangeView is a change with its states before and after decoded once,
// however many subscriptions look at it. It is not safe for concurrent
// use.
type ChangeView struct {
	store.Change
	cur, prev *store.Doc
}

// NewChangeView returns the view of ch. A change logged before the store
// kept previous states (Prev nil, PrevLabels set) is seen with its
// current data and its previous labels.
func NewChangeView(ch store.Change) *ChangeView {
	v := &ChangeView{Change: ch}
	v.cur = store.NewDoc(&v.Change.Resource)
	switch {
	case ch.Prev != nil:
		v.prev = store.NewDoc(ch.Prev)
	case ch.Type == store.Deleted:
		v.prev = v.cur
	case ch.PrevLabels != nil:
		r := ch.Resource
		r.Labels = ch.PrevLabels
		v.prev = store.NewDoc(&r)
	}
	return v
}

// EventFor decides what a change looks like to a subscription selecting
// p (labels and filter): a resource entering p is created, one leaving it
// is deleted, and a change invisible to it yields ok == false.
func EventFor(v *ChangeView, p store.Predicate) (string, bool) {
	if v.Type == store.CollectionUpdated {
		return EventCollectionUpdated, true // whatever the selector and filter
	}
	if p.IsZero() {
		return "resource." + string(v.Type), true
	}
	switch v.Type {
	case store.Created:
		return EventCreated, p.Matches(v.cur)
	case store.Deleted:
		return EventDeleted, v.prev != nil && p.Matches(v.prev)
	}
	was, is := v.prev != nil && p.Matches(v.prev), p.Matches(v.cur)
	switch {
	case was && is:
		return EventUpdated, true
	case is:
		return EventCreated, true
	case was:
		return EventDeleted, true
	}
	return "", false
}

// changeEvent is the event of change ch named name (EventFor's) for a
// subscription (spec) whose last visible change of ch's batch (if any) is
// at revision end: a collection change carries the collection, any other
// its resource.
func changeEvent(spec *keySpec, topic, name string, cur Cursor, ch store.Change, end int64) Event {
	if ch.Type == store.CollectionUpdated && ch.Collection != nil {
		c := *ch.Collection
		return Event{Topic: topic, Labels: spec.labels, Filter: spec.filter, Name: name, Cursor: cur, Collection: &c}
	}
	ev := resourceEvent(spec, topic, name, cur, ch.Resource)
	ev.Batch = batchMark(ch, end)
	return ev
}

// resourceEvent is the event of a resource state (a change's, or a
// snapshot's).
func resourceEvent(spec *keySpec, topic, name string, cur Cursor, r store.Resource) Event {
	return Event{Topic: topic, Labels: spec.labels, Filter: spec.filter, Name: name, Cursor: cur, Resource: &r}
}
