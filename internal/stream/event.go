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
	// Name is EventCreated, EventUpdated, EventDeleted, EventSnapshot or
	// EventMessage or EventCollectionUpdated.
	Name       string
	Cursor     Cursor
	Resource   *store.Resource
	Collection *store.Collection
	Message    *broker.Message
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
	Synced(topic, labels string, cur Cursor) []byte
	// Presence encodes a presence state ("state") or diff ("join",
	// "leave").
	Presence(topic, action string, members []broker.Member) []byte
	// Reset encodes the error frame that ends every subscription of topic
	// because its stream was reset; err says why.
	Reset(topic string, err error) []byte
}

// EventFor decides what a change looks like to a subscription with the
// given selector: a resource entering the selector is created, one leaving
// it is deleted, and a change invisible to it yields ok == false.
func EventFor(ch store.Change, sel store.Selector) (string, bool) {
	if ch.Type == store.CollectionUpdated {
		return EventCollectionUpdated, true
	}
	if len(sel) == 0 {
		return "resource." + string(ch.Type), true
	}
	switch ch.Type {
	case store.Created:
		return EventCreated, sel.Matches(ch.Resource.Labels)
	case store.Deleted:
		prev := ch.PrevLabels
		if prev == nil {
			prev = ch.Resource.Labels
		}
		return EventDeleted, sel.Matches(prev)
	}
	was, is := ch.PrevLabels != nil && sel.Matches(ch.PrevLabels), sel.Matches(ch.Resource.Labels)
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

// resourceEvent is the event of a resource change.
func resourceEvent(topic, labels, name string, cur Cursor, r store.Resource) Event {
	return Event{Topic: topic, Labels: labels, Name: name, Cursor: cur, Resource: &r}
}

// changeEvent is the event of change ch named name (EventFor's): a
// collection change carries the collection, any other its resource.
func changeEvent(topic, labels, name string, cur Cursor, ch store.Change) Event {
	if ch.Type == store.CollectionUpdated && ch.Collection != nil {
		c := *ch.Collection
		return Event{Topic: topic, Labels: labels, Name: name, Cursor: cur, Collection: &c}
	}
	return resourceEvent(topic, labels, name, cur, ch.Resource)
}
