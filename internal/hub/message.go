// Package hub is Tandem's per-node fan-out core: it maps subscription keys to
// the local subscribers interested in them and hands each of them the same
// encoded event, without ever blocking on one of them.
//
// The package is independent of transports. A transport (WebSocket, SSE,
// long-poll) implements [Subscriber], usually by pushing into a byte-bounded
// [Queue] drained by one writer goroutine per connection. A [Message] can
// hold one transport-specific form of its frame (the WebSocket writer keeps
// its prepared message there), built once for every writer that sends it.
//
// Keys are opaque strings of the form "topic" or "topic?selector"; the topic
// is the part before the first '?'. The hub does not interpret selectors: a
// key is registered with an attribute (the caller's parsed selector), and
// the caller lists the keys of a topic with their attributes ([Hub.Entries]),
// decides which of them an event matches and broadcasts to each of those
// keys.
package hub

import "sync"

// Message is one server frame encoded once and shared, unmodified, by every
// subscriber it is delivered to. It is safe for concurrent use.
type Message struct {
	data []byte

	// Stream metadata, set by NewEvent: the subscription key the frame was
	// encoded for, the cursor it carries and its position in its stream.
	key    string
	cursor string
	seq    int64

	once   sync.Once
	framed any
	err    error
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

// Framed returns the frame in a transport's own form (for WebSocket, a
// prepared message framed and, where negotiated, compressed once), built
// by build from the frame's bytes on the first call; every later caller
// gets the same value or error, so a broadcast to many connections frames
// its payload once rather than once per connection. One transport uses it
// per process (build is the same function for every call). Errors: build's.
func (m *Message) Framed(build func(data []byte) (any, error)) (any, error) {
	m.once.Do(func() {
		m.framed, m.err = build(m.data)
	})
	return m.framed, m.err
}
