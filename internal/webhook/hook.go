package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
)

var (
	_ app.HookCaller  = (*HookClient)(nil)
	_ app.HookMetrics = (*HookMetrics)(nil)
)

// DefaultMaxHookResponseBytes bounds a hook's answer when
// HookOptions.MaxResponseBytes is 0.
const DefaultMaxHookResponseBytes = 1 << 20

// HookOptions configure a HookClient.
type HookOptions struct {
	// Secrets sign every call (Standard Webhooks, one signature each).
	Secrets [][]byte
	// AllowPrivate lets hooks target loopback and private addresses (an
	// application next to Tandem, usually).
	AllowPrivate bool
	// MaxResponseBytes bounds an answer (0: 1 MiB); a longer one is a
	// failure.
	MaxResponseBytes int64
	// UserAgent is the user-agent header ("": "tandem-hooks").
	UserAgent string
	// Validate, when set, checks an answer against the named schema of
	// spec/openapi.yaml (ConnectHookResponse, …, HookProblem).
	Validate func(schema string, body []byte) error
	Logger   *slog.Logger
}

// HookClient calls the application's hooks: one signed POST per call. It
// implements app.HookCaller and is safe for concurrent use.
type HookClient struct {
	opts      HookOptions
	client    *http.Client
	transport *http.Transport
	now       func() time.Time
}

// NewHookClient returns a HookClient with its own connection pool (close
// it with Close). It returns no error.
func NewHookClient(opts HookOptions) *HookClient {
	if opts.MaxResponseBytes <= 0 {
		opts.MaxResponseBytes = DefaultMaxHookResponseBytes
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "tandem-hooks"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &HookClient{opts: opts, now: time.Now}
	h.client, h.transport = newClient(opts.AllowPrivate)
	return h
}

// Close closes the idle pooled connections. It returns nothing.
func (h *HookClient) Close() { h.transport.CloseIdleConnections() }

// SetValidator sets HookOptions.Validate, before the first call (it is
// not synchronised with calls). It returns nothing.
func (h *HookClient) SetValidator(v func(schema string, body []byte) error) { h.opts.Validate = v }

// CheckURL checks a hook's URL as a webhook's (scheme, host, and, unless
// private targets are allowed, where it resolves). Errors: as
// Sender.CheckURL.
func (h *HookClient) CheckURL(ctx context.Context, raw string) error {
	return checkTarget(ctx, raw, h.opts.AllowPrivate, net.DefaultResolver, hookAllowFlag)
}

// The request bodies (spec/openapi.yaml: ConnectHookRequest, …).
type (
	hookPrincipal struct {
		Kind      string          `json:"kind"`
		Subject   string          `json:"subject,omitempty"`
		Claims    json.RawMessage `json:"claims,omitempty"`
		ExpiresAt *time.Time      `json:"expiresAt,omitempty"`
	}
	hookClient struct {
		Transport    string `json:"transport"`
		ConnectionID string `json:"connectionId,omitempty"`
		Remote       string `json:"remoteAddress"`
	}
	hookRequest struct {
		Hook      app.HookKind    `json:"hook"`
		ID        string          `json:"id"`
		Time      time.Time       `json:"time"`
		Principal hookPrincipal   `json:"principal"`
		Client    hookClient      `json:"client"`
		Topic     string          `json:"topic,omitempty"`
		Labels    string          `json:"labels,omitempty"`
		Filter    string          `json:"filter,omitempty"`
		Channel   string          `json:"channel,omitempty"`
		Method    string          `json:"method,omitempty"`
		Meta      json.RawMessage `json:"meta,omitempty"`
		Data      json.RawMessage `json:"data,omitempty"`
	}
	hookProblem struct {
		Status int    `json:"status,omitempty"`
		Type   string `json:"type,omitempty"`
		Title  string `json:"title,omitempty"`
		Detail string `json:"detail,omitempty"`
	}
	hookResponse struct {
		Problem *hookProblem    `json:"problem"`
		Data    json.RawMessage `json:"data"`
		Meta    json.RawMessage `json:"meta"`
		Grants  []string        `json:"grants"`
	}
)

var responseSchema = map[app.HookKind]string{
	app.HookConnect: "ConnectHookResponse", app.HookSubscribe: "SubscribeHookResponse",
	app.HookPublish: "PublishHookResponse", app.HookRPC: "RpcHookResponse",
}

// refusals are the statuses whose problem body refuses a request.
var refusals = map[int]bool{400: true, 403: true, 409: true, 422: true, 429: true}

// HookBody is the JSON body of call (exported for tests and tools). It
// returns no error: every part is JSON already.
func HookBody(call app.HookCall) []byte {
	p := call.Principal
	req := hookRequest{Hook: call.Kind, ID: call.ID, Time: call.Time.UTC(),
		Principal: hookPrincipal{Kind: principalKind(p), Subject: p.Subject, Claims: p.Claims},
		Client:    hookClient{Transport: call.Client.Transport, ConnectionID: call.Client.ConnID, Remote: call.Client.Remote},
		Topic:     call.Topic, Labels: call.Labels, Filter: call.Filter, Channel: call.Channel, Method: call.Method, Meta: call.Meta, Data: call.Data}
	if bytes.Equal(bytes.TrimSpace(req.Data), []byte("null")) {
		req.Data = nil // absent: the schemas have no null
	}
	if !p.ExpiresAt.IsZero() {
		t := p.ExpiresAt.UTC()
		req.Principal.ExpiresAt = &t
	}
	if p.Anonymous() {
		req.Principal.Subject = ""
	}
	b, _ := json.Marshal(req)
	return b
}

func principalKind(p auth.Principal) string {
	switch p.Kind {
	case auth.KindJWT:
		return "jwt"
	case auth.KindAPIKey:
		return "api-key"
	}
	return "anonymous"
}

// CallHook implements app.HookCaller: a POST of the call's body, signed,
// bounded by ctx and call.Timeout. Errors: a refused or unreachable
// target, no answer in time, a status other than 200, 204 and the
// refusals, a body over MaxResponseBytes, an answer that is not JSON or
// violates the hook's response schema — each with a message safe to show
// to the client.
func (h *HookClient) CallHook(ctx context.Context, call app.HookCall) (app.HookReply, error) {
	u, err := parseTarget(call.URL)
	if err != nil {
		return app.HookReply{}, err
	}
	timeout := call.Timeout
	if timeout <= 0 {
		timeout = app.DefaultHookTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	body := HookBody(call)
	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, call.URL, bytes.NewReader(body))
	if err != nil {
		return app.HookReply{}, describe(ctx, actx, err, timeout, u.Host, hookAllowFlag)
	}
	ts := strconv.FormatInt(h.now().Unix(), 10)
	hd := hreq.Header
	hd.Set("Content-Type", "application/json")
	hd.Set("Accept", "application/json, application/problem+json")
	hd.Set("User-Agent", h.opts.UserAgent)
	hd.Set("Webhook-Id", call.ID)
	hd.Set("Webhook-Timestamp", ts)
	if len(h.opts.Secrets) > 0 {
		hd.Set("Webhook-Signature", signature(h.opts.Secrets, call.ID, ts, body))
	}
	// An error names the hook's whole timeout, not what a wait for a
	// slot left of it.
	budget := call.Budget
	if budget <= 0 {
		budget = timeout
	}
	resp, err := h.client.Do(hreq)
	if err != nil {
		h.opts.Logger.Debug("hook call failed", "hook", call.Kind, "host", u.Host, "err", unwrapURLError(err))
		return app.HookReply{}, describe(ctx, actx, err, budget, u.Host, hookAllowFlag)
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	if status != http.StatusOK && status != http.StatusNoContent && !refusals[status] {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return app.HookReply{}, fmt.Errorf("%s answered %d %s", u.Host, status, http.StatusText(status))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, h.opts.MaxResponseBytes+1))
	switch {
	case err != nil:
		return app.HookReply{}, describe(ctx, actx, err, budget, u.Host, hookAllowFlag)
	case int64(len(raw)) > h.opts.MaxResponseBytes:
		return app.HookReply{}, fmt.Errorf("%s answered more than %d bytes", u.Host, h.opts.MaxResponseBytes)
	case status == http.StatusNoContent:
		return app.HookReply{}, nil
	}
	if refusals[status] {
		return h.refusal(u.Host, status, resp.Header.Get("Content-Type"), raw)
	}
	return h.answer(call.Kind, u.Host, raw)
}

// answer decodes a 200 answer.
func (h *HookClient) answer(kind app.HookKind, host string, raw []byte) (app.HookReply, error) {
	if !json.Valid(raw) {
		return app.HookReply{}, fmt.Errorf("%s answered a body that is not JSON", host)
	}
	var r hookResponse
	uerr := json.Unmarshal(raw, &r)
	nullData := bytes.Equal(r.Data, []byte("null"))
	if h.opts.Validate != nil {
		body := raw
		if nullData {
			body = withoutNullData(raw)
		}
		if err := h.opts.Validate(responseSchema[kind], body); err != nil {
			return app.HookReply{}, fmt.Errorf("%s answered a body that violates %s: %v", host, responseSchema[kind], err)
		}
	}
	if uerr != nil {
		return app.HookReply{}, fmt.Errorf("%s answered a body that is not a %s: %v", host, responseSchema[kind], uerr)
	}
	reply := app.HookReply{Data: r.Data, Grants: r.Grants}
	if nullData {
		reply.Data = nil // the same as no data
	}
	if len(r.Meta) > 0 && !bytes.Equal(r.Meta, []byte("null")) {
		reply.Meta = r.Meta
	}
	if r.Problem != nil {
		reply.Problem = &app.HookProblem{Status: r.Problem.Status, Type: r.Problem.Type, Title: r.Problem.Title, Detail: r.Problem.Detail}
	}
	return reply, nil
}

// withoutNullData is an answer without a "data": null member (which the
// schemas, OpenAPI 3.0 without null, cannot say means "no data").
func withoutNullData(raw []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	delete(m, "data")
	b, _ := json.Marshal(m)
	return b
}

// refusal decodes a 4xx problem answer: the request is refused with it.
func (h *HookClient) refusal(host string, status int, ctype string, raw []byte) (app.HookReply, error) {
	mt, _, _ := mime.ParseMediaType(ctype)
	p := hookProblem{}
	if mt == "application/problem+json" || mt == "application/json" {
		if !json.Valid(raw) {
			return app.HookReply{}, fmt.Errorf("%s answered %d with a body that is not JSON", host, status)
		}
		if h.opts.Validate != nil {
			if err := h.opts.Validate("HookProblem", raw); err != nil {
				return app.HookReply{}, fmt.Errorf("%s answered %d with a body that violates HookProblem: %v", host, status, err)
			}
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return app.HookReply{}, fmt.Errorf("%s answered %d with a body that is not a problem: %v", host, status, err)
		}
	}
	return app.HookReply{Problem: &app.HookProblem{Status: status, Type: p.Type, Title: p.Title, Detail: p.Detail}}, nil
}

// HookMetrics counts hook calls (tandem_hook_calls_total{hook,result},
// tandem_hook_duration_seconds{hook}).
type HookMetrics struct {
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHookMetrics registers the hook metrics with reg. It panics, as
// prometheus.MustRegister does, when they are registered twice.
func NewHookMetrics(reg prometheus.Registerer) *HookMetrics {
	m := &HookMetrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "tandem_hook_calls_total",
			Help: "Hook calls by hook and result (allowed, denied, failed, overloaded)."}, []string{"hook", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "tandem_hook_duration_seconds",
			Help: "Hook call duration, the wait for a free slot included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)}, []string{"hook"}),
	}
	reg.MustRegister(m.calls, m.duration)
	return m
}

// Called implements app.HookMetrics.
func (m *HookMetrics) Called(hook app.HookKind, result string, took time.Duration) {
	m.calls.WithLabelValues(string(hook), result).Inc()
	m.duration.WithLabelValues(string(hook)).Observe(took.Seconds())
}
