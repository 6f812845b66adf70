package httpapi

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tandemhq/tandem/internal/accesslog"
	"github.com/tandemhq/tandem/internal/store"
)

func testObserver(log *slog.Logger) *observer {
	patterns := http.NewServeMux()
	patterns.Handle("POST /v1/collections/{collection}/resources", http.NotFoundHandler())
	return &observer{metrics: newHTTPMetrics(prometheus.NewRegistry()), patterns: patterns, log: log}
}

// TestObserverTraceToStore: with tracing on, the store context of a
// request carries the traceparent of its server span (so its changes link
// their fan-out to it); with tracing off it carries none, even when the
// client sent a traceparent.
func TestObserverTraceToStore(t *testing.T) {
	const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name    string
		tracing bool
	}{{"On", true}, {"Off", false}} {
		t.Run(tc.name, func(t *testing.T) {
			o := testObserver(nil)
			exp := tracetest.NewInMemoryExporter()
			if tc.tracing {
				tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
				defer tp.Shutdown(t.Context())
				o.tracer = tp.Tracer("test")
			}
			var tp, id string
			h := o.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				tp, id = store.TraceFrom(r.Context()), accesslog.RequestID(r.Context())
				w.WriteHeader(http.StatusCreated)
			}))
			req := httptest.NewRequest("POST", "/v1/collections/c/resources", nil)
			req.Header.Set("traceparent", incoming)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if id == "" || rec.Header().Get("X-Request-Id") != id {
				t.Errorf("request id %q, header %q", id, rec.Header().Get("X-Request-Id"))
			}
			if !tc.tracing {
				if tp != "" || len(exp.GetSpans()) != 0 {
					t.Errorf("tracing off: traceparent %q, %d spans", tp, len(exp.GetSpans()))
				}
				return
			}
			spans := exp.GetSpans()
			if len(spans) != 1 {
				t.Fatalf("spans = %v", spans)
			}
			sc := spans[0].SpanContext
			if want := "00-" + sc.TraceID().String() + "-" + sc.SpanID().String() + "-01"; tp != want {
				t.Errorf("store traceparent %q, want the server span's %q", tp, want)
			}
			if spans[0].Name != "POST /v1/collections/{collection}/resources" || sc.TraceID().String() != incoming[3:35] {
				t.Errorf("span %q in trace %s", spans[0].Name, sc.TraceID())
			}
		})
	}
}

// BenchmarkObserver measures what the observer adds to a request: with
// the access log on (to io.Discard, text) and off, tracing off.
func BenchmarkObserver(b *testing.B) {
	for _, bc := range []struct {
		name string
		log  *slog.Logger
	}{{"AccessLogOff", nil}, {"AccessLogOn", slog.New(slog.NewTextHandler(io.Discard, nil))}} {
		b.Run(bc.name, func(b *testing.B) {
			h := testObserver(bc.log).wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusCreated)
			}))
			req := httptest.NewRequest("POST", "/v1/collections/c/resources", nil)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
