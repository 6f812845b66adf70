package app

// The authorisation and policy matrix of the realtime use cases, without
// sockets: a real SQLite store, the memory broker, the real hub and
// engines, and a sink that records what it is given.

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/broker/memory"
	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/sqlite"
	"github.com/tandemhq/tandem/internal/stream"
)

// jsonFrames is a plain encoding of the engines' frames (the AsyncAPI one
// is the edge's, internal/wire).
type jsonFrames struct{}

func (jsonFrames) Event(ev stream.Event) ([]byte, error) { return json.Marshal(ev) }
func (jsonFrames) Synced(topic, labels, filter string, cur stream.Cursor) []byte {
	b, _ := json.Marshal(map[string]string{"synced": topic})
	return b
}
func (jsonFrames) Presence(topic, action string, ms []broker.Member) []byte {
	b, _ := json.Marshal(map[string]any{"presence": topic, "action": action, "members": ms})
	return b
}
func (jsonFrames) Reset(topic string, err error) []byte {
	b, _ := json.Marshal(map[string]string{"reset": topic})
	return b
}

// recorder is a sink that takes everything.
type recorder struct {
	mu  sync.Mutex
	got []*hub.Message
}

func (r *recorder) Push(m *hub.Message) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, m)
	return true
}
func (r *recorder) PushWait(_ context.Context, m *hub.Message) error { r.Push(m); return nil }
func (r *recorder) Close()                                           {}
func (r *recorder) SlowConsumer()                                    {}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// newRealtimeApp is an App with every engine, namespaces "open" (client
// publishing and presence) and the default (neither), and caps of two
// subscriptions per principal.
func newRealtimeApp(t *testing.T) (*App, *stream.Feed) {
	t.Helper()
	return newRealtimeAppWith(t, nil)
}

// newRealtimeAppWith is newRealtimeApp with tweak applied to its options.
func newRealtimeAppWith(t *testing.T, tweak func(*Options)) (*App, *stream.Feed) {
	t.Helper()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "app.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	h := hub.New(hub.Options{})
	feed, err := stream.NewFeed(ctx, st, h, stream.FeedOptions{Frames: jsonFrames{}})
	if err != nil {
		t.Fatal(err)
	}
	br := memory.New(memory.Options{})
	channels := &stream.Channels{Broker: br, Hub: h, Frames: jsonFrames{}}
	bctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = br.Run(bctx, channels) }()
	t.Cleanup(func() { stop(); <-done; br.Close() })
	open := ChannelOptions{Presence: true, ClientPublish: true, MaxMessageBytes: 64, History: broker.HistoryOptions{Size: 10}}
	opts := Options{Realtime: Realtime{
		Resources:  &stream.Resources{Store: st, Hub: h, Feed: feed, Frames: jsonFrames{}},
		Channels:   channels,
		Namespaces: Namespaces{Default: ChannelOptions{History: broker.HistoryOptions{Size: 10}}, ByName: map[string]ChannelOptions{"open": open}},
		Caps:       &quota.Caps{SubsPerPrincipal: quota.New(quota.Limit{Name: "subs", What: "subscriptions", Max: 2})},
	}}
	if tweak != nil {
		tweak(&opts)
	}
	a := New(st, opts)
	if _, err := a.CreateCollection(ctx, everyone, "notes", nil); err != nil {
		t.Fatal(err)
	}
	return a, feed
}

func principal(kind, subject string, grants ...string) auth.Principal {
	gs, err := auth.ParseGrants(grants)
	if err != nil {
		panic(err)
	}
	return auth.Principal{Kind: kind, Subject: subject, Grants: gs}
}

func topicOf(t *testing.T, s string) stream.Topic {
	t.Helper()
	tp, err := stream.ParseTopic(s)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

var (
	anonymous = principal(auth.KindAnonymous, "")
	reader    = principal(auth.KindJWT, "rita", "read:**")
	publisher = principal(auth.KindJWT, "pat", "read:**", "publish:channels/**")
	admin     = principal(auth.KindAPIKey, "ops", "admin:**", "publish:**")
	expired   = auth.Principal{Kind: auth.KindJWT, Subject: "old", Grants: auth.AllowAll(), ExpiresAt: time.Now().Add(-time.Minute)}
)

// wantErr checks err against what a case expects: nil, or an error
// matching target (errors.Is), or an InputError naming input.
func wantErr(t *testing.T, err, target error, input string) {
	t.Helper()
	switch {
	case target == nil && input == "":
		if err != nil {
			t.Fatalf("unexpected error %v", err)
		}
	case input != "":
		var ie *InputError
		if !errors.As(err, &ie) || ie.Name != input || !errors.Is(err, store.ErrInvalid) {
			t.Fatalf("error %v, want an invalid %s", err, input)
		}
	case !errors.Is(err, target):
		t.Fatalf("error %v, want %v", err, target)
	}
}

func TestSubscribePolicy(t *testing.T) {
	a, feed := newRealtimeApp(t)
	sel, _ := store.ParseSelector("env=prod")
	resourceCursor := feed.Cursor(0)
	otherEpoch := stream.Cursor{Kind: stream.KindResource, Epoch: "another", Pos: 0}
	channelCursor := stream.Cursor{Kind: stream.KindChannel, Epoch: "e", Pos: 0}
	tests := []struct {
		name   string
		p      auth.Principal
		req    SubscribeRequest
		target error
		input  string
	}{
		{"ReaderResources", reader, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources")}, nil, ""},
		{"ReaderSelector", reader, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources"), Selector: sel}, nil, ""},
		{"ReaderSince", reader, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources"), Since: &resourceCursor}, nil, ""},
		{"AnonymousNeedsToken", anonymous, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources")}, auth.ErrNoToken, ""},
		{"ScopeTooNarrow", principal(auth.KindJWT, "n", "read:channels/**"), SubscribeRequest{Topic: topicOf(t, "collections/notes/resources")}, auth.ErrInsufficientScope, ""},
		{"Expired", expired, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources")}, auth.ErrInvalidToken, ""},
		{"SelectorOnChannel", reader, SubscribeRequest{Topic: topicOf(t, "channels/open:a/messages"), Selector: sel}, nil, "labels"},
		{"SinceAndSnapshot", reader, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources"), Since: &resourceCursor, Snapshot: true}, store.ErrInvalid, ""},
		{"ChannelCursorOnResources", reader, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources"), Since: &channelCursor}, store.ErrInvalid, ""},
		{"ResourceCursorOnChannel", reader, SubscribeRequest{Topic: topicOf(t, "channels/open:a/messages"), Since: &resourceCursor}, store.ErrInvalid, ""},
		{"OtherEpoch", reader, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources"), Since: &otherEpoch}, store.ErrCompacted, ""},
		{"PresenceWithSince", reader, SubscribeRequest{Topic: topicOf(t, "channels/open:a/presence"), Since: &channelCursor}, store.ErrInvalid, ""},
		{"PresenceDisabled", reader, SubscribeRequest{Topic: topicOf(t, "channels/closed/presence")}, store.ErrInvalid, ""},
		{"PresenceEnabled", reader, SubscribeRequest{Topic: topicOf(t, "channels/open:a/presence")}, nil, ""},
		{"NoCollection", reader, SubscribeRequest{Topic: topicOf(t, "collections/nope/resources")}, store.ErrNotFound, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub, _, run, err := a.Subscribe(t.Context(), tc.p, tc.req, &recorder{})
			wantErr(t, err, tc.target, tc.input)
			if err == nil {
				if err := run(t.Context()); err != nil {
					t.Fatal(err)
				}
				sub.Close()
				sub.Close() // idempotent
			}
		})
	}
}

// TestSubscribeCapsAndPresence checks that the principal's cap counts
// subscriptions until they close, and that a connection's subscription to
// a presence namespace joins as the principal's subject.
func TestSubscribeCapsAndPresence(t *testing.T) {
	a, _ := newRealtimeApp(t)
	ctx := t.Context()
	req := SubscribeRequest{Topic: topicOf(t, "channels/open:room/messages"), ConnID: "c1", Client: "127.0.0.1:1"}
	s1, _, _, err := a.Subscribe(ctx, reader, req, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if !s1.Joined() {
		t.Fatal("a connection's subscription to a presence namespace did not join")
	}
	page, err := a.Presence(ctx, reader, "open:room", 0, "")
	ms := page.Members
	if err != nil || len(ms) != 1 || ms[0].ID != "rita" || ms[0].ConnID != "c1" {
		t.Fatalf("presence %+v, %v; want rita on c1", ms, err)
	}
	s2, _, _, err := a.Subscribe(ctx, reader, SubscribeRequest{Topic: topicOf(t, "collections/notes/resources")}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := a.Subscribe(ctx, reader, SubscribeRequest{Topic: topicOf(t, "channels/x/messages")}, &recorder{}); !errors.Is(err, &store.Error{Code: store.CodeTooManyRequests}) {
		t.Fatalf("third subscription: %v, want the principal's cap", err)
	}
	// Another principal has its own count.
	if s, _, _, err := a.Subscribe(ctx, publisher, SubscribeRequest{Topic: topicOf(t, "channels/x/messages")}, &recorder{}); err != nil {
		t.Fatal(err)
	} else {
		s.Close()
	}
	s1.Close()
	if page, _ := a.Presence(ctx, reader, "open:room", 0, ""); len(page.Members) != 0 {
		t.Fatalf("presence after close: %+v", page.Members)
	}
	s3, _, _, err := a.Subscribe(ctx, reader, SubscribeRequest{Topic: topicOf(t, "channels/x/messages"), ConnID: "c1"}, &recorder{})
	if err != nil {
		t.Fatalf("after a close the cap has room: %v", err)
	}
	if s3.Joined() {
		t.Fatal("joined presence in a namespace without presence")
	}
	s2.Close()
	s3.Close()
}

func TestPublishPolicy(t *testing.T) {
	a, _ := newRealtimeApp(t)
	data := json.RawMessage(`{"text":"hi"}`)
	tests := []struct {
		name   string
		p      auth.Principal
		topic  string
		data   json.RawMessage
		connID string
		target error
		pub    string // the publisher recorded
	}{
		{"ClientPublish", publisher, "channels/open:a/messages", data, "c1", nil, "pat"},
		{"AnonymousNamedByConnection", principal(auth.KindAnonymous, "", "publish:channels/**"), "channels/open:a/messages", data, "c9", nil, "c9"},
		{"NoGrant", reader, "channels/open:a/messages", data, "", auth.ErrInsufficientScope, ""},
		{"AnonymousNoGrant", anonymous, "channels/open:a/messages", data, "", auth.ErrNoToken, ""},
		{"ClientPublishDisallowed", publisher, "channels/closed/messages", data, "", &store.Error{Code: store.CodeForbidden}, ""},
		{"AdminMayPublishAnyway", admin, "channels/closed/messages", data, "", nil, "ops"},
		{"AdminNeedsThePublishGrantToo", principal(auth.KindAPIKey, "ops", "admin:**"), "channels/closed/messages", data, "", auth.ErrInsufficientScope, ""},
		{"TooLarge", publisher, "channels/open:a/messages", json.RawMessage(`{"text":"` + string(bytesOf('x', 80)) + `"}`), "", &store.Error{Code: store.CodeTooLarge}, ""},
		{"NotJSON", publisher, "channels/open:a/messages", json.RawMessage(`{`), "", store.ErrInvalid, ""},
		{"PresenceTopic", publisher, "channels/open:a/presence", data, "", store.ErrInvalid, ""},
		{"ResourceTopic", admin, "collections/notes/resources", data, "", store.ErrInvalid, ""},
		{"InvalidChannel", admin, "", data, "", store.ErrInvalid, ""},
		{"Expired", expired, "channels/open:a/messages", data, "", auth.ErrInvalidToken, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			topic := stream.Topic{Kind: stream.TopicChannel, Channel: "-bad", Path: "channels/-bad/messages"} // as a caller might build it
			if tc.topic != "" {
				topic = topicOf(t, tc.topic)
			}
			m, err := a.Publish(t.Context(), tc.p, topic, tc.data, ClientInfo{ConnID: tc.connID})
			wantErr(t, err, tc.target, "")
			if err == nil && m.Publisher != tc.pub {
				t.Fatalf("publisher %q, want %q", m.Publisher, tc.pub)
			}
		})
	}
}

func bytesOf(c byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = c
	}
	return b
}

func TestReadPolicy(t *testing.T) {
	a, feed := newRealtimeApp(t)
	ctx := t.Context()
	if _, err := a.Publish(ctx, admin, topicOf(t, "channels/open:h/messages"), json.RawMessage(`1`), ClientInfo{}); err != nil {
		t.Fatal(err)
	}
	resourceCursor := feed.Cursor(0)
	t.Run("History", func(t *testing.T) {
		msgs, next, err := a.History(ctx, reader, "open:h", nil, 10)
		if err != nil || len(msgs) != 1 || next.Kind != stream.KindChannel {
			t.Fatalf("history %v %v %v", msgs, next, err)
		}
		_, _, err = a.History(ctx, anonymous, "open:h", nil, 10)
		wantErr(t, err, auth.ErrNoToken, "")
		_, _, err = a.History(ctx, reader, "open:h", &resourceCursor, 10)
		wantErr(t, err, store.ErrInvalid, "")
		_, _, err = a.History(ctx, reader, "-bad", nil, 10)
		wantErr(t, err, store.ErrInvalid, "")
	})
	t.Run("Presence", func(t *testing.T) {
		_, err := a.Presence(ctx, reader, "closed", 0, "")
		wantErr(t, err, store.ErrNotFound, "")
		_, err = a.Presence(ctx, principal(auth.KindJWT, "m", "read:channels/*/messages"), "open:h", 0, "")
		wantErr(t, err, auth.ErrInsufficientScope, "")
	})
	t.Run("Poll", func(t *testing.T) {
		stop := make(chan struct{})
		close(stop) // answer at once
		evs, next, err := a.Poll(ctx, reader, PollRequest{Topic: topicOf(t, "channels/open:h/messages"), Limit: 10, Wait: time.Second}, stop)
		if err != nil || len(evs) != 0 || next.Kind != stream.KindChannel {
			t.Fatalf("poll from now: %v %v %v", evs, next, err)
		}
		sel, _ := store.ParseSelector("a=b")
		_, _, err = a.Poll(ctx, reader, PollRequest{Topic: topicOf(t, "channels/open:h/messages"), Selector: sel, Limit: 10}, stop)
		wantErr(t, err, nil, "labels")
		_, _, err = a.Poll(ctx, reader, PollRequest{Topic: topicOf(t, "channels/open:h/presence"), Limit: 10}, stop)
		wantErr(t, err, store.ErrInvalid, "")
		_, _, err = a.Poll(ctx, anonymous, PollRequest{Topic: topicOf(t, "collections/notes/resources"), Limit: 10}, stop)
		wantErr(t, err, auth.ErrNoToken, "")
	})
}

func TestResourcePolicy(t *testing.T) {
	a, _ := newRealtimeApp(t)
	ctx := t.Context()
	writer := principal(auth.KindJWT, "w", "read:**", "write:collections/notes/**")
	if _, err := a.CreateCollection(ctx, writer, "more", nil); !errors.Is(err, auth.ErrInsufficientScope) {
		t.Fatalf("a writer created a collection: %v", err)
	}
	if _, err := a.CreateResource(ctx, reader, "notes", "n1", json.RawMessage(`{}`), nil); !errors.Is(err, auth.ErrInsufficientScope) {
		t.Fatalf("a reader wrote: %v", err)
	}
	r, err := a.CreateResource(ctx, writer, "notes", "n1", json.RawMessage(`{"a":1}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.GetResource(ctx, anonymous, "notes", "n1"); !errors.Is(err, auth.ErrNoToken) {
		t.Fatalf("anonymous read: %v", err)
	}
	if _, err := a.PatchResource(ctx, writer, "notes", "n1", json.RawMessage(`{"data":{"b":2}}`), r.Revision); err != nil {
		t.Fatal(err)
	}
	if _, err := a.DeleteResource(ctx, reader, "notes", "n1", store.Precondition{}); !errors.Is(err, auth.ErrInsufficientScope) {
		t.Fatalf("a reader deleted: %v", err)
	}
	if err := a.DeleteCollection(ctx, writer, "notes"); !errors.Is(err, auth.ErrInsufficientScope) {
		t.Fatalf("a writer deleted the collection: %v", err)
	}
	if err := a.CheckRefresh(reader, principal(auth.KindJWT, "mallory", "admin:**")); !errors.Is(err, auth.ErrInsufficientScope) {
		t.Fatalf("a refresh changed the subject: %v", err)
	}
	if err := a.CheckRefresh(anonymous, reader); err != nil {
		t.Fatalf("an anonymous connection authenticated: %v", err)
	}
}

func TestIdempotent(t *testing.T) {
	a, _ := newRealtimeApp(t)
	ctx := t.Context()
	runs := 0
	do := func(status int) func() Reply {
		return func() Reply {
			runs++
			return Reply{Status: status, Header: map[string]string{"Location": "/x"}, Body: []byte("body")}
		}
	}
	r, replayed, err := a.Idempotent(ctx, reader, "k1", "fp", do(201))
	if err != nil || replayed || r.Status != 201 || runs != 1 {
		t.Fatalf("first: %+v %v %v (runs %d)", r, replayed, err, runs)
	}
	r, replayed, err = a.Idempotent(ctx, reader, "k1", "fp", do(201))
	if err != nil || !replayed || r.Status != 201 || string(r.Body) != "body" || r.Header["Location"] != "/x" || runs != 1 {
		t.Fatalf("repeat: %+v %v %v (runs %d)", r, replayed, err, runs)
	}
	if _, _, err := a.Idempotent(ctx, reader, "k1", "other", do(201)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("another request with the key: %v", err)
	}
	// Keys are per principal.
	if _, replayed, _ := a.Idempotent(ctx, publisher, "k1", "other", do(201)); replayed || runs != 2 {
		t.Fatalf("another principal's key was replayed (runs %d)", runs)
	}
	// 5xx replies are not stored: the retry runs again.
	a.Idempotent(ctx, reader, "k5", "fp", do(503))
	if _, replayed, _ := a.Idempotent(ctx, reader, "k5", "fp", do(201)); replayed || runs != 4 {
		t.Fatalf("a 5xx reply was replayed (runs %d)", runs)
	}
}
