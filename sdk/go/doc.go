// Package tandem is the Go SDK of the Tandem realtime API server.
//
// A [Client] wraps the generated REST client ([client], available as
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
// [Conn.RPC] calls a method of the application through the server's RPC
// hook and returns its result's data, or the application's problem as a
// [*ProblemError]. Many calls may be in flight on one Conn, answered in any
// order; a call whose connection drops fails with [ErrConnectionLost] and is
// never sent again, since an RPC need not be idempotent.
//
// The server may disconnect a connection (a disconnect frame, then close
// code 4003). When the frame forbids reconnecting, the Conn ends: [Conn.Err]
// returns a [*DisconnectedError] with the server's reason
// (errors.Is(err, [ErrDisconnected])). Otherwise, and after a 4003 close
// without a disconnect frame, it reconnects and resubscribes as after any
// other drop.
//
// Subscriptions the server makes for a connection (subscribed frames)
// arrive through the [WithServerSubscriptions] option as [*Subscription]
// values that deliver like the ones [Conn.Subscribe] makes. They end with
// [ErrUnsubscribedByServer] when the server sends unsubscribed (which ends
// a client's subscription too), and with their connection: the SDK does not
// make them again after a reconnect.
//
// Topics are REST paths without /v1/: [CollectionTopic], [ResourceTopic],
// [ChannelTopic] and [PresenceTopic] build them. [Mirror] keeps a local,
// gap-free copy of a collection; [PresenceState] folds presence frames into
// the current member list.
package tandem
