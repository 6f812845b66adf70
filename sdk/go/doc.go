// Package tandem is the Go SDK of the Tandem realtime API server.
//
// A [Client] wraps the generated REST client (gen/client, available as
// [Client.REST]) with a few conveniences that return typed errors, and opens
// realtime connections with [Client.Connect]. A [Conn] multiplexes every
// subscription over one WebSocket and keeps them alive: when the connection
// drops it reconnects with jittered exponential backoff and resubscribes each
// topic from the last cursor it saw (events and bookmark frames carry one),
// so a subscriber gets every change exactly once, in order, across
// reconnects and server restarts. When the server can no longer honour a
// cursor it answers resync-required; the SDK surfaces that as a
// [*ResyncRequiredError] (errors.Is(err, [ErrResyncRequired])), and
// [Conn.Resync] or the AutoResync option reload the state with a snapshot.
//
// Topics are REST paths without /v1/: [CollectionTopic], [ResourceTopic],
// [ChannelTopic] and [PresenceTopic] build them. [Mirror] keeps a local,
// gap-free copy of a collection; [PresenceState] folds presence frames into
// the current member list.
package tandem
