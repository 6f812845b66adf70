package stream

import "testing"

// BenchmarkCursorString measures encoding a cursor, done once per event.
func BenchmarkCursorString(b *testing.B) {
	c := Cursor{KindResource, "9f86d081884c7d659a2feaa0c55ad015", 123456789}
	b.ReportAllocs()
	for b.Loop() {
		if c.String() == "" {
			b.Fatal("empty cursor")
		}
	}
}

// BenchmarkParseCursor measures decoding a client's cursor (subscribe
// with since, SSE Last-Event-ID, long-poll).
func BenchmarkParseCursor(b *testing.B) {
	s := Cursor{KindChannel, "9f86d081884c7d659a2feaa0c55ad015", 123456789}.String()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseCursor(s); err != nil {
			b.Fatal(err)
		}
	}
}
