package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tandemhq/tandem/internal/accesslog"
	"github.com/tandemhq/tandem/internal/store"
)

// observer gives every request its id, its access log entry, its metrics
// and (tracing on) its span.
type observer struct {
	metrics *httpMetrics
	// patterns mirrors the spec's paths and the mounts: the route
	// template of a request is the pattern it matches.
	patterns *http.ServeMux
	// fast finds the pattern of most spec routes without patterns.
	fast   *fastRoutes
	log    *slog.Logger // the access log; nil: off
	tracer trace.Tracer // nil: tracing off
}

// traceContext reads and writes W3C traceparent and tracestate headers.
var traceContext = propagation.TraceContext{}

// wrap observes next. A client's X-Request-Id is kept when sane
// (accesslog.SaneID), else replaced by a fresh one; either way the
// response echoes it. A request that becomes a stream (WebSocket, SSE)
// logs its open and close lines instead of a request line.
func (o *observer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var pattern string
		var m fastMatch
		if o.fast.lookup(r, &m) && m.route(r.Method) != nil {
			pattern = m.t.patterns[r.Method]
		} else {
			_, pattern = o.patterns.Handler(r)
		}
		route := "unmatched"
		if pattern != "" {
			route = pattern
			if _, path, ok := strings.Cut(pattern, " "); ok {
				route = path
			}
		}
		id := r.Header.Get("X-Request-Id")
		if !accesslog.SaneID(id) {
			id = accesslog.NewID()
		}
		w.Header().Set("X-Request-Id", id)
		e := accesslog.New(o.log, id, r.Method, route, start)
		ctx := accesslog.With(r.Context(), e)
		var span trace.Span
		if o.tracer != nil {
			ctx, span = o.startSpan(ctx, r, route)
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(ctx))
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		if pattern == "" {
			pattern = "unmatched"
		}
		o.metrics.observe(r.Method, pattern, sw.status, time.Since(start))
		if span != nil {
			span.SetAttributes(attribute.Int("http.response.status_code", sw.status), attribute.Int64("http.response.body.size", sw.bytes))
			if sw.status >= 500 {
				span.SetStatus(codes.Error, http.StatusText(sw.status))
			}
			span.End()
		}
		if !e.Streamed() {
			e.Request(sw.status, sw.bytes)
		}
	})
}

// startSpan starts the server span of r, a child of the trace context the
// client sent (W3C traceparent), and puts its traceparent on the context
// for the store: the changes the request writes carry it to their
// fan-out (store.WithTrace).
func (o *observer) startSpan(ctx context.Context, r *http.Request, route string) (context.Context, trace.Span) {
	ctx = traceContext.Extract(ctx, propagation.HeaderCarrier(r.Header))
	ctx, span := o.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("http.route", route),
			attribute.String("url.path", r.URL.Path), attribute.String("client.address", r.RemoteAddr)))
	if span.SpanContext().IsValid() {
		c := propagation.MapCarrier{}
		traceContext.Inject(ctx, c)
		if tp := c.Get("traceparent"); tp != "" {
			ctx = store.WithTrace(ctx, tp)
		}
	}
	return ctx, span
}
