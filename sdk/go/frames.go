package tandem

import (
	"encoding/json"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// serverFrame decodes every frame the server sends (spec/asyncapi.yaml);
// only the members of its type are set.
type serverFrame struct {
	Type     string           `json:"type"`
	Ref      string           `json:"ref"`
	OK       bool             `json:"ok"`
	Body     json.RawMessage  `json:"body"`
	Problem  *client.Problem  `json:"problem"`
	Topic    string           `json:"topic"`
	Labels   string           `json:"labels"`
	Filter   string           `json:"filter"`
	Event    string           `json:"event"`
	Cursor   string           `json:"cursor"`
	Resource *client.Resource `json:"resource"`
	// Collection: the new definition of a collection.updated event.
	Collection *client.Collection      `json:"collection"`
	Message    *client.ChannelMessage  `json:"message"`
	Batch      *client.EventBatch      `json:"batch"`
	Action     string                  `json:"action"`
	Members    []client.PresenceMember `json:"members"`
	Cursors    []TopicCursor           `json:"cursors"`
	Start      string                  `json:"start"`

	// disconnect
	Code      int    `json:"code"`
	Reason    string `json:"reason"`
	Reconnect bool   `json:"reconnect"`

	ConnectionID     string `json:"connectionId"`
	Protocol         string `json:"protocol"`
	HeartbeatSeconds int    `json:"heartbeatSeconds"`
	MaxFrameBytes    int64  `json:"maxFrameBytes"`
}

// TopicCursor is one subscription's position, as listed by a slow-consumer
// error frame.
type TopicCursor struct {
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Filter string `json:"filter,omitempty"`
	Cursor string `json:"cursor"`
}

// Welcome is the server's first frame on a connection.
type Welcome struct {
	ConnectionID     string
	Protocol         string
	HeartbeatSeconds int
	MaxFrameBytes    int64
}

// subscribeResult is the body of a successful subscribe reply.
type subscribeResult struct {
	Topic  string `json:"topic"`
	Labels string `json:"labels"`
	Filter string `json:"filter"`
	Cursor string `json:"cursor"`
	Start  string `json:"start"`
}

type subscribeFrame struct {
	Type     string          `json:"type"`
	Ref      string          `json:"ref"`
	Topic    string          `json:"topic"`
	Labels   string          `json:"labels,omitempty"`
	Filter   string          `json:"filter,omitempty"`
	Since    string          `json:"since,omitempty"`
	Snapshot bool            `json:"snapshot,omitempty"`
	Meta     json.RawMessage `json:"meta,omitempty"`
}

type unsubscribeFrame struct {
	Type   string `json:"type"`
	Ref    string `json:"ref"`
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	Filter string `json:"filter,omitempty"`
}

// subKey identifies a subscription on a connection as the server does: by
// topic and the canonical label selector and filter that the subscribe
// reply gives and that every frame of the subscription carries.
func subKey(topic, labels, filter string) string {
	return topic + "\x00" + labels + "\x00" + filter
}

type publishFrame struct {
	Type  string          `json:"type"`
	Ref   string          `json:"ref"`
	Topic string          `json:"topic"`
	Data  json.RawMessage `json:"data"`
}

type rpcFrame struct {
	Type   string          `json:"type"`
	Ref    string          `json:"ref"`
	Method string          `json:"method"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// rpcResult is the body of a successful rpc reply.
type rpcResult struct {
	Data json.RawMessage `json:"data"`
}

type pingFrame struct {
	Type string `json:"type"`
	Ref  string `json:"ref"`
}

type authFrame struct {
	Type  string `json:"type"`
	Ref   string `json:"ref"`
	Token string `json:"token"`
}

// AuthResult is the body of a successful auth reply.
type AuthResult struct {
	Subject   string `json:"subject"`
	ExpiresAt string `json:"expiresAt,omitempty"`
}
