package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// Realtime wires the streaming engines into an App. Resources and
// Channels are required for the realtime use cases; Caps may be nil
// (no subscription caps).
type Realtime struct {
	Resources  *stream.Resources
	Channels   *stream.Channels
	Namespaces Namespaces
	// Caps count subscriptions per principal and server-wide, and refuse
	// new ones while the server's queued bytes are exhausted.
	Caps *quota.Caps
}

// SubscribeRequest is a decoded subscribe: from a WebSocket frame or one
// topic of an SSE stream.
type SubscribeRequest struct {
	Topic    stream.Topic
	Selector store.Selector
	// Filter filters a resource topic (nil: none).
	Filter *store.Filter
	// Since resumes after this cursor (nil: no resume).
	Since *stream.Cursor
	// Snapshot sends the current state first.
	Snapshot bool
	// ConnID, when set, is the subscribing connection: a subscription to
	// a channel's messages then joins its presence (if the namespace has
	// presence) as MemberID(principal, ConnID), with Meta.
	ConnID string
	Meta   json.RawMessage
	// Client is the caller's network address (caps for anonymous callers).
	Client string
	// Transport is "websocket", "sse" or "long-poll" (for the subscribe
	// hook).
	Transport string
	// Server marks a server-side subscription (ServerSubscribe): the
	// principal's read grant and the subscribe hook are not consulted.
	Server bool
}

// Subscription is one subscription a transport holds: the engine's
// subscription and what app gave it (its cap slots). Close ends it.
type Subscription struct {
	// Key identifies the subscription on its connection (topic and
	// canonical selector); the engine's frames carry it (hub.Message.Key).
	Key    string
	Topic  stream.Topic
	Labels string // canonical selector ("" for none)
	Filter string // canonical filter ("" for none)

	sub     *stream.Subscription
	app     *App
	channel bool
	release func()
	once    sync.Once
}

// Closed reports whether the subscription ended (closed, or its stream
// was reset). It returns no error.
func (s *Subscription) Closed() bool { return s.sub.Closed() }

// Joined reports whether the subscription joined its channel's presence
// (its holder renews the lease: RenewPresence). It returns no error.
func (s *Subscription) Joined() bool { return s.sub.Joined() }

// Subscribe authorises and checks a subscribe against the channel
// namespace's policy and the caps, then starts it with the engine of its
// topic. run must be called after the reply is queued (see
// stream.Resources.Subscribe); it returns nil when the subscription or its
// sink closed. Errors: auth errors (see Authorize), store.ErrInvalid or an
// InputError (a request the topic does not allow), store.ErrNotFound
// (collection), store.ErrCompacted (resync-required), store.ErrUnavailable
// (broker down, or the server-wide cap: 503), store.CodeTooManyRequests
// (the principal's cap), a *HookDeniedError or *HookFailedError (the
// subscribe hook of the topic's namespace, unless req.Server).
func (a *App) Subscribe(ctx context.Context, p auth.Principal, req SubscribeRequest, sink stream.Sink) (*Subscription, stream.Result, func(context.Context) error, error) {
	if !req.Server {
		if err := a.Authorize(p, auth.ActionRead, req.Topic.Path); err != nil {
			return nil, stream.Result{}, nil, err
		}
	}
	if err := a.checkTopicRequest(req.Topic, req.Selector, req.Filter, req.Since); err != nil {
		return nil, stream.Result{}, nil, err
	}
	if req.Since != nil && req.Snapshot {
		return nil, stream.Result{}, nil, store.Errorf(store.CodeInvalid, "since and snapshot cannot be combined")
	}
	ns := a.rt.Namespaces.For(req.Topic.Channel)
	if req.Topic.Kind == stream.TopicPresence && !ns.Presence {
		return nil, stream.Result{}, nil, store.Errorf(store.CodeInvalid, "presence is disabled for channel %q", req.Topic.Channel)
	}
	if !req.Server {
		meta, err := a.subscribeHook(ctx, p, req.Topic, store.Predicate{Selector: req.Selector, Filter: req.Filter}, req.Meta, ClientInfo{Transport: req.Transport, ConnID: req.ConnID, Remote: req.Client})
		if err != nil {
			return nil, stream.Result{}, nil, err
		}
		if meta != nil {
			req.Meta = meta
		}
	}
	release, err := a.rt.Caps.Subscription(quota.ClientKey(p.Scope(), req.Client))
	if err != nil {
		return nil, stream.Result{}, nil, err
	}
	sr := stream.Request{Topic: req.Topic, Selector: req.Selector, Filter: req.Filter, Since: req.Since, Snapshot: req.Snapshot}
	var (
		sub *stream.Subscription
		res stream.Result
		run func(context.Context) error
	)
	channel := !req.Topic.IsResource()
	if channel {
		var member *broker.Member
		if req.ConnID != "" && req.Topic.Kind == stream.TopicChannel && ns.Presence {
			member = &broker.Member{ID: MemberID(p, req.ConnID), ConnID: req.ConnID, Meta: req.Meta}
		}
		sub, res, run, err = a.rt.Channels.Subscribe(ctx, sr, member, sink)
	} else {
		sub, res, run, err = a.rt.Resources.Subscribe(ctx, sr, sink)
	}
	if err != nil {
		release()
		return nil, stream.Result{}, nil, err
	}
	return &Subscription{Key: sub.Key, Topic: sub.Topic, Labels: sub.Labels, Filter: sub.Filter, sub: sub, app: a, channel: channel, release: release}, res, run, nil
}

// checkTopicRequest checks what a topic allows: a selector and a filter
// only on resource topics, a cursor of the topic's kind and, for resource
// topics, of this store's epoch; presence has no cursor. Errors: an
// InputError (labels, filter), store.ErrInvalid, store.ErrCompacted
// (another epoch).
func (a *App) checkTopicRequest(t stream.Topic, sel store.Selector, flt *store.Filter, since *stream.Cursor) error {
	if !t.IsResource() && len(sel) > 0 {
		return &InputError{Name: "labels", Detail: "label selectors apply to resource topics only"}
	}
	if !t.IsResource() && !flt.IsEmpty() {
		return &InputError{Name: "filter", Detail: "filters apply to resource topics only"}
	}
	if since == nil {
		return nil
	}
	switch {
	case t.Kind == stream.TopicPresence:
		return store.Errorf(store.CodeInvalid, "presence topics have no cursor; subscribe without since")
	case t.IsResource() && since.Kind != stream.KindResource:
		return store.Errorf(store.CodeInvalid, "cursor belongs to a channel, not to a resource topic")
	case !t.IsResource() && since.Kind != stream.KindChannel:
		return store.Errorf(store.CodeInvalid, "cursor belongs to a resource topic, not to a channel")
	case t.IsResource() && since.Epoch != a.store.Epoch():
		return store.Errorf(store.CodeCompacted, "cursor is from another store epoch (the history it points into is gone); reload the state and subscribe again")
	}
	return nil
}

// Close ends the subscription with its engine (leaving presence if it
// joined) and gives back its cap slots. It may be called any number of
// times. It returns no error.
func (s *Subscription) Close() {
	s.once.Do(func() {
		if s.channel {
			s.app.rt.Channels.Unsubscribe(s.sub)
		} else {
			s.app.rt.Resources.Unsubscribe(s.sub)
		}
		s.release()
	})
}

// Bookmark queues the subscription's current cursor through push (see
// stream.Subscription.Bookmark).
func (s *Subscription) Bookmark(push func(stream.Cursor) bool) (attempted, pushed bool) {
	return s.sub.Bookmark(s.app.rt.Resources.Feed, push)
}

// RenewPresence renews the presence lease of a subscription that joined
// (Joined; nothing for the others). Errors: store.ErrUnavailable.
func (s *Subscription) RenewPresence(ctx context.Context) error {
	if !s.Joined() {
		return nil
	}
	return s.app.rt.Channels.RenewPresence(ctx, s.sub)
}

// PresenceRenewInterval is how often connections renew the presence
// leases of their subscriptions. It returns no error.
func (a *App) PresenceRenewInterval() time.Duration { return a.rt.Channels.RenewInterval() }

// PollRequest is a decoded long-poll of one topic.
type PollRequest struct {
	Topic    stream.Topic
	Selector store.Selector
	// Filter filters a resource topic (nil: none).
	Filter *store.Filter
	// Since continues after this cursor (nil: from now).
	Since *stream.Cursor
	Limit int
	Wait  time.Duration
	// Client is the caller's address (for the subscribe hook).
	Client string
}

// Poll long-polls one topic: it returns the events after req.Since,
// waiting up to req.Wait for the first, or until stop closes; with none,
// the same cursor comes back. Every request goes through the subscribe
// hook. Errors: auth errors, store.ErrInvalid or an InputError,
// store.ErrNotFound, store.ErrCompacted, store.ErrUnavailable, a
// *HookDeniedError or *HookFailedError.
func (a *App) Poll(ctx context.Context, p auth.Principal, req PollRequest, stop <-chan struct{}) ([]stream.Event, stream.Cursor, error) {
	if err := a.Authorize(p, auth.ActionRead, req.Topic.Path); err != nil {
		return nil, stream.Cursor{}, err
	}
	if req.Topic.Kind == stream.TopicPresence {
		return nil, stream.Cursor{}, store.Errorf(store.CodeInvalid, "presence cannot be long-polled; read GET /v1/channels/{ch}/presence or subscribe")
	}
	if err := a.checkTopicRequest(req.Topic, req.Selector, req.Filter, req.Since); err != nil {
		return nil, stream.Cursor{}, err
	}
	pred := store.Predicate{Selector: req.Selector, Filter: req.Filter}
	if _, err := a.subscribeHook(ctx, p, req.Topic, pred, nil, ClientInfo{Transport: "long-poll", Remote: req.Client}); err != nil {
		return nil, stream.Cursor{}, err
	}
	if req.Topic.IsResource() {
		return a.rt.Resources.Poll(ctx, req.Topic, pred, req.Since, req.Limit, req.Wait, stop)
	}
	return a.rt.Channels.Poll(ctx, req.Topic, req.Since, req.Limit, req.Wait, stop)
}

// Publish publishes data to a channel's messages topic as p; client.ConnID
// is the publishing connection ("" over REST), which names an anonymous
// publisher (MemberID). Publishing takes the publish grant on the topic;
// a namespace without client publishing also takes the admin grant. The
// namespace's publish hook may then refuse the message or replace its
// data. Errors: auth errors, store.ErrInvalid (not a messages topic, data
// not JSON), store.CodeForbidden (client publishing disallowed),
// store.CodeTooLarge (the data, or the hook's replacement), a
// *HookDeniedError, a *HookFailedError, store.ErrUnavailable.
func (a *App) Publish(ctx context.Context, p auth.Principal, topic stream.Topic, data json.RawMessage, client ClientInfo) (broker.Message, error) {
	if topic.Kind != stream.TopicChannel {
		return broker.Message{}, store.Errorf(store.CodeInvalid, "publish to a channels/{ch}/messages topic; resources change over REST")
	}
	if !stream.ValidChannel(topic.Channel) {
		return broker.Message{}, store.Errorf(store.CodeInvalid, "invalid channel name %q", clip(topic.Channel))
	}
	if err := a.Authorize(p, auth.ActionPublish, topic.Path); err != nil {
		return broker.Message{}, err
	}
	ns := a.rt.Namespaces.For(topic.Channel)
	if !ns.ClientPublish && !p.Can(auth.ActionAdmin, topic.Path) {
		return broker.Message{}, store.Errorf(store.CodeForbidden, "clients may not publish to channel %q (its namespace disallows client publishing)", topic.Channel)
	}
	if ns.MaxMessageBytes > 0 && len(data) > ns.MaxMessageBytes {
		return broker.Message{}, store.Errorf(store.CodeTooLarge, "message data of %d bytes exceeds the channel's limit of %d bytes", len(data), ns.MaxMessageBytes)
	}
	reply, called, err := a.callHook(ctx, ns.Publish, HookCall{Kind: HookPublish, Principal: p, Client: client, Topic: topic.Path, Channel: topic.Channel, Data: data})
	if err != nil {
		return broker.Message{}, err
	}
	if called && reply.Data != nil {
		data = compact(reply.Data)
		if ns.MaxMessageBytes > 0 && len(data) > ns.MaxMessageBytes {
			return broker.Message{}, a.hookAnswerInvalid(HookPublish, fmt.Errorf("replacement data of %d bytes exceeds the channel's limit of %d bytes", len(data), ns.MaxMessageBytes))
		}
	}
	return a.rt.Channels.Publish(ctx, topic.Channel, data, MemberID(p, client.ConnID), ns.History)
}

// History reads a channel's retained history after since (nil: from the
// oldest retained), at most limit messages, and the cursor to continue
// from. Errors: auth errors, store.ErrInvalid (channel name, a resource
// cursor), store.ErrCompacted, store.ErrUnavailable.
func (a *App) History(ctx context.Context, p auth.Principal, channel string, since *stream.Cursor, limit int) ([]broker.Message, stream.Cursor, error) {
	topic := stream.Topic{Kind: stream.TopicChannel, Channel: channel, Path: stream.MessagesTopic(channel)}
	if err := a.checkChannel(p, topic.Path, channel); err != nil {
		return nil, stream.Cursor{}, err
	}
	if err := a.checkTopicRequest(topic, nil, nil, since); err != nil {
		return nil, stream.Cursor{}, err
	}
	return a.rt.Channels.History(ctx, channel, since, limit)
}

// Presence page sizes, in members.
const (
	DefaultPresenceLimit = 100
	MaxPresenceLimit     = 1000
)

// PresencePage is one page of a channel's presence.
type PresencePage struct {
	// Members holds one entry per connection of the page's members,
	// ordered by member ID then connection ID.
	Members []broker.Member
	// Next is the token of the following page ("" on the last).
	Next string
}

// Presence lists one page of a channel's members: at most limit members
// (0: DefaultPresenceLimit) with all their connections, ordered by member
// ID, after the last member of the page pageToken came with ("": from the
// first). Errors: auth errors, store.ErrInvalid (channel name), an
// InputError (limit, pageToken), store.ErrNotFound (presence disabled for
// the namespace), store.ErrUnavailable.
func (a *App) Presence(ctx context.Context, p auth.Principal, channel string, limit int, pageToken string) (PresencePage, error) {
	if err := a.checkChannel(p, stream.PresenceTopic(channel), channel); err != nil {
		return PresencePage{}, err
	}
	if limit < 0 || limit > MaxPresenceLimit {
		return PresencePage{}, &InputError{Name: "limit", Detail: fmt.Sprintf("must be between 1 and %d", MaxPresenceLimit)}
	}
	if limit == 0 {
		limit = DefaultPresenceLimit
	}
	after := ""
	if pageToken != "" {
		var ok bool
		if after, ok = decodePresenceToken(channel, pageToken); !ok {
			return PresencePage{}, &InputError{Name: "pageToken", Detail: "is not a token this API returned for this channel's presence"}
		}
	}
	if !a.rt.Namespaces.For(channel).Presence {
		return PresencePage{}, store.Errorf(store.CodeNotFound, "presence is disabled for channel %q", channel)
	}
	ms, more, err := a.rt.Channels.PresencePage(ctx, channel, after, limit)
	if err != nil {
		return PresencePage{}, err
	}
	page := PresencePage{Members: ms}
	if more && len(ms) > 0 {
		page.Next = presenceToken(channel, ms[len(ms)-1].ID)
	}
	return page, nil
}

// presenceToken is the page token of the members of channel after
// memberID: "p" + channel + NUL + memberID (channel names hold no NUL),
// base64url.
func presenceToken(channel, memberID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("p" + channel + "\x00" + memberID))
}

// decodePresenceToken returns the member ID a token of channel's presence
// continues after; ok is false for anything else.
func decodePresenceToken(channel, token string) (after string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(token)
	prefix := "p" + channel + "\x00"
	if err != nil || !strings.HasPrefix(string(b), prefix) {
		return "", false
	}
	return string(b[len(prefix):]), true
}

// subscribeHook runs the subscribe hook of topic's namespace (the global
// one for resource topics) and returns the presence metadata it set (nil:
// none). Errors: *HookDeniedError, *HookFailedError.
func (a *App) subscribeHook(ctx context.Context, p auth.Principal, t stream.Topic, pred store.Predicate, meta json.RawMessage, client ClientInfo) (json.RawMessage, error) {
	cfg := a.rt.Namespaces.Default.Subscribe
	if !t.IsResource() {
		cfg = a.rt.Namespaces.For(t.Channel).Subscribe
	}
	if !cfg.Enabled() {
		return nil, nil // the common case: no call to build
	}
	reply, _, err := a.callHook(ctx, cfg, HookCall{Kind: HookSubscribe, Principal: p, Client: client, Topic: t.Path, Labels: pred.Selector.String(), Filter: pred.Filter.String(), Meta: meta})
	return reply.Meta, err
}

func (a *App) checkChannel(p auth.Principal, path, channel string) error {
	if !stream.ValidChannel(channel) {
		return store.Errorf(store.CodeInvalid, "invalid channel name %q", clip(channel))
	}
	return a.Authorize(p, auth.ActionRead, path)
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
