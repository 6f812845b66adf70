// Package wire is the edge between Tandem's domain types (store, broker,
// stream, app) and its wire types: the generated OpenAPI models (gen/api)
// and the AsyncAPI frames. Every conversion, every frame encoding and the
// one error-to-problem table live here, so REST, WebSocket, SSE and
// long-poll carry the same JSON for the same thing. The engines below app
// never import this package (they encode through stream.Frames, which
// Frames implements).
package wire

import (
	"encoding/json"
	"sort"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// Resource converts a store resource to its wire form; missing labels are
// {} and missing data is {}.
func Resource(r store.Resource) api.Resource {
	labels := r.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	data := r.Data
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	return api.Resource{Id: r.ID, Collection: r.Collection, Data: data, Labels: labels, Revision: r.Revision,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

// Collection converts a store collection to its wire form: description
// and indexes only when it has them; UpdatedAt is CreatedAt when unset.
func Collection(c store.Collection) api.Collection {
	out := api.Collection{Name: c.Name, Schema: c.Schema, Revision: c.Revision, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
	if c.UpdatedAt.IsZero() {
		out.UpdatedAt = out.CreatedAt
	}
	if c.Description != "" {
		d := c.Description
		out.Description = &d
	}
	if len(c.Indexes) > 0 {
		ix := make(api.CollectionIndexes, 0, len(c.Indexes))
		for _, x := range c.Indexes {
			ix = append(ix, api.CollectionIndex{Fields: append([]string{}, x.Fields...)})
		}
		out.Indexes = &ix
	}
	return out
}

// Indexes converts declared indexes from their wire form (nil: none).
func Indexes(ix *api.CollectionIndexes) []store.Index {
	if ix == nil {
		return nil
	}
	out := make([]store.Index, 0, len(*ix))
	for _, x := range *ix {
		out = append(out, store.Index{Fields: x.Fields})
	}
	return out
}

// Message converts a broker message to its wire form.
func Message(m broker.Message) api.ChannelMessage {
	out := api.ChannelMessage{Channel: m.Channel, Offset: m.Offset, Cursor: stream.ChannelCursor(m).String(), Data: m.Data, Time: m.Time.UTC()}
	if m.Publisher != "" {
		p := m.Publisher
		out.Publisher = &p
	}
	return out
}

// Members groups presence entries (one per connection) by member, sorted
// by member id.
func Members(ms []broker.Member) []api.PresenceMember {
	byID := map[string]*api.PresenceMember{}
	var order []string
	for _, m := range ms {
		pm, ok := byID[m.ID]
		if !ok {
			pm = &api.PresenceMember{Id: m.ID, Connections: []api.PresenceConnection{}}
			byID[m.ID] = pm
			order = append(order, m.ID)
		}
		pm.Connections = append(pm.Connections, api.PresenceConnection{ConnectionId: m.ConnID, Meta: m.Meta})
	}
	sort.Strings(order)
	out := make([]api.PresenceMember, 0, len(order))
	for _, id := range order {
		out = append(out, *byID[id])
	}
	return out
}

// StreamEvent converts an event to the long-poll answer's form.
func StreamEvent(ev stream.Event) api.StreamEvent {
	f := EventFrameOf(ev)
	out := api.StreamEvent{Type: api.StreamEventType(f.Type), Topic: f.Topic, Event: api.StreamEventEvent(f.Event), Cursor: f.Cursor, Resource: f.Resource, Collection: f.Collection, Message: f.Message, Batch: f.Batch}
	if f.Labels != "" {
		l := f.Labels
		out.Labels = &l
	}
	return out
}

// ConnectionList is a page of connections as the REST API shows it.
func ConnectionList(p app.ConnectionPage) api.ConnectionList {
	out := api.ConnectionList{Items: make([]api.Connection, 0, len(p.Items))}
	for _, c := range p.Items {
		ac := api.Connection{Id: c.ID, Node: c.Node, Transport: api.ConnectionTransport(c.Transport), RemoteAddress: c.Remote,
			ConnectedAt: c.ConnectedAt, Subscriptions: make([]api.ConnectionSubscription, 0, len(c.Subs))}
		if c.Subject != "" {
			s := c.Subject
			ac.Subject = &s
		}
		for _, s := range c.Subs {
			cs := api.ConnectionSubscription{Topic: s.Topic, Server: s.Server}
			if s.Labels != "" {
				l := s.Labels
				cs.Labels = &l
			}
			ac.Subscriptions = append(ac.Subscriptions, cs)
		}
		out.Items = append(out.Items, ac)
	}
	if p.Next != "" {
		n := p.Next
		out.NextPageToken = &n
	}
	out.UnreachableNodes = nodes(p.Unreachable)
	return out
}

// DisconnectResult is the answer of a disconnect.
func DisconnectResult(d app.Disconnected) api.DisconnectResult {
	return api.DisconnectResult{Disconnected: d.Count, UnreachableNodes: nodes(d.Unreachable)}
}

// ServerSubscriptionResult is the answer of a server-side (un)subscribe.
func ServerSubscriptionResult(d app.Disconnected) api.ServerSubscriptionResult {
	return api.ServerSubscriptionResult{Connections: d.Count, UnreachableNodes: nodes(d.Unreachable)}
}

func nodes(ns []string) *[]string {
	if len(ns) == 0 {
		return nil
	}
	return &ns
}

// EncodeResource implements app.ResourceEncoder: r as the body of a
// 200 GET /v1/collections/{collection}/resources/{id} (the bytes the
// generated strict server writes: JSON and a newline) and its ETag.
// Errors: r.Data is not valid JSON.
func (Frames) EncodeResource(r store.Resource) ([]byte, string, error) {
	b, err := json.Marshal(Resource(r))
	if err != nil {
		return nil, "", err
	}
	body := make([]byte, len(b)+1)
	copy(body, b)
	body[len(b)] = '\n'
	return body, ETag(r.Revision), nil
}

var _ app.ResourceEncoder = Frames{}
