// Package httpapi serves Tandem's REST API (the generated strict server
// implemented by Server), Server-Sent Events and long-polling, its
// documentation and metrics, and mounts the WebSocket transport. It is a
// thin transport: handlers decode, call app with the request's principal
// and encode through internal/wire; every error is an RFC 9457 problem
// from wire's one table.
package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/swaggest/swgui/v5emb"
	"go.opentelemetry.io/otel/trace"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/ratelimit"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/wire"
	"github.com/tandemhq/tandem/spec"
)

// Config wires the HTTP layer.
type Config struct {
	App *app.App
	// SSE configures GET /v1/events.
	SSE    SSEConfig
	Logger *slog.Logger
	// Registry receives the HTTP metrics and is served at /metrics.
	Registry *prometheus.Registry
	// Strict validates every response against the spec live; a response
	// that does not match is logged and replaced by a 500 problem.
	Strict bool
	// MaxBodyBytes bounds request bodies (413 problem beyond); 0 means 1 MiB.
	MaxBodyBytes int64
	// Ready reports dependency health for /readyz ("ok" or a reason).
	Ready func(ctx context.Context) map[string]string
	// Mounts are extra handlers outside the OpenAPI router (e.g. "GET /v1/ws").
	// Those under /v1/ take no query parameters: a request with any is
	// refused with a 400 problem naming them.
	Mounts map[string]http.Handler
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Origins may call the REST API from browsers (CORS).
	Origins Origins
	// RateLimit limits /v1/ requests per client (nil: unlimited).
	RateLimit *ratelimit.Limiter
	// Caps count SSE streams and long-polls against the connection cap
	// per client IP (nil: unlimited); share them with the WebSocket
	// server. The subscription caps are app's (app.Realtime.Caps).
	Caps *quota.Caps
	// Auth resolves credentials (nil: auth not configured, everything is
	// allowed).
	Auth Authenticator
	// AuthCookie, if set, is a cookie that may carry the token for the
	// streaming GETs (/v1/events, /v1/changes), for EventSource.
	AuthCookie string
	// Draining is closed when the server starts shutting down: open SSE
	// streams end with an error event carrying their cursor and waiting
	// long-polls answer with theirs, so that http.Server.Shutdown does not
	// wait for them.
	Draining <-chan struct{}
	// ReadTimeout bounds reading a request's body (0: none); streams
	// (SSE, WebSocket) have no body and are not affected.
	ReadTimeout time.Duration
	// AccessLog receives the access log: a line per request, and a line
	// per WebSocket or SSE stream opening and closing (nil: off). Request
	// ids (X-Request-Id) are given either way.
	AccessLog *slog.Logger
	// Tracer, when set, starts a server span per request, a child of the
	// W3C trace context the client sent (nil: tracing off, at no cost).
	Tracer trace.TracerProvider
}

// NewHandler returns the root handler. Errors: the embedded spec is invalid.
func NewHandler(cfg Config) (http.Handler, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Registry == nil {
		cfg.Registry = prometheus.NewRegistry()
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Ready == nil {
		cfg.Ready = func(ctx context.Context) map[string]string {
			if err := cfg.App.Ping(ctx); err != nil {
				return map[string]string{"store": "unavailable"}
			}
			return map[string]string{"store": "ok"}
		}
	}
	doc, err := specval.LoadOpenAPIDoc()
	if err != nil {
		return nil, err
	}
	doc.Servers = nil
	validator, err := specval.LoadOpenAPI()
	if err != nil {
		return nil, err
	}

	sm := newStreamMetrics(cfg.Registry)
	srv := &Server{app: cfg.App, ready: cfg.Ready, draining: cfg.Draining, metrics: sm}
	reqErr, respErr := errorWriter(cfg.Logger)
	strict := api.NewStrictHandlerWithOptions(srv, nil, api.StrictHTTPServerOptions{
		RequestErrorHandlerFunc:  reqErr,
		ResponseErrorHandlerFunc: respErr,
	})
	apiMux := http.NewServeMux()
	apiHandler := api.HandlerWithOptions(strict, api.StdHTTPServerOptions{
		BaseRouter: apiMux,
		ErrorHandlerFunc: func(w http.ResponseWriter, r *http.Request, err error) {
			// Parameter binding errors (the validator normally catches them first).
			writeProblem(w, r, bindingProblem(r, err))
		},
	})
	sse := &sseHandler{cfg: cfg.SSE, app: cfg.App, log: cfg.Logger, draining: cfg.Draining, metrics: sm}
	if cfg.Strict {
		av, err := specval.LoadAsyncAPI()
		if err != nil {
			return nil, err
		}
		sse.validate = av.ValidateServerFrame
	}
	apiMux.Handle("GET /v1/events", sse)
	// The patterns served beside the spec's paths (below): no template the
	// segment match answers for may overlap them.
	static := map[string]http.Handler{
		"GET /openapi.yaml":  staticFile("application/yaml", spec.OpenAPI),
		"GET /asyncapi.yaml": staticFile("application/yaml", spec.AsyncAPI),
		"GET /docs/":         v5emb.New("Tandem REST API", "/openapi.yaml", "/docs/"),
		"GET /docs":          http.RedirectHandler("/docs/", http.StatusMovedPermanently),
		"GET /metrics":       promhttp.HandlerFor(cfg.Registry, promhttp.HandlerOpts{}),
	}
	var others []string
	for pattern := range static {
		others = append(others, pattern)
	}
	for pattern := range cfg.Mounts {
		others = append(others, pattern)
	}
	fast := newFastRoutes(doc, others)
	idem := &idempotency{app: cfg.App}
	var h http.Handler = idem.wrap(apiHandler)
	validate, err := requestValidator(doc, authorizeOperation(cfg.App), fast)
	if err != nil {
		return nil, err
	}
	h = validate(h)
	if cfg.Strict {
		h = strictResponses(validator, cfg.Logger, h)
	}
	h = checkJSONBody(h)
	h = limitBody(cfg.MaxBodyBytes, h)
	h = refuseBody(doc, h)
	h = readDeadline(cfg.ReadTimeout, h)
	h = capStreams(cfg.Caps, h)
	h = rateLimit(cfg.RateLimit, cfg.Now, h)
	h = authenticate(cfg.Auth, cfg.AuthCookie, h)

	// patterns mirrors the spec's paths so metrics label by route template.
	patterns := http.NewServeMux()
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			patterns.Handle(method+" "+path, http.NotFoundHandler())
		}
	}

	root := http.NewServeMux()
	root.Handle("/", h)
	for pattern, sh := range static {
		root.Handle(pattern, sh)
	}
	for pattern, mh := range cfg.Mounts {
		path := pattern
		if _, p, ok := strings.Cut(pattern, " "); ok {
			path = p
		}
		if strings.HasPrefix(path, "/v1/") {
			mh = refuseQuery(mh)
		}
		root.Handle(pattern, mh)
		patterns.Handle(pattern, http.NotFoundHandler())
	}
	o := &observer{metrics: newHTTPMetrics(cfg.Registry), patterns: patterns, fast: fast, log: cfg.AccessLog}
	if cfg.Tracer != nil {
		o.tracer = cfg.Tracer.Tracer("github.com/tandemhq/tandem/internal/httpapi")
	}
	// The observer is outermost: a recovered panic's problem carries the
	// request id, and its 500 is logged and counted.
	return o.wrap(recoverer(cfg.Logger, cors(cfg.Origins, skipMux(fast, root, h)))), nil
}

// skipMux is mux, except that a request the segment match finds an
// operation of the spec for goes straight to api, where mux would send it
// (fastRoutes never answers for a path another pattern could match).
func skipMux(fast *fastRoutes, mux *http.ServeMux, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m fastMatch
		if fast.lookup(r, &m) && m.route(r.Method) != nil {
			api.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func staticFile(contentType string, b []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", contentType)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
	})
}

// refuseBody answers a request that carries a body for an operation that
// takes none (e.g. a GET or a DELETE with content) with a 400 problem
// naming the body, before reading it: such bytes would otherwise be read
// and ignored, or count against limits (413, 408) the operation does not
// declare.
func refuseBody(doc *openapi3.T, next http.Handler) http.Handler {
	bodyless := http.NewServeMux()
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody == nil {
				bodyless.Handle(method+" "+path, http.NotFoundHandler())
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hasBody(r) {
			if _, pattern := bodyless.Handler(r); pattern != "" {
				writeProblem(w, r, wire.NewProblem(wire.KindInvalid, "this operation takes no request body",
					[]api.ProblemField{wire.BodyField("", "not allowed: this operation takes no request body")}))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// hasBody reports whether r carries content. A body of unknown length
// (chunked) is probed for its first byte, which is put back.
func hasBody(r *http.Request) bool {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return false
	}
	if r.ContentLength > 0 {
		return true
	}
	var b [1]byte
	n, _ := io.ReadFull(r.Body, b[:])
	if n == 0 {
		return false
	}
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(b[:n]), r.Body), r.Body}
	return true
}

// limitBody caps request bodies; reading past the cap fails, and the
// validator reports it as a 413 problem.
func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			writeProblem(w, r, wire.NewProblem(wire.KindTooLarge, fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, n), nil))
			return
		}
		if r.Body != nil && r.Body != http.NoBody { // no body: nothing to limit (nor to read, for the validator)
			r.Body = http.MaxBytesReader(w, r.Body, n)
		}
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500 problem; the client never sees
// the panic value.
func recoverer(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic serving request", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeProblem(w, r, wire.NewProblem(wire.KindInternal, "an internal error occurred; it has been logged", nil))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// strictResponses validates every response live against the spec.
func strictResponses(v *specval.OpenAPI, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			// A stream cannot be buffered; its frames are validated one by
			// one against spec/asyncapi.yaml instead (sseHandler.validate).
			next.ServeHTTP(w, r)
			return
		}
		buf := &bufferedResponse{header: http.Header{}}
		next.ServeHTTP(buf, r)
		if buf.status == 0 {
			buf.status = http.StatusOK
		}
		if err := v.ValidateResponse(r, buf.status, buf.header, buf.body.Bytes()); err != nil {
			log.ErrorContext(r.Context(), "response violates spec/openapi.yaml", "method", r.Method, "path", r.URL.Path, "status", buf.status, "err", err)
			writeProblem(w, r, wire.NewProblem(wire.KindInternal, "the server produced a response that violates its API description; it has been logged", nil))
			return
		}
		for k, vals := range buf.header {
			w.Header()[k] = vals
		}
		w.WriteHeader(buf.status)
		_, _ = w.Write(buf.body.Bytes())
	})
}
