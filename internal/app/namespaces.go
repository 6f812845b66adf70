package app

import (
	"strings"

	"github.com/tandemhq/tandem/internal/broker"
)

// ChannelOptions are the policy and retention of the channels of one
// namespace.
type ChannelOptions struct {
	History broker.HistoryOptions
	// Presence enables presence for the namespace's channels.
	Presence bool
	// ClientPublish lets clients publish over WebSocket and REST (with the
	// publish grant); otherwise only credentials that also hold the admin
	// grant on the channel's messages topic may publish.
	ClientPublish bool
	// MaxMessageBytes bounds a message's data (0: unbounded), and an RPC's.
	MaxMessageBytes int
	// Subscribe and Publish are the namespace's hooks; in Default they are
	// the global hooks, which also cover resource topics (subscribe).
	Subscribe, Publish HookConfig
	// RPC is the hook of the methods of the namespace (the part of a
	// method's name before the first ':'); RPCMethods, when not empty,
	// lists the methods it accepts (full names; "*" any).
	RPC        HookConfig
	RPCMethods []string
}

// Namespaces maps namespaces (the part of a channel name before the first
// ':') to options; channels without a configured namespace use Default.
type Namespaces struct {
	Default ChannelOptions
	ByName  map[string]ChannelOptions
}

// For returns the options of channel. It returns no error.
func (n Namespaces) For(channel string) ChannelOptions {
	if ns, _, ok := strings.Cut(channel, ":"); ok {
		if o, ok := n.ByName[ns]; ok {
			return o
		}
	}
	return n.Default
}
