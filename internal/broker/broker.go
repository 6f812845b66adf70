// Package broker defines how channel messages and presence travel between
// Tandem nodes. Every publish goes through a Broker, even on one node: the
// memory broker loops back into the local node, the redis broker fans out
// to every node; both keep bounded per-channel history for resume.
package broker

import (
	"context"
	"encoding/json"
	"time"
)

// Message is one published channel message.
type Message struct {
	Channel string
	// Epoch identifies the channel's history; it changes when the history
	// is lost (process restart for memory, key flush for Redis).
	Epoch string
	// Offset is the message's position in the channel, starting at 1 and
	// incremented by exactly 1 per publish.
	Offset int64
	Data   json.RawMessage
	// Publisher is the publishing member (subject or connection id), or "".
	Publisher string
	Time      time.Time
}

// Position is the newest offset of a channel in an epoch (Offset 0: empty).
type Position struct {
	Epoch  string
	Offset int64
}

// HistoryOptions bounds a channel's history.
type HistoryOptions struct {
	// Size keeps at most this many messages (0: keep none, resume impossible).
	Size int
	// TTL drops messages older than this (0: no age limit).
	TTL time.Duration
}

// Member is one presence entry: a connection of a member.
type Member struct {
	// ID is the member key: the token subject, or the connection id when anonymous.
	ID string
	// ConnID identifies the connection.
	ConnID string
	// Meta is per-connection metadata supplied by the client (a JSON object or nil).
	Meta json.RawMessage
}

// PresenceEvent is a join or leave of a member (not of each connection):
// Join when the member's first connection appears, Leave when its last goes.
type PresenceEvent struct {
	Channel string
	Join    bool
	Member  Member
}

// Handler receives what the broker delivers to this node, for the channels
// this node subscribed to. Calls for one channel are made in offset order
// and never concurrently; handlers must not block.
type Handler interface {
	HandleMessage(m Message)
	HandlePresence(e PresenceEvent)
	// HandleReset says the channel's history was lost (new epoch) or
	// messages may have been missed (reconnect to Redis): subscribers must
	// resync.
	HandleReset(channel string, epoch string)
}

// Broker moves channel messages and presence between nodes.
type Broker interface {
	// Run delivers to h until ctx is done; call once before publishing.
	Run(ctx context.Context, h Handler) error
	// Publish appends data to the channel (history bounded by opts) and
	// delivers it to every node subscribed to the channel, this one
	// included. Errors: ErrUnavailable when the backend cannot be reached.
	Publish(ctx context.Context, channel string, data json.RawMessage, publisher string, opts HistoryOptions) (Message, error)
	// Subscribe makes this node receive the channel's messages and presence
	// events (idempotent; reference counting is the caller's). Every
	// publish after Subscribe returns is delivered. Errors: ErrUnavailable.
	Subscribe(ctx context.Context, channel string) error
	// Unsubscribe stops receiving the channel on this node. Errors:
	// ErrUnavailable.
	Unsubscribe(ctx context.Context, channel string) error
	// History returns up to limit messages (limit <= 0: all retained) with
	// offset > since.Offset in order, and the channel's current position.
	// The empty since (Epoch "" and Offset 0) reads from the oldest
	// retained message. Errors: ErrGone when since.Epoch is not the
	// channel's epoch (and since.Offset > 0 or the epoch is non-empty),
	// since.Offset is beyond the channel's offset, or the history no longer
	// holds since.Offset+1 while the channel is past it (see CheckSince);
	// ErrUnavailable when the backend cannot be reached.
	History(ctx context.Context, channel string, since Position, limit int) ([]Message, Position, error)
	// Position returns the channel's current position (creating its epoch
	// if the channel is new). Errors: ErrUnavailable.
	Position(ctx context.Context, channel string) (Position, error)
	// Join adds a connection to the channel's presence with a lease of ttl
	// (renewed by calling Join again; ttl <= 0: no expiry). It emits a join
	// when it is the member's first live connection. Errors: ErrUnavailable.
	Join(ctx context.Context, channel string, m Member, ttl time.Duration) error
	// Leave removes a connection; it emits a leave when it was the member's
	// last live connection. Expired leases leave the same way. Errors:
	// ErrUnavailable.
	Leave(ctx context.Context, channel string, connID string) error
	// Presence lists the live connections of the channel, ordered by member
	// ID then connection ID. Errors: ErrUnavailable.
	Presence(ctx context.Context, channel string) ([]Member, error)
	// PresencePage lists the live connections of at most limit members
	// (limit >= 1) whose ID sorts after after (byte-wise; "": from the
	// first), ordered by member ID then connection ID; all of a member's
	// connections are on the same page. more reports whether members
	// after the page's last exist. Errors: ErrUnavailable.
	PresencePage(ctx context.Context, channel, after string, limit int) (page []Member, more bool, err error)
	// Ping reports whether the backend is reachable (for /readyz). Errors:
	// ErrUnavailable.
	Ping(ctx context.Context) error
	// Close releases the broker; later calls fail with ErrUnavailable.
	Close() error
}
