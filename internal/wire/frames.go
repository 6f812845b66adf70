package wire

import (
	"encoding/json"
	"log/slog"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/stream"
)

// EventFrame is an event frame; WebSocket, SSE and long-poll carry the
// same object (AsyncAPI components/schemas/Event).
type EventFrame struct {
	Type     string        `json:"type"`
	Topic    string        `json:"topic"`
	Labels   string        `json:"labels,omitempty"`
	Filter   string        `json:"filter,omitempty"`
	Event    string        `json:"event"`
	Cursor   string        `json:"cursor"`
	Resource *api.Resource `json:"resource,omitempty"`
	// Collection is the new definition of a collection.updated event.
	Collection *api.Collection     `json:"collection,omitempty"`
	Message    *api.ChannelMessage `json:"message,omitempty"`
	// Batch is set on the events of an atomic batch (AsyncAPI
	// components/schemas/EventBatch, OpenAPI EventBatch).
	Batch *api.EventBatch `json:"batch,omitempty"`
}

// EventFrameOf converts an event to its frame.
func EventFrameOf(ev stream.Event) EventFrame {
	f := EventFrame{Type: "event", Topic: ev.Topic, Labels: ev.Labels, Filter: ev.Filter, Event: ev.Name, Cursor: ev.Cursor.String()}
	if ev.Resource != nil {
		r := Resource(*ev.Resource)
		f.Resource = &r
	}
	if ev.Collection != nil {
		c := Collection(*ev.Collection)
		f.Collection = &c
	}
	if ev.Message != nil {
		m := Message(*ev.Message)
		f.Message = &m
	}
	if b := ev.Batch; b != nil {
		f.Batch = &api.EventBatch{Id: b.ID, LastRevision: b.LastRevision, End: b.End}
	}
	return f
}

// SyncedFrame ends a snapshot (AsyncAPI components/schemas/Synced).
type SyncedFrame struct {
	Type   string `json:"type"`
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Filter string `json:"filter,omitempty"`
	Cursor string `json:"cursor"`
}

// BookmarkFrame carries a subscription's current cursor (AsyncAPI
// components/schemas/Bookmark); WebSocket and SSE send it periodically.
type BookmarkFrame struct {
	Type   string `json:"type"`
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Filter string `json:"filter,omitempty"`
	Cursor string `json:"cursor"`
}

// Bookmark encodes the bookmark frame of a subscription at cur.
func Bookmark(topic, labels, filter string, cur stream.Cursor) []byte {
	b, _ := json.Marshal(BookmarkFrame{Type: "bookmark", Topic: topic, Labels: labels, Filter: filter, Cursor: cur.String()})
	return b
}

// PresenceFrame is a presence state or diff (AsyncAPI components/schemas/Presence).
type PresenceFrame struct {
	Type    string               `json:"type"`
	Topic   string               `json:"topic"`
	Action  string               `json:"action"`
	Members []api.PresenceMember `json:"members"`
}

// ErrorFrame ends one subscription (with Topic) or the connection or
// stream (without); with Cursors it precedes a slow-consumer close.
type ErrorFrame struct {
	Type    string        `json:"type"`
	Topic   string        `json:"topic,omitempty"`
	Labels  string        `json:"labels,omitempty"`
	Filter  string        `json:"filter,omitempty"`
	Problem api.Problem   `json:"problem"`
	Cursors []TopicCursor `json:"cursors,omitempty"`
}

// TopicCursor is one subscription's position.
type TopicCursor struct {
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Filter string `json:"filter,omitempty"`
	Cursor string `json:"cursor"`
}

// Frames implements stream.Frames with the AsyncAPI frames. The zero
// value is ready to use.
type Frames struct {
	// Validate, when set (strict mode), checks every frame encoded against
	// spec/asyncapi.yaml; a frame that fails is logged (and still sent).
	Validate func([]byte) error
	Logger   *slog.Logger
}

var _ stream.Frames = Frames{}

// check validates b under strict mode.
func (f Frames) check(b []byte) []byte {
	if f.Validate != nil {
		if err := f.Validate(b); err != nil && f.Logger != nil {
			f.Logger.Error("frame violates spec/asyncapi.yaml", "err", err, "frame", string(b))
		}
	}
	return b
}

// Event implements stream.Frames. Errors: the resource or message data
// is not valid JSON.
func (f Frames) Event(ev stream.Event) ([]byte, error) {
	b, err := json.Marshal(EventFrameOf(ev))
	if err != nil {
		return nil, err
	}
	return f.check(b), nil
}

// Synced implements stream.Frames.
func (f Frames) Synced(topic, labels, filter string, cur stream.Cursor) []byte {
	b, _ := json.Marshal(SyncedFrame{Type: "synced", Topic: topic, Labels: labels, Filter: filter, Cursor: cur.String()})
	return f.check(b)
}

// Presence implements stream.Frames.
func (f Frames) Presence(topic, action string, members []broker.Member) []byte {
	b, _ := json.Marshal(PresenceFrame{Type: "presence", Topic: topic, Action: action, Members: Members(members)})
	return f.check(b)
}

// Reset implements stream.Frames: the error frame of a subscription whose
// stream was reset, with err's problem (through the one error table).
func (f Frames) Reset(topic string, err error) []byte {
	b, _ := json.Marshal(ErrorFrame{Type: "error", Topic: topic, Problem: FrameProblem(err)})
	return f.check(b)
}
