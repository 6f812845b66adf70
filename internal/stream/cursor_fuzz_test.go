package stream

import (
	"testing"
)

// FuzzCursorEncode: every cursor the server can make parses back to
// itself; cursors it cannot make (bad kind, epoch or position) never
// encode to a string ParseCursor accepts as something else.
func FuzzCursorEncode(f *testing.F) {
	f.Add(byte('r'), "0123abcd", int64(42))
	f.Add(byte('c'), "e-1.x_Y", int64(1<<62))
	f.Add(byte('r'), "a:b", int64(1))
	f.Add(byte('x'), "e", int64(0))
	f.Add(byte('c'), "", int64(-1))
	f.Fuzz(func(t *testing.T, kind byte, epoch string, pos int64) {
		c := Cursor{Kind: Kind(kind), Epoch: epoch, Pos: pos}
		got, err := ParseCursor(c.String())
		if err != nil {
			return
		}
		if got != c {
			t.Fatalf("cursor %+v encodes to %q, which parses as %+v", c, c.String(), got)
		}
	})
}

// FuzzParseComposite: no input panics ParseComposite or makes it accept
// more than MaxCursorLen characters or MaxStreamTopics positions; a
// composite it accepts answers For without error and every position it
// holds is a cursor ParseCursor accepts.
func FuzzParseComposite(f *testing.F) {
	cur := Cursor{Kind: KindChannel, Epoch: "0123456789abcdef", Pos: 5}.String()
	f.Add(EncodeComposite(map[string]string{"channels/a/messages": cur, "collections/c/resources": cur}))
	f.Add("m.eyJjaGFubmVscy9hL21lc3NhZ2VzIjoiWXpveE9qRSJ9")
	f.Add("s1.AAAAAAAAAAB4BmVwb2NoAQ")
	f.Add("s1.")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseComposite(s)
		if err != nil {
			return
		}
		if len(s) > MaxCursorLen || len(c.byTag) > MaxStreamTopics || len(c.byTag) == 0 {
			t.Fatalf("accepted %d characters with %d positions", len(s), len(c.byTag))
		}
		for _, p := range c.byTag {
			if _, err := ParseCursor(p.String()); err != nil {
				t.Fatalf("holds a position %+v that does not encode to a cursor: %v", p, err)
			}
		}
		_, _ = c.For("channels/a/messages")
	})
}
