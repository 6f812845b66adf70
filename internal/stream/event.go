package stream

import (
	"encoding/json"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/store"
)

// Event names on the wire.
const (
	EventCreated  = "resource.created"
	EventUpdated  = "resource.updated"
	EventDeleted  = "resource.deleted"
	EventSnapshot = "resource.snapshot"
)

// EventFrame is the JSON of an event frame; WebSocket, SSE and long-poll
// carry the same object (AsyncAPI components/schemas/Event).
type EventFrame struct {
	Type     string              `json:"type"`
	Topic    string              `json:"topic"`
	Labels   string              `json:"labels,omitempty"`
	Event    string              `json:"event"`
	Cursor   string              `json:"cursor"`
	Resource *api.Resource       `json:"resource,omitempty"`
	Message  *api.ChannelMessage `json:"message,omitempty"`
}

// EventFor decides what a change looks like to a subscription with the
// given selector: a resource entering the selector is created, one leaving
// it is deleted, and a change invisible to it yields ok == false.
func EventFor(ch store.Change, sel store.Selector) (string, bool) {
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

// ToAPIResource converts a store resource to its wire form, the same JSON
// as the REST API's Resource.
func ToAPIResource(r store.Resource) api.Resource {
	labels := r.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	data := r.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return api.Resource{Id: r.ID, Collection: r.Collection, Data: data, Labels: labels, Revision: r.Revision,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// EncodeEvent encodes one event frame. Errors: the resource data is not
// valid JSON (a store defect).
func EncodeEvent(topic, labels, event string, cursor Cursor, r store.Resource) ([]byte, error) {
	res := ToAPIResource(r)
	return json.Marshal(EventFrame{Type: "event", Topic: topic, Labels: labels, Event: event, Cursor: cursor.String(), Resource: &res})
}
