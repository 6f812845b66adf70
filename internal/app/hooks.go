package app

// Hooks: the application's say in connect, subscribe, publish and RPC.
// App decides when a hook is called and what its answer or its failure
// means; the HookCaller port (internal/webhook) makes the signed POST.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// HookKind names a hook.
type HookKind string

// The hooks.
const (
	HookConnect   HookKind = "connect"
	HookSubscribe HookKind = "subscribe"
	HookPublish   HookKind = "publish"
	HookRPC       HookKind = "rpc"
)

// HookFailure is what a failed hook call (timeout, error status, invalid
// answer, unreachable) means for the request.
type HookFailure string

// Failure modes: FailDeny refuses the request with 503 hook-unavailable
// (the default), FailAllow lets it through as if the hook had allowed it.
const (
	FailDeny  HookFailure = "deny"
	FailAllow HookFailure = "allow"
)

// Hook defaults.
const (
	DefaultHookTimeout       = 2 * time.Second
	DefaultHookMaxConcurrent = 64
	DefaultHookMaxQueued     = 1024
)

// HookConfig is one configured hook; the zero value (no URL) is no hook.
type HookConfig struct {
	URL string
	// Timeout bounds a call, its wait for a free slot included
	// (0: DefaultHookTimeout).
	Timeout time.Duration
	// OnError is the failure mode ("": FailDeny). RPC ignores it: a
	// failed RPC always fails.
	OnError HookFailure
}

// Enabled reports whether the hook is configured. It returns no error.
func (h HookConfig) Enabled() bool { return h.URL != "" }

// HookOptions configures hooks besides the per-namespace ones
// (ChannelOptions).
type HookOptions struct {
	// Caller makes the calls; nil disables every hook.
	Caller HookCaller
	// Metrics, when set, counts calls and their outcomes.
	Metrics HookMetrics
	// Connect is the connect hook (global only: a connection has no
	// namespace).
	Connect HookConfig
	// MaxConcurrent bounds the calls in flight to one hook URL, MaxQueued
	// those waiting for a slot; beyond, a request fails at once with 503
	// (whatever the failure mode: it is back-pressure, not a failure).
	// 0: the defaults; a negative MaxQueued lets no call wait.
	MaxConcurrent, MaxQueued int
}

// HookCaller is the outbound port of hooks: one signed POST of the call's
// request body to its URL, its answer decoded and checked against the
// hook's response schema.
type HookCaller interface {
	// CallHook makes the call within ctx and call.Timeout. A 200 with a
	// valid body, or a 400/403/409/422/429 problem, is a HookReply (a
	// refusal has Problem set). Errors: anything else — no answer in
	// time, another status, an invalid or oversized body, a refused or
	// unreachable address — with a message safe to show to the client.
	CallHook(ctx context.Context, call HookCall) (HookReply, error)
}

// HookMetrics records hook calls.
type HookMetrics interface {
	// Called records one call of hook with result "allowed", "denied",
	// "failed" or "overloaded" and its duration.
	Called(hook HookKind, result string, took time.Duration)
}

// ClientInfo is who makes a request, as a transport saw it.
type ClientInfo struct {
	// Transport is "websocket", "sse", "long-poll" or "rest".
	Transport string
	// ConnID is the WebSocket connection ("" for the others).
	ConnID string
	// Remote is the client's address (host:port).
	Remote string
}

// HookCall is one call of a hook: what the application is told.
type HookCall struct {
	Kind HookKind
	URL  string
	// Timeout is what is left of the hook's timeout, Budget the whole of
	// it (what an error message names).
	Timeout, Budget time.Duration
	// ID is unique per call (the webhook-id header).
	ID        string
	Time      time.Time
	Principal auth.Principal
	Client    ClientInfo
	// Topic and Labels (subscribe, publish), Channel (publish), Method
	// (rpc), Meta (subscribe: the client's presence metadata), Data
	// (publish, rpc).
	Topic, Labels, Channel, Method string
	// Filter is the subscription's canonical filter (subscribe).
	Filter     string
	Meta, Data json.RawMessage
}

// HookReply is a hook's answer.
type HookReply struct {
	// Problem, when set, refuses the request.
	Problem *HookProblem
	// Data replaces a published message's data, or is an RPC's result
	// (nil: absent).
	Data json.RawMessage
	// Meta is presence metadata (connect: for every subscription of the
	// connection; subscribe: for this one). Nil: absent.
	Meta json.RawMessage
	// Grants are added to the principal for the connection (connect).
	Grants []string
}

// HookProblem is the application's refusal.
type HookProblem struct {
	// Status is 400, 403, 409, 422 or 429 (0: 403).
	Status              int
	Type, Title, Detail string
}

// HookDeniedError is a request the application's hook refused; transports
// answer with its problem.
type HookDeniedError struct {
	Hook    HookKind
	Problem HookProblem
}

func (e *HookDeniedError) Error() string {
	msg := fmt.Sprintf("refused by the %s hook", e.Hook)
	if e.Problem.Detail != "" {
		msg += ": " + e.Problem.Detail
	} else if e.Problem.Title != "" {
		msg += ": " + e.Problem.Title
	}
	return msg
}

// As gives the refusal the error code of its status (store.ErrorCode).
func (e *HookDeniedError) As(target any) bool {
	t, ok := target.(**store.Error)
	if !ok {
		return false
	}
	code := map[int]store.Code{400: store.CodeInvalid, 409: store.CodeConflict, 422: store.CodeInvalidValue, 429: store.CodeTooManyRequests}[e.Problem.Status]
	if code == "" {
		code = store.CodeForbidden
	}
	*t = &store.Error{Code: code, Message: e.Error()}
	return true
}

// HookFailedError is a hook call that failed, or that could not be made
// because the hook is overloaded (503 hook-unavailable).
type HookFailedError struct {
	Hook HookKind
	// Overloaded: refused before calling (too many calls waiting).
	Overloaded bool
	Err        error
}

func (e *HookFailedError) Error() string {
	return fmt.Sprintf("the %s hook failed: %v", e.Hook, e.Err)
}

func (e *HookFailedError) Unwrap() error { return e.Err }

// As makes the failure a store.CodeUnavailable (503).
func (e *HookFailedError) As(target any) bool {
	if t, ok := target.(**store.Error); ok {
		*t = &store.Error{Code: store.CodeUnavailable, Message: e.Error()}
		return true
	}
	return false
}

// hooks holds the hook options and one gate per hook URL.
type hooks struct {
	opts  HookOptions
	mu    sync.Mutex
	gates map[string]*hookGate
}

func newHooks(o HookOptions) *hooks {
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = DefaultHookMaxConcurrent
	}
	switch {
	case o.MaxQueued == 0:
		o.MaxQueued = DefaultHookMaxQueued
	case o.MaxQueued < 0:
		o.MaxQueued = 0
	}
	return &hooks{opts: o, gates: map[string]*hookGate{}}
}

// hookGate bounds the calls to one URL: slots in flight, waiting beyond.
type hookGate struct {
	slots     chan struct{}
	waiting   atomic.Int64
	maxQueued int64
}

func (h *hooks) gate(url string) *hookGate {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := h.gates[url]
	if g == nil {
		g = &hookGate{slots: make(chan struct{}, h.opts.MaxConcurrent), maxQueued: int64(h.opts.MaxQueued)}
		h.gates[url] = g
	}
	return g
}

var errHookOverloaded = errors.New("overloaded")

// acquire takes a slot, waiting while ctx allows. Errors:
// errHookOverloaded (too many waiting), ctx.Err().
func (g *hookGate) acquire(ctx context.Context) error {
	select {
	case g.slots <- struct{}{}:
		return nil
	default:
	}
	if g.waiting.Add(1) > g.maxQueued {
		g.waiting.Add(-1)
		return errHookOverloaded
	}
	defer g.waiting.Add(-1)
	select {
	case g.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *hookGate) release() { <-g.slots }

// callHook calls hook cfg with call. It returns the reply, or (with
// called false and a nil error) nothing to apply: the hook is not
// configured, or it failed with the FailAllow mode. Errors:
// *HookDeniedError, *HookFailedError.
func (a *App) callHook(ctx context.Context, cfg HookConfig, call HookCall) (reply HookReply, called bool, err error) {
	h := a.hooks
	if !cfg.Enabled() || h.opts.Caller == nil {
		return HookReply{}, false, nil
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultHookTimeout
	}
	call.URL, call.Timeout, call.Budget, call.ID, call.Time = cfg.URL, timeout, timeout, hookID(), a.now().UTC()
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	g := h.gate(cfg.URL)
	if err := g.acquire(wctx); err != nil {
		if errors.Is(err, errHookOverloaded) {
			a.hookMetric(call.Kind, "overloaded", start)
			return HookReply{}, false, &HookFailedError{Hook: call.Kind, Overloaded: true,
				Err: fmt.Errorf("overloaded: %d calls in flight and %d waiting", h.opts.MaxConcurrent, h.opts.MaxQueued)}
		}
		if ctx.Err() != nil {
			return HookReply{}, false, ctx.Err()
		}
		err = fmt.Errorf("no free slot within %s (%d calls in flight)", timeout, h.opts.MaxConcurrent)
		return a.hookFailed(cfg, call, start, err)
	}
	// The call gets what the wait left of the timeout; the caller
	// enforces it (and says so in its error).
	call.Timeout = max(timeout-time.Since(start), time.Millisecond)
	reply, err = h.opts.Caller.CallHook(ctx, call)
	g.release()
	if err != nil {
		if ctx.Err() != nil {
			return HookReply{}, false, ctx.Err() // the client went away
		}
		return a.hookFailed(cfg, call, start, err)
	}
	if reply.Problem != nil {
		a.hookMetric(call.Kind, "denied", start)
		p := *reply.Problem
		if p.Status == 0 {
			p.Status = 403
		}
		return HookReply{}, true, &HookDeniedError{Hook: call.Kind, Problem: p}
	}
	a.hookMetric(call.Kind, "allowed", start)
	return reply, true, nil
}

// hookFailed applies cfg's failure mode to a failed call (RPC always fails).
func (a *App) hookFailed(cfg HookConfig, call HookCall, start time.Time, err error) (HookReply, bool, error) {
	a.hookMetric(call.Kind, "failed", start)
	if cfg.OnError == FailAllow && call.Kind != HookRPC {
		a.log.Warn("hook failed; allowed by its failure mode", "hook", call.Kind, "err", err)
		return HookReply{}, false, nil
	}
	a.log.Warn("hook failed", "hook", call.Kind, "err", err)
	return HookReply{}, false, &HookFailedError{Hook: call.Kind, Err: err}
}

func (a *App) hookMetric(k HookKind, result string, start time.Time) {
	if m := a.hooks.opts.Metrics; m != nil {
		m.Called(k, result, time.Since(start))
	}
}

func hookID() string { return "hk_" + randomHex(12) }

// ConnectResult is what the connect hook made of a new connection.
type ConnectResult struct {
	// Principal is who the connection acts as: the authenticated one with
	// the hook's grants added.
	Principal auth.Principal
	// Extra are the grants the hook added (to add again on a token
	// refresh).
	Extra auth.Grants
	// Meta, when not nil, is the presence metadata of every subscription
	// of the connection (the client's is ignored).
	Meta json.RawMessage
}

// Connect runs the connect hook for a connection (WebSocket) or stream
// (SSE) of p that has authenticated. Without a connect hook it returns p.
// Errors: *HookDeniedError, *HookFailedError (in the deny failure mode,
// or with an answer whose grants do not parse), ctx.Err().
func (a *App) Connect(ctx context.Context, p auth.Principal, client ClientInfo) (ConnectResult, error) {
	res := ConnectResult{Principal: p}
	reply, called, err := a.callHook(ctx, a.hooks.opts.Connect, HookCall{Kind: HookConnect, Principal: p, Client: client})
	if err != nil || !called {
		return res, err
	}
	if res.Extra, err = auth.ParseGrants(reply.Grants); err != nil {
		return res, a.hookAnswerInvalid(HookConnect, err)
	}
	res.Principal = WithGrants(p, res.Extra)
	res.Meta = reply.Meta
	return res, nil
}

func (a *App) hookAnswerInvalid(k HookKind, err error) error {
	a.log.Warn("hook answer refused", "hook", k, "err", err)
	return &HookFailedError{Hook: k, Err: fmt.Errorf("invalid answer: %v", err)}
}

// WithGrants is p with extra grants added (a copy: p's grants are not
// modified). It returns no error.
func WithGrants(p auth.Principal, extra auth.Grants) auth.Principal {
	if len(extra) > 0 {
		p.Grants = slices.Concat(p.Grants, extra)
	}
	return p
}
