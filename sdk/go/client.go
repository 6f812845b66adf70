package tandem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// TokenSource returns the bearer token to present. It is called for every
// REST request, before every WebSocket dial and before every in-band
// refresh, so it may return a fresh token each time (e.g. from an OAuth
// token cache). Errors are treated as transient by the realtime
// connection (it retries with backoff).
type TokenSource func(ctx context.Context) (string, error)

// StaticToken is a TokenSource that always returns token.
func StaticToken(token string) TokenSource {
	return func(context.Context) (string, error) { return token, nil }
}

// Client is a Tandem client: REST through the generated client and
// realtime connections through Connect. It is safe for concurrent use.
type Client struct {
	// REST is the generated client for every REST operation; it carries the
	// configured credentials.
	REST *client.ClientWithResponses

	base        *url.URL
	hc          *http.Client
	tokens      TokenSource
	refreshable bool
	apiKey      string
	dialer      *websocket.Dialer
	backoff     Backoff
	trace       func(out bool, frame []byte)
	status      func(Status)
	serverSubs  func(*Subscription)
	logger      *slog.Logger
}

// Option configures a Client.
type Option func(*Client)

// WithToken authenticates with a fixed bearer token (a JWT). A connection
// whose token expires is closed by the server with code 4001 and not
// retried; use WithTokenSource to refresh tokens.
func WithToken(token string) Option {
	return func(c *Client) { c.tokens, c.refreshable = StaticToken(token), false }
}

// WithTokenSource authenticates with tokens from ts. Realtime connections
// present a fresh token on every dial and refresh it in-band (an auth frame)
// before the current one expires, so long-lived connections survive token
// expiry without reconnecting.
func WithTokenSource(ts TokenSource) Option {
	return func(c *Client) { c.tokens, c.refreshable = ts, ts != nil }
}

// WithAPIKey authenticates with an API key (X-API-Key header).
func WithAPIKey(key string) Option { return func(c *Client) { c.apiKey = key } }

// WithHTTPClient sets the HTTP client for REST requests (default: a client
// with a 30 s timeout).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithDialer sets the WebSocket dialer (default: websocket.DefaultDialer
// settings with a 10 s handshake timeout).
func WithDialer(d *websocket.Dialer) Option { return func(c *Client) { c.dialer = d } }

// WithBackoff sets the reconnect backoff (default 250 ms doubling to 30 s,
// with jitter).
func WithBackoff(b Backoff) Option { return func(c *Client) { c.backoff = b } }

// WithStatus reports connection state changes (connected, reconnecting
// after an error, closed) of every Conn of the client. fn must not block.
func WithStatus(fn func(Status)) Option { return func(c *Client) { c.status = fn } }

// WithServerSubscriptions receives the server-side subscriptions of every
// Conn of the client. When the server subscribes a connection to a topic
// (a subscribed frame, e.g. made by the application through the server's
// hooks), fn gets a *Subscription that delivers that topic's events on its
// Events channel, live from the frame's cursor, like one made with
// Subscribe (Topic and Labels say which it is). fn is called from the
// Conn's reader and must not block: hand the subscription to a goroutine.
// Its events queue from the subscribed frame on, so none is missed
// meanwhile.
//
// A server-side subscription ends, after delivering what was queued, with
// ErrUnsubscribedByServer when the server sends unsubscribed, with
// ErrClosed on Subscription.Close (which unsubscribes) or Conn.Close, and
// with ErrConnectionLost when its connection drops: the SDK does not make
// it again after a reconnect, and neither does the server (if the server
// subscribes the new connection, fn gets a new Subscription). When its
// application falls MaxPending (10,000) events behind, it is paused like
// any subscription: the SDK unsubscribes and later subscribes again from
// its cursor, which needs the read grant on the topic.
//
// Without this option the SDK ignores subscribed frames and the events of
// those subscriptions. An unsubscribed frame ends a subscription the
// client made too, with ErrUnsubscribedByServer.
func WithServerSubscriptions(fn func(*Subscription)) Option {
	return func(c *Client) { c.serverSubs = fn }
}

// WithFrameTrace calls fn with every WebSocket frame sent (out == true) or
// received, e.g. to log or validate them. fn must not block or keep frame.
func WithFrameTrace(fn func(out bool, frame []byte)) Option {
	return func(c *Client) { c.trace = fn }
}

// WithLogger logs connection events at debug level (default: none).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.logger = l } }

// New returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8080"). Errors: baseURL is not an http(s) URL.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("tandem: base URL %q: want http(s)://host[:port]", baseURL)
	}
	c := &Client{base: u, backoff: Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if c.dialer == nil {
		c.dialer = &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 10 * time.Second}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	c.backoff = c.backoff.withDefaults()
	c.REST, err = client.NewClientWithResponses(u.String(), client.WithHTTPClient(c.hc), client.WithRequestEditorFn(c.authorize))
	if err != nil {
		return nil, fmt.Errorf("tandem: %w", err)
	}
	return c, nil
}

// URL returns the server's base URL.
func (c *Client) URL() string { return c.base.String() }

// authorize adds the configured credentials to a REST request.
func (c *Client) authorize(ctx context.Context, req *http.Request) error {
	return c.setAuth(ctx, req.Header)
}

func (c *Client) setAuth(ctx context.Context, h http.Header) error {
	if c.tokens != nil {
		tok, err := c.tokens(ctx)
		if err != nil {
			return fmt.Errorf("tandem: token source: %w", err)
		}
		if tok != "" {
			h.Set("Authorization", "Bearer "+tok)
		}
	}
	if c.apiKey != "" {
		h.Set("X-API-Key", c.apiKey)
	}
	return nil
}

// Topic helpers: a topic is a REST path without the /v1/ prefix.

// CollectionTopic is the topic of every change in a collection.
func CollectionTopic(collection string) string { return "collections/" + collection + "/resources" }

// ResourceTopic is the topic of one resource.
func ResourceTopic(collection, id string) string { return CollectionTopic(collection) + "/" + id }

// ChannelTopic is the topic of a channel's messages.
func ChannelTopic(channel string) string { return "channels/" + channel + "/messages" }

// PresenceTopic is the topic of a channel's presence.
func PresenceTopic(channel string) string { return "channels/" + channel + "/presence" }

// rawJSON turns v into JSON: json.RawMessage and []byte are taken as they
// are (and must be valid JSON), anything else is marshalled.
func rawJSON(v any) (json.RawMessage, error) {
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		b = x
	case []byte:
		b = x
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, fmt.Errorf("tandem: encode data: %w", err)
		}
	}
	if !json.Valid(b) {
		return nil, errors.New("tandem: data is not valid JSON")
	}
	return json.RawMessage(b), nil
}

// check turns a REST reply other than want into an error carrying the
// server's problem.
func check(status int, body []byte, want ...int) error {
	for _, w := range want {
		if status == w {
			return nil
		}
	}
	var p client.Problem
	if err := json.Unmarshal(body, &p); err != nil || p.Status == 0 {
		p = client.Problem{Type: "about:blank", Title: http.StatusText(status), Status: status}
		if len(body) > 0 {
			d := strings.TrimSpace(string(body))
			if len(d) > 200 {
				d = d[:200]
			}
			p.Detail = &d
		}
	}
	return newProblemError(p, "", "", "")
}

// CreateCollection creates a collection, optionally with a JSON Schema for
// its resources' data (nil for none). Errors: ErrConflict when it exists,
// *ProblemError.
func (c *Client) CreateCollection(ctx context.Context, name string, schema json.RawMessage) (*client.Collection, error) {
	r, err := c.REST.CreateCollectionWithResponse(ctx, nil, client.CollectionCreate{Name: name, Schema: schema})
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusCreated); err != nil {
		return nil, err
	}
	return r.JSON201, nil
}

// EnsureCollection creates a collection without a schema unless it exists.
// Errors: *ProblemError.
func (c *Client) EnsureCollection(ctx context.Context, name string) error {
	_, err := c.CreateCollection(ctx, name, nil)
	if errors.Is(err, ErrConflict) {
		return nil
	}
	return err
}

// Get reads one resource. Errors: ErrNotFound, *ProblemError.
func (c *Client) Get(ctx context.Context, collection, id string) (*client.Resource, error) {
	r, err := c.REST.GetResourceWithResponse(ctx, collection, id, nil)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}

// Put creates or replaces a resource with data (any JSON object; a
// json.RawMessage is sent as is) and labels (nil for none). Errors:
// ErrNotFound (collection), *ProblemError (e.g. 422 schema violation).
func (c *Client) Put(ctx context.Context, collection, id string, data any, labels map[string]string) (*client.Resource, error) {
	raw, err := rawJSON(data)
	if err != nil {
		return nil, err
	}
	body := client.ResourceReplace{Data: raw}
	if labels != nil {
		l := client.Labels(labels)
		body.Labels = &l
	}
	r, err := c.REST.ReplaceResourceWithResponse(ctx, collection, id, nil, body)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK, http.StatusCreated); err != nil {
		return nil, err
	}
	if r.JSON201 != nil {
		return r.JSON201, nil
	}
	return r.JSON200, nil
}

// Delete deletes a resource. Errors: ErrNotFound, *ProblemError.
func (c *Client) Delete(ctx context.Context, collection, id string) error {
	r, err := c.REST.DeleteResourceWithResponse(ctx, collection, id, nil)
	if err != nil {
		return err
	}
	return check(r.StatusCode(), r.Body, http.StatusNoContent)
}

// Publish publishes data (any JSON value) to a channel over REST and
// returns the message with its cursor. Conn.Publish does the same over the
// realtime connection. Errors: ErrForbidden, *ProblemError.
func (c *Client) Publish(ctx context.Context, channel string, data any) (*client.ChannelMessage, error) {
	raw, err := rawJSON(data)
	if err != nil {
		return nil, err
	}
	r, err := c.REST.PublishMessageWithResponse(ctx, channel, nil, client.MessagePublish{Data: raw})
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusCreated); err != nil {
		return nil, err
	}
	return r.JSON201, nil
}

// Presence reads who is present in a channel, following every page (see
// PresencePage). Errors: *ProblemError.
func (c *Client) Presence(ctx context.Context, channel string) (*client.Presence, error) {
	all := &client.Presence{Channel: channel, Members: []client.PresenceMember{}}
	token := ""
	for {
		p, err := c.PresencePage(ctx, channel, 0, token)
		if err != nil {
			return nil, err
		}
		all.Members = append(all.Members, p.Members...)
		if p.NextPageToken == nil || *p.NextPageToken == "" {
			return all, nil
		}
		token = *p.NextPageToken
	}
}

// PresencePage reads one page of a channel's members, ordered by id: at
// most limit members (0: the server's default, 100), after the page whose
// NextPageToken is pageToken ("": the first page). NextPageToken is nil
// on the last page. Errors: *ProblemError.
func (c *Client) PresencePage(ctx context.Context, channel string, limit int, pageToken string) (*client.Presence, error) {
	params := &client.ChannelPresenceParams{}
	if limit > 0 {
		params.Limit = &limit
	}
	if pageToken != "" {
		params.PageToken = &pageToken
	}
	r, err := c.REST.ChannelPresenceWithResponse(ctx, channel, params)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}

// History reads up to limit messages of a channel after since ("" for the
// oldest retained; limit 0 for the server default). Errors:
// ErrResyncRequired (*ProblemError) when since is outside the retained
// history, *ProblemError.
func (c *Client) History(ctx context.Context, channel, since string, limit int) (*client.MessageList, error) {
	params := &client.ChannelHistoryParams{}
	if since != "" {
		params.Since = &since
	}
	if limit > 0 {
		params.Limit = &limit
	}
	r, err := c.REST.ChannelHistoryWithResponse(ctx, channel, params)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}
