package main

// Observability wiring: the debug listener (pprof) and OpenTelemetry
// tracing. The access log and the request ids are internal/httpapi's and
// internal/accesslog's; serve only turns them on.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// checkDebugAddr refuses a --debug-addr that is not a loopback host:port:
// pprof exposes the process's memory and can be made to burn CPU.
func checkDebugAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--debug-addr %q: %w", addr, err)
	}
	if !isLoopback(host) {
		return fmt.Errorf("--debug-addr %q: must be a loopback address (127.0.0.1, [::1] or localhost): pprof exposes the process's memory", addr)
	}
	return nil
}

// debugServer serves /debug/pprof/ (registered explicitly on a mux of its
// own, never http.DefaultServeMux) and /metrics on addr until stop is
// called. Errors: addr cannot be listened on.
func debugServer(addr string, reg *prometheus.Registry, logger *slog.Logger) (stop func(context.Context), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--debug-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("debug listener stopped", "err", err)
		}
	}()
	logger.Info("debug listening", "addr", ln.Addr().String(), "pprof", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close() // a CPU profile or trace still running
		}
		<-done
	}, nil
}

// tracerProviderKey lets end-to-end tests hand serve a TracerProvider (one
// with the SDK's in-memory exporter) in run's context, in place of the
// one the OTEL_* variables configure.
type tracerProviderKey struct{}

// withTracerProvider returns ctx carrying tp for serve.
func withTracerProvider(ctx context.Context, tp trace.TracerProvider) context.Context {
	return context.WithValue(ctx, tracerProviderKey{}, tp)
}

// tracing returns the TracerProvider serve traces with and the function
// that flushes and stops it, or nil (tracing off) when neither
// OTEL_EXPORTER_OTLP_ENDPOINT nor OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
// set, OTEL_SDK_DISABLED is true or OTEL_TRACES_EXPORTER is none. Spans
// are exported with OTLP over HTTP (protobuf); the exporter, the batch
// span processor and the sampler read their own OTEL_* variables
// (endpoint, headers, timeout, OTEL_BSP_*, OTEL_TRACES_SAMPLER…) from the
// process environment, and OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
// name the resource (service.name defaults to "tandem"). Errors:
// OTEL_EXPORTER_OTLP_PROTOCOL (or _TRACES_PROTOCOL) other than
// http/protobuf, the exporter or resource cannot be built.
func tracing(ctx context.Context, getenv func(string) string) (trace.TracerProvider, func(context.Context) error, error) {
	if tp, ok := ctx.Value(tracerProviderKey{}).(trace.TracerProvider); ok {
		return tp, func(context.Context) error { return nil }, nil
	}
	if getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return nil, nil, nil
	}
	if strings.EqualFold(getenv("OTEL_SDK_DISABLED"), "true") || getenv("OTEL_TRACES_EXPORTER") == "none" {
		return nil, nil, nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := getenv(name); p != "" {
			if p != "http/protobuf" {
				return nil, nil, fmt.Errorf("%s=%q: tandem exports traces with OTLP over HTTP only (http/protobuf)", name, p)
			}
			break
		}
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("OpenTelemetry exporter: %w", err)
	}
	res, err := resource.New(ctx, resource.WithTelemetrySDK(), resource.WithAttributes(semconv.ServiceName("tandem"), semconv.ServiceVersion(version)), resource.WithFromEnv())
	if err != nil {
		return nil, nil, fmt.Errorf("OpenTelemetry resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	return tp, tp.Shutdown, nil
}
