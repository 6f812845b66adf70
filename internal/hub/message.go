// Package hub is Tandem's per-node fan-out core: it maps subscription keys to
// the local subscribers interested in them and hands each of them the same
// encoded event, without ever blocking on one of them.
//
// The package is independent of transports. A transport (WebSocket, SSE,
// long-poll) implements [Subscriber], usually by pushing into a byte-bounded
// [Queue] drained by one writer goroutine per connection. The only transport
// type that appears here is gorilla/websocket's PreparedMessage, which a
// [Message] builds lazily, once, for every WebSocket writer that sends it.
//
// Keys are opaque strings of the form "topic" or "topic?selector"; the topic
// is the part before the first '?'. The hub does not interpret selectors: the
// caller lists the keys of a topic with [Hub.Keys], decides which of them an
// event matches and broadcasts to each of those keys.
package hub

import (
	"sync"

	"github.com/gorilla/websocket"
)

// Message is one server frame encoded once and shared, unmodified, by every
// subscriber it is delivered to. It is safe for concurrent use.
type Message struct {
	data []byte

	// Stream metadata, set by NewEvent: the subscription key the frame was
	// encoded for, the cursor it carries and its position in its stream.
	key    string
	cursor string
	seq    int64

	once     sync.Once
	prepared *websocket.PreparedMessage
	err      error
}

// NewMessage returns a Message holding data, the JSON bytes of one server
// frame. The Message keeps data without copying it: the caller must not
// modify data afterwards.
func NewMessage(data []byte) *Message {
	return &Message{data: data}
}

// NewEvent returns a Message for a frame of the stream of key, carrying
// cursor, at position seq (a store revision or channel offset; 0 for frames
// outside the ordered stream, such as snapshot items). Writers record the
// cursor of the last frame they sent for each key so that a client closed
// as a slow consumer learns where to resume.
func NewEvent(data []byte, key, cursor string, seq int64) *Message {
	return &Message{data: data, key: key, cursor: cursor, seq: seq}
}

// Key returns the subscription key the frame belongs to ("" for frames
// outside any stream).
func (m *Message) Key() string { return m.key }

// Cursor returns the cursor the frame carries ("" for none).
func (m *Message) Cursor() string { return m.cursor }

// Seq returns the frame's position in its stream (0 for none).
func (m *Message) Seq() int64 { return m.seq }

// Bytes returns the encoded frame. The returned slice is shared by every
// subscriber and must not be modified.
func (m *Message) Bytes() []byte { return m.data }

// Size returns the length of the encoded frame in bytes; it is the amount a
// [Queue] charges for holding the Message.
func (m *Message) Size() int { return len(m.data) }

// Prepared returns the frame as a WebSocket text message ready for
// (*websocket.Conn).WritePreparedMessage. It is built on the first call and
// the same value (or error) is returned to every later caller, so a
// broadcast to many WebSocket connections frames (and, where negotiated,
// compresses) the payload once per set of connection options rather than
// once per connection.
func (m *Message) Prepared() (*websocket.PreparedMessage, error) {
	m.once.Do(func() {
		m.prepared, m.err = websocket.NewPreparedMessage(websocket.TextMessage, m.data)
	})
	return m.prepared, m.err
}
