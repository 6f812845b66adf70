// Package wsapi serves the WebSocket API at /v1/ws: it upgrades the
// connection, reads client frames (an epoll poller for idle plain-TCP
// connections, or a reader goroutine), validates every one against
// spec/asyncapi.yaml, runs its command through app with the connection's
// principal and answers with a reply carrying the same ref; one writer
// goroutine per busy connection drains its byte-bounded queue. It is a
// thin transport: policy is app's, conversions are internal/wire's.
package wsapi

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/ijson"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/wire"
)

// Protocol is the value of welcome.protocol.
const Protocol = "tandem.v1"

// Close codes (documented in spec/asyncapi.yaml).
const (
	CloseNormal         = 1000
	CloseGoingAway      = 1001
	CloseProtocol       = 1002
	CloseUnsupported    = 1003
	CloseInvalidPayload = 1007
	ClosePolicy         = 1008
	CloseTooBig         = 1009
	CloseInternal       = 1011
	CloseSlowConsumer   = 4008
	CloseDisconnected   = 4003
	CloseAuthExpired    = 4001
	CloseAuthRequired   = 4010
	CloseTooManyRequest = 4029
)

// Subscribe is the client's subscribe frame (components/schemas/Subscribe).
type Subscribe struct {
	Type     string          `json:"type"`
	Ref      string          `json:"ref"`
	Topic    string          `json:"topic"`
	Labels   string          `json:"labels,omitempty"`
	Filter   string          `json:"filter,omitempty"`
	Since    string          `json:"since,omitempty"`
	Snapshot bool            `json:"snapshot,omitempty"`
	Meta     json.RawMessage `json:"meta,omitempty"`
}

// Publish is the client's publish frame; the reply body is the message.
type Publish struct {
	Type  string          `json:"type"`
	Ref   string          `json:"ref"`
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

// Unsubscribe is the client's unsubscribe frame.
type Unsubscribe struct {
	Type   string `json:"type"`
	Ref    string `json:"ref"`
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Filter string `json:"filter,omitempty"`
}

// Auth authenticates the connection or refreshes its token.
type Auth struct {
	Type  string `json:"type"`
	Ref   string `json:"ref"`
	Token string `json:"token"`
}

// AuthResult is the body of a successful auth reply.
type AuthResult struct {
	Subject   string     `json:"subject"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
}

// RPC is the client's rpc frame; the reply body is an RPCResult.
type RPC struct {
	Type   string          `json:"type"`
	Ref    string          `json:"ref"`
	Method string          `json:"method"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// RPCResult is the body of a successful rpc reply.
type RPCResult struct {
	Data json.RawMessage `json:"data"`
}

// Subscribed tells the client the server subscribed it to a topic.
type Subscribed struct {
	Type   string `json:"type"`
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Cursor string `json:"cursor,omitempty"`
	Start  string `json:"start"`
}

// Unsubscribed tells the client the server ended one of its
// subscriptions.
type Unsubscribed struct {
	Type   string `json:"type"`
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
}

// Disconnect precedes a close with CloseDisconnected.
type Disconnect struct {
	Type      string `json:"type"`
	Code      int    `json:"code"`
	Reason    string `json:"reason,omitempty"`
	Reconnect bool   `json:"reconnect"`
}

// Ping is the client's application-level ping.
type Ping struct {
	Type string `json:"type"`
	Ref  string `json:"ref"`
}

// Welcome is the first server frame.
type Welcome struct {
	Type             string `json:"type"`
	ConnectionID     string `json:"connectionId"`
	Protocol         string `json:"protocol"`
	HeartbeatSeconds int    `json:"heartbeatSeconds"`
	MaxFrameBytes    int64  `json:"maxFrameBytes"`
}

// Reply answers one client frame.
type Reply struct {
	Type    string       `json:"type"`
	Ref     string       `json:"ref"`
	OK      bool         `json:"ok"`
	Body    any          `json:"body,omitempty"`
	Problem *api.Problem `json:"problem,omitempty"`
}

// SubscribeResult is the body of a successful subscribe reply.
type SubscribeResult struct {
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Filter string `json:"filter,omitempty"`
	Cursor string `json:"cursor,omitempty"` // absent for presence topics
	Start  string `json:"start"`
}

// Frames shared with SSE and long-poll (internal/wire).
type (
	// ErrorFrame is a problem not tied to a ref: with Topic it ended that
	// subscription, with Cursors it precedes a slow-consumer close.
	ErrorFrame = wire.ErrorFrame
	// TopicCursor is one subscription's position.
	TopicCursor = wire.TopicCursor
)

// ijsonFrameError describes a frame ijson refused; rawType is its top-level
// type member, if any. refUnclear reports a duplicated ref: which one the
// client meant is unclear, so the answer is an error frame.
func ijsonFrameError(err error, rawType []byte) (fe *specval.FrameError, refUnclear bool) {
	typ := "unknown"
	var t string
	if json.Unmarshal(rawType, &t) == nil && t != "" && len(t) <= 64 {
		typ = t
	}
	var e *ijson.Error
	if !errors.As(err, &e) {
		return &specval.FrameError{Type: typ, Fields: []specval.FieldError{{Detail: err.Error()}}}, false
	}
	f := specval.FieldError{Pointer: e.Pointer, Detail: e.Error()}
	switch {
	case e.Reason == ijson.Syntax:
		f = specval.FieldError{Detail: "malformed JSON: " + e.Error()}
	case e.Reason == ijson.TooDeep:
		f.Pointer = "" // as deep as the nesting; the offset locates it
	case e.Reason == ijson.Duplicate && e.Pointer == "/ref":
		refUnclear = true
	}
	return &specval.FrameError{Type: typ, Fields: []specval.FieldError{f}}, refUnclear
}
