package store

import "context"

type traceKey struct{}

// WithTrace returns ctx carrying traceparent, the W3C trace context
// (https://www.w3.org/TR/trace-context/#traceparent-header) of the request
// that makes the writes done with ctx. Each change those writes log keeps
// it (Change.Trace), so that whichever node fans the change out can link
// its span to the request's.
func WithTrace(ctx context.Context, traceparent string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceparent)
}

// TraceFrom returns the traceparent WithTrace put on ctx, or "".
func TraceFrom(ctx context.Context) string {
	s, _ := ctx.Value(traceKey{}).(string)
	return s
}

// TraceColumn is TraceFrom as a nullable column value: nil without one.
func TraceColumn(ctx context.Context) *string {
	if s := TraceFrom(ctx); s != "" {
		return &s
	}
	return nil
}
