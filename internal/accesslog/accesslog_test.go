package accesslog

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestSaneID(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"OK", "req-1", true},
		{"OKPunctuation", "a.b_c~d:e/f+g=h!", true},
		{"OKLongest", strings.Repeat("x", MaxIDLen), true},
		{"ErrEmpty", "", false},
		{"ErrTooLong", strings.Repeat("x", MaxIDLen+1), false},
		{"ErrSpace", "a b", false},
		{"ErrTab", "a\tb", false},
		{"ErrNewline", "a\nb", false},
		{"ErrDEL", "a\x7fb", false},
		{"ErrNonASCII", "caf\u00e9", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SaneID(tc.id); got != tc.ok {
				t.Errorf("SaneID(%q) = %v, want %v", tc.id, got, tc.ok)
			}
		})
	}
	a, b := NewID(), NewID()
	if !SaneID(a) || len(a) != 32 || a == b {
		t.Errorf("NewID: %q, %q", a, b)
	}
}

// lines parses the JSON lines a handler wrote.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestEntryLines(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))

	t.Run("Request", func(t *testing.T) {
		buf.Reset()
		e := New(log, "id-1", "GET", "/v1/collections/{collection}", time.Now().Add(-5*time.Millisecond))
		e.SetSubject("alice")
		e.Request(404, 123)
		ls := lines(t, &buf)
		if len(ls) != 1 {
			t.Fatalf("lines = %v", ls)
		}
		l := ls[0]
		for k, v := range map[string]any{"level": "INFO", "msg": "request", "method": "GET", "route": "/v1/collections/{collection}",
			"status": 404.0, "bytes": 123.0, "subject": "alice", "request_id": "id-1"} {
			if l[k] != v {
				t.Errorf("%s = %v, want %v", k, l[k], v)
			}
		}
		if d, _ := l["duration_ms"].(float64); d < 5 {
			t.Errorf("duration_ms = %v, want ≥ 5", l["duration_ms"])
		}
		if e.Streamed() {
			t.Error("a request is not a stream")
		}
	})
	t.Run("Stream", func(t *testing.T) {
		buf.Reset()
		e := New(log, "id-2", "GET", "/v1/ws", time.Now())
		e.Open("websocket")
		e.SetSubject("bob") // authenticated by an auth frame
		e.Close("websocket", 1000, "bye", 3, 7)
		ls := lines(t, &buf)
		if len(ls) != 2 || ls[0]["msg"] != "stream open" || ls[1]["msg"] != "stream close" {
			t.Fatalf("lines = %v", ls)
		}
		if ls[0]["subject"] != "" || ls[0]["transport"] != "websocket" {
			t.Errorf("open = %v", ls[0])
		}
		for k, v := range map[string]any{"transport": "websocket", "close_code": 1000.0, "reason": "bye", "frames_in": 3.0, "frames_out": 7.0, "subject": "bob", "request_id": "id-2"} {
			if ls[1][k] != v {
				t.Errorf("close %s = %v, want %v", k, ls[1][k], v)
			}
		}
		if !e.Streamed() {
			t.Error("Open did not mark the entry as a stream")
		}
	})
	t.Run("Off", func(t *testing.T) {
		buf.Reset()
		e := New(nil, "id-3", "GET", "/healthz", time.Now())
		e.SetSubject("carol")
		e.Request(200, 1)
		e.Open("sse")
		e.Close("sse", 0, "client-gone", 0, 1)
		if buf.Len() != 0 || e.Subject() != "carol" || !e.Streamed() {
			t.Errorf("off: wrote %q, subject %q, streamed %v", buf.String(), e.Subject(), e.Streamed())
		}
	})
	t.Run("Nil", func(t *testing.T) {
		var e *Entry // no entry on the context: every method is a no-op
		e.SetSubject("x")
		e.Request(200, 0)
		e.Open("sse")
		e.Close("sse", 0, "", 0, 0)
		if e.Subject() != "" || e.Streamed() || From(context.Background()) != nil || RequestID(context.Background()) != "" {
			t.Error("nil entry is not inert")
		}
	})
	t.Run("Context", func(t *testing.T) {
		e := New(nil, "id-4", "GET", "/", time.Now())
		ctx := With(context.Background(), e)
		if From(ctx) != e || RequestID(ctx) != "id-4" {
			t.Error("With/From lost the entry")
		}
	})
}
