package app

// The server API over live connections: list, disconnect, and subscribe
// or unsubscribe a subject's connections server-side. A command reaches
// every node through the Cluster port (the broker); each node applies it
// to its own connections (the LocalConnections port, wsapi.Server).

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// Connection API limits.
const (
	// ClusterTimeout bounds how long a command waits for the other nodes.
	ClusterTimeout = 2 * time.Second
	// MaxDisconnectReason bounds a disconnect's reason.
	MaxDisconnectReason = 200
	// MaxSubjectLen bounds a subject in the connection API.
	MaxSubjectLen = 256
)

// ConnectionInfo describes one open connection.
type ConnectionInfo struct {
	ID          string             `json:"id"`
	Subject     string             `json:"subject,omitempty"`
	Node        string             `json:"node"`
	Transport   string             `json:"transport"`
	Remote      string             `json:"remote"`
	ConnectedAt time.Time          `json:"connectedAt"`
	Subs        []SubscriptionInfo `json:"subs"`
}

// SubscriptionInfo is one subscription of a connection.
type SubscriptionInfo struct {
	Topic  string `json:"topic"`
	Labels string `json:"labels,omitempty"`
	// Server: made server-side (ServerSubscribe).
	Server bool `json:"server,omitempty"`
}

// LocalConnections are this node's connections (implemented by
// wsapi.Server).
type LocalConnections interface {
	// Connections lists the node's connections of subject ("": all) with
	// an ID after after, ordered by ID, at most limit.
	Connections(subject, after string, limit int) []ConnectionInfo
	// Disconnect closes connection id, or every connection of subject
	// when id is "", with close code 4003 after a disconnect frame
	// carrying reason and reconnect. It returns how many it closed.
	Disconnect(id, subject, reason string, reconnect bool) int
	// ServerSubscribe subscribes every connection of subject to topic
	// (with sel), live; connections already subscribed keep theirs. It
	// returns how many it subscribed.
	ServerSubscribe(subject string, topic stream.Topic, sel store.Selector) int
	// ServerUnsubscribe ends every subscription of subject's connections
	// to topic with sel, telling each client. It returns how many.
	ServerUnsubscribe(subject string, topic stream.Topic, sel store.Selector) int
}

// Cluster carries commands to every node.
type Cluster interface {
	// Broadcast delivers cmd to every live node, this one included, and
	// returns their answers, waiting until each answered or ctx ends;
	// unreachable names the nodes that did not answer. Errors:
	// store.ErrUnavailable (the broker cannot be reached).
	Broadcast(ctx context.Context, cmd []byte) (answers [][]byte, unreachable []string, err error)
}

// AttachConnections gives the App this node's connections (the WebSocket
// server, which is built with the App). It returns no error.
func (a *App) AttachConnections(l LocalConnections) { a.conns = l }

// Node returns this node's name. It returns no error.
func (a *App) Node() string { return a.node }

// clusterCommand is what goes to every node.
type clusterCommand struct {
	Op        string `json:"op"` // list, disconnect, subscribe, unsubscribe
	ID        string `json:"id,omitempty"`
	Subject   string `json:"subject,omitempty"`
	After     string `json:"after,omitempty"`
	Limit     int    `json:"limit,omitempty"`
	Reason    string `json:"reason,omitempty"`
	Reconnect bool   `json:"reconnect,omitempty"`
	Topic     string `json:"topic,omitempty"`
	Labels    string `json:"labels,omitempty"`
}

type clusterAnswer struct {
	Connections []ConnectionInfo `json:"connections,omitempty"`
	Count       int              `json:"count"`
}

// HandleClusterCommand applies a command from any node to this node's
// connections and returns the answer (the Cluster's handler). A command
// it cannot read gets an empty answer. It returns no error.
func (a *App) HandleClusterCommand(_ context.Context, raw []byte) []byte {
	var cmd clusterCommand
	if err := json.Unmarshal(raw, &cmd); err != nil {
		a.log.Warn("cluster: unreadable command", "err", err)
		return []byte(`{"count":0}`)
	}
	ans := a.applyLocal(cmd)
	b, _ := json.Marshal(ans)
	return b
}

func (a *App) applyLocal(cmd clusterCommand) clusterAnswer {
	l := a.conns
	if l == nil {
		return clusterAnswer{}
	}
	switch cmd.Op {
	case "list":
		cs := l.Connections(cmd.Subject, cmd.After, cmd.Limit)
		for i := range cs {
			cs[i].Node = a.node
		}
		return clusterAnswer{Connections: cs, Count: len(cs)}
	case "disconnect":
		return clusterAnswer{Count: l.Disconnect(cmd.ID, cmd.Subject, cmd.Reason, cmd.Reconnect)}
	case "subscribe", "unsubscribe":
		topic, err := stream.ParseTopic(cmd.Topic)
		if err != nil {
			return clusterAnswer{}
		}
		sel, err := store.ParseSelector(cmd.Labels)
		if err != nil {
			return clusterAnswer{}
		}
		if cmd.Op == "subscribe" {
			return clusterAnswer{Count: l.ServerSubscribe(cmd.Subject, topic, sel)}
		}
		return clusterAnswer{Count: l.ServerUnsubscribe(cmd.Subject, topic, sel)}
	}
	return clusterAnswer{}
}

// broadcast runs cmd on every node (this one alone without a Cluster).
func (a *App) broadcast(ctx context.Context, cmd clusterCommand) ([]clusterAnswer, []string, error) {
	if a.cluster == nil {
		return []clusterAnswer{a.applyLocal(cmd)}, nil, nil
	}
	raw, err := json.Marshal(cmd)
	if err != nil {
		return nil, nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, ClusterTimeout)
	defer cancel()
	answers, unreachable, err := a.cluster.Broadcast(cctx, raw)
	if err != nil {
		return nil, nil, err
	}
	out := make([]clusterAnswer, 0, len(answers))
	for _, b := range answers {
		var ans clusterAnswer
		if err := json.Unmarshal(b, &ans); err != nil {
			a.log.Warn("cluster: unreadable answer", "err", err)
			continue
		}
		out = append(out, ans)
	}
	return out, unreachable, nil
}

// ConnectionPage is one page of connections, cluster-wide.
type ConnectionPage struct {
	Items []ConnectionInfo
	// Next is the token of the next page ("": last page).
	Next string
	// Unreachable names the nodes that did not answer in time.
	Unreachable []string
}

// ListConnections returns the open connections of every node (of subject
// when not ""), ordered by ID, limit at a time after pageToken. It takes
// the admin grant on connections (or on subjects/{subject}/connections
// with bySubject). Errors: auth errors, an InputError (subject,
// pageToken), store.ErrUnavailable.
func (a *App) ListConnections(ctx context.Context, p auth.Principal, subject string, bySubject bool, limit int, pageToken string) (ConnectionPage, error) {
	if err := a.authorizeConnections(p, subject, bySubject, "connections"); err != nil {
		return ConnectionPage{}, err
	}
	after := ""
	if pageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(pageToken)
		if err != nil || !strings.HasPrefix(string(b), "c:") {
			return ConnectionPage{}, &InputError{Name: "pageToken", Detail: "is not a token this API returned"}
		}
		after = string(b[2:])
	}
	if limit <= 0 {
		limit = 100
	}
	answers, unreachable, err := a.broadcast(ctx, clusterCommand{Op: "list", Subject: subject, After: after, Limit: limit + 1})
	if err != nil {
		return ConnectionPage{}, err
	}
	var all []ConnectionInfo
	for _, ans := range answers {
		all = append(all, ans.Connections...)
	}
	slices.SortFunc(all, func(x, y ConnectionInfo) int { return strings.Compare(x.ID, y.ID) })
	page := ConnectionPage{Items: all, Unreachable: unreachable}
	if len(all) > limit {
		page.Items = all[:limit]
		page.Next = base64.RawURLEncoding.EncodeToString([]byte("c:" + all[limit-1].ID))
	}
	return page, nil
}

// Disconnected is the outcome of a command on every node.
type Disconnected struct {
	Count       int
	Unreachable []string
}

// DisconnectConnection closes connection id wherever it is (close code
// 4003, after a disconnect frame with reason and reconnect). It takes the
// admin grant on connections/{id}. Errors: auth errors, an InputError
// (reason), store.ErrNotFound (no node has it and every node answered),
// store.ErrUnavailable.
func (a *App) DisconnectConnection(ctx context.Context, p auth.Principal, id, reason string, reconnect bool) (Disconnected, error) {
	if err := a.Authorize(p, auth.ActionAdmin, "connections/"+id); err != nil {
		return Disconnected{}, err
	}
	if err := checkReason(reason); err != nil {
		return Disconnected{}, err
	}
	d, err := a.count(ctx, clusterCommand{Op: "disconnect", ID: id, Reason: reason, Reconnect: reconnect})
	if err == nil && d.Count == 0 && len(d.Unreachable) == 0 {
		return d, store.Errorf(store.CodeNotFound, "no open connection %q", clip(id))
	}
	return d, err
}

// DisconnectSubject closes every connection of subject on every node
// (close code 4003, after a disconnect frame). It takes the admin grant
// on subjects/{subject}/connections. Errors: auth errors, an InputError
// (subject, reason), store.ErrUnavailable.
func (a *App) DisconnectSubject(ctx context.Context, p auth.Principal, subject, reason string, reconnect bool) (Disconnected, error) {
	if err := a.authorizeConnections(p, subject, true, "connections"); err != nil {
		return Disconnected{}, err
	}
	if err := checkReason(reason); err != nil {
		return Disconnected{}, err
	}
	return a.count(ctx, clusterCommand{Op: "disconnect", Subject: subject, Reason: reason, Reconnect: reconnect})
}

// ServerSubscribe subscribes every connection of subject, on every node,
// to topic with the label selector labels, live from now; each client
// gets a subscribed frame. The connections' own grants and the subscribe
// hook are not consulted. It takes the admin grant on
// subjects/{subject}/subscriptions. Errors: auth errors, store.ErrInvalid
// or an InputError (topic, labels, subject), store.ErrNotFound (the
// collection of a resource topic), store.ErrUnavailable.
func (a *App) ServerSubscribe(ctx context.Context, p auth.Principal, subject, topic, labels string) (Disconnected, error) {
	cmd, err := a.subscriptionCommand(ctx, p, "subscribe", subject, topic, labels)
	if err != nil {
		return Disconnected{}, err
	}
	return a.count(ctx, cmd)
}

// ServerUnsubscribe ends the subscriptions of every connection of subject
// to topic with labels, on every node; each client gets an unsubscribed
// frame. Grants and errors as ServerSubscribe's (no collection check).
func (a *App) ServerUnsubscribe(ctx context.Context, p auth.Principal, subject, topic, labels string) (Disconnected, error) {
	cmd, err := a.subscriptionCommand(ctx, p, "unsubscribe", subject, topic, labels)
	if err != nil {
		return Disconnected{}, err
	}
	return a.count(ctx, cmd)
}

func (a *App) subscriptionCommand(ctx context.Context, p auth.Principal, op, subject, topicPath, labels string) (clusterCommand, error) {
	if err := a.authorizeConnections(p, subject, true, "subscriptions"); err != nil {
		return clusterCommand{}, err
	}
	topic, err := stream.ParseTopic(topicPath)
	if err != nil {
		return clusterCommand{}, err
	}
	sel, err := store.ParseSelector(labels)
	if err != nil {
		return clusterCommand{}, err
	}
	if err := a.checkTopicRequest(topic, sel, nil, nil); err != nil {
		return clusterCommand{}, err
	}
	if op == "subscribe" {
		switch {
		case topic.IsResource():
			if _, err := a.store.GetCollection(ctx, topic.Collection); err != nil {
				return clusterCommand{}, err
			}
		case topic.Kind == stream.TopicPresence && !a.rt.Namespaces.For(topic.Channel).Presence:
			return clusterCommand{}, store.Errorf(store.CodeInvalid, "presence is disabled for channel %q", topic.Channel)
		}
	}
	return clusterCommand{Op: op, Subject: subject, Topic: topic.Path, Labels: sel.String()}, nil
}

func (a *App) count(ctx context.Context, cmd clusterCommand) (Disconnected, error) {
	answers, unreachable, err := a.broadcast(ctx, cmd)
	if err != nil {
		return Disconnected{}, err
	}
	d := Disconnected{Unreachable: unreachable}
	for _, ans := range answers {
		d.Count += ans.Count
	}
	return d, nil
}

// authorizeConnections checks the admin grant on connections, or on
// subjects/{subject}/{what} when bySubject, and the subject.
func (a *App) authorizeConnections(p auth.Principal, subject string, bySubject bool, what string) error {
	if bySubject || subject != "" {
		if subject == "" || len(subject) > MaxSubjectLen {
			return &InputError{Name: "subject", Detail: fmt.Sprintf("must be 1–%d bytes", MaxSubjectLen)}
		}
	}
	path := "connections"
	if bySubject {
		path = "subjects/" + subject + "/" + what
		if !auth.ValidPath(path) {
			// A subject that cannot be a path segment: the grant on
			// every connection covers it.
			path = "connections"
		}
	}
	return a.Authorize(p, auth.ActionAdmin, path)
}

func checkReason(r string) error {
	if len(r) > MaxDisconnectReason {
		return &InputError{Name: "reason", Detail: fmt.Sprintf("must be at most %d bytes", MaxDisconnectReason)}
	}
	return nil
}
