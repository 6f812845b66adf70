// Package accesslog is the access log: one line per REST request, and one
// line when a WebSocket or SSE stream opens and one when it closes. An
// Entry carries a request's id and, once authentication has run, its
// subject, in the request's context; the HTTP middleware creates it, auth
// fills the subject in, and the stream transports log their open and
// close lines through it.
package accesslog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"
)

// MaxIDLen is the longest request id accepted from a client.
const MaxIDLen = 128

// Entry is one request's access log record. Its methods are safe for
// concurrent use and do nothing on a nil Entry.
type Entry struct {
	// ID is the request id (X-Request-Id).
	ID string
	// Method and Route are the request's method and route template
	// (e.g. "/v1/collections/{collection}/resources/{id}", never a path
	// with ids in it).
	Method, Route string
	// Start is when the request arrived.
	Start time.Time

	log *slog.Logger // nil: the access log is off

	mu       sync.Mutex
	subject  string
	streamed bool
}

// New returns the entry of a request; log nil turns the lines off (the
// entry still carries the id and the subject).
func New(log *slog.Logger, id, method, route string, start time.Time) *Entry {
	return &Entry{ID: id, Method: method, Route: route, Start: start, log: log}
}

type key struct{}

// With returns ctx carrying e.
func With(ctx context.Context, e *Entry) context.Context { return context.WithValue(ctx, key{}, e) }

// From returns the entry ctx carries, or nil.
func From(ctx context.Context) *Entry {
	e, _ := ctx.Value(key{}).(*Entry)
	return e
}

// RequestID returns the id of the request ctx belongs to, or "".
func RequestID(ctx context.Context) string {
	if e := From(ctx); e != nil {
		return e.ID
	}
	return ""
}

// SetSubject records the authenticated subject ("" for anonymous callers).
func (e *Entry) SetSubject(s string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.subject = s
	e.mu.Unlock()
}

// Subject returns the subject SetSubject recorded.
func (e *Entry) Subject() string {
	if e == nil {
		return ""
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.subject
}

// Streamed reports whether the request became a stream (Open was called):
// its close line then stands for the request line.
func (e *Entry) Streamed() bool {
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.streamed
}

// Request logs the request line: status, duration, bytes written, subject
// and request id.
func (e *Entry) Request(status int, bytes int64) {
	if e == nil || e.log == nil {
		return
	}
	e.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
		slog.String("method", e.Method), slog.String("route", e.Route), slog.Int("status", status),
		slog.Float64("duration_ms", ms(time.Since(e.Start))), slog.Int64("bytes", bytes),
		slog.String("subject", e.Subject()), slog.String("request_id", e.ID))
}

// Open marks the request as a stream of transport ("websocket" or "sse")
// and logs its open line.
func (e *Entry) Open(transport string) {
	if e == nil {
		return
	}
	e.mu.Lock()
	e.streamed = true
	e.mu.Unlock()
	if e.log == nil {
		return
	}
	e.log.LogAttrs(context.Background(), slog.LevelInfo, "stream open",
		slog.String("transport", transport), slog.String("method", e.Method), slog.String("route", e.Route),
		slog.String("subject", e.Subject()), slog.String("request_id", e.ID))
}

// Close logs a stream's close line: its duration since the request
// arrived, the frames it received and sent (SSE: the events written), the
// WebSocket close code (0 for SSE, 1006 for a connection that ended
// without a close frame) and why it ended.
func (e *Entry) Close(transport string, code int, reason string, framesIn, framesOut int64) {
	if e == nil || e.log == nil {
		return
	}
	e.log.LogAttrs(context.Background(), slog.LevelInfo, "stream close",
		slog.String("transport", transport), slog.String("route", e.Route),
		slog.Float64("duration_ms", ms(time.Since(e.Start))),
		slog.Int64("frames_in", framesIn), slog.Int64("frames_out", framesOut),
		slog.Int("close_code", code), slog.String("reason", reason),
		slog.String("subject", e.Subject()), slog.String("request_id", e.ID))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// SaneID reports whether a client's X-Request-Id may be kept: 1 to
// MaxIDLen visible ASCII characters (no spaces, no control characters).
func SaneID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// NewID returns a fresh request id: 16 random bytes in hex.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
