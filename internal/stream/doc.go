// Package stream holds the streaming engines below app: the vocabulary
// every transport shares (topics, cursors, events), the change feed that
// broadcasts every committed change in revision order (Feed), and the
// engines that subscribe a sink to a resource topic (Resources) or a
// channel topic (Channels) with a snapshot or a replay handed off to live
// events without a gap or a duplicate, and that answer long-polls.
//
// The engines know nothing of authorisation, channel namespaces or wire
// formats: app checks a request against its policy before calling them,
// and they encode frames through the Frames port, which the edge package
// (internal/wire) implements.
package stream
