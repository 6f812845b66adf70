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
