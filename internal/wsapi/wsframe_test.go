package wsapi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// frame builds a masked client frame.
func frame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n < 1<<16:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	default:
		f = append(f, 0x80|127)
		f = binary.BigEndian.AppendUint64(f, uint64(n))
	}
	mask := [4]byte{1, 2, 3, 4}
	f = append(f, mask[:]...)
	for i, c := range payload {
		f = append(f, c^mask[i&3])
	}
	return f
}

// parseAll feeds b in pieces of the given sizes (cycled; nil: whole) and
// returns what was emitted and the error, as text.
func parseAll(b []byte, limit int64, pieces []int) (string, error) {
	p := frameParser{limit: limit}
	var out strings.Builder
	emit := func(op byte, payload []byte) bool {
		fmt.Fprintf(&out, "%d:%q;", op, payload)
		return true
	}
	for i := 0; len(b) > 0; i++ {
		n := len(b)
		if len(pieces) > 0 {
			n = min(max(pieces[i%len(pieces)], 1), len(b))
		}
		if _, err := p.feed(b[:n], emit); err != nil {
			return out.String(), err
		}
		b = b[n:]
	}
	return out.String(), nil
}

func TestFrameParser(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	huge := bytes.Repeat([]byte("y"), 70000)
	cat := func(fs ...[]byte) []byte { return bytes.Join(fs, nil) }
	tests := []struct {
		name  string
		in    []byte
		limit int64
		want  string
		code  int // expected close code, 0: no error
	}{
		{"Text", frame(true, opText, []byte(`{"a":1}`)), 0, `1:"{\"a\":1}";`, 0},
		{"Empty", frame(true, opText, nil), 0, `1:"";`, 0},
		{"Len16", frame(true, opText, long), 0, fmt.Sprintf("1:%q;", long), 0},
		{"Len64", frame(true, opBinary, huge), 0, fmt.Sprintf("2:%q;", huge), 0},
		{"Fragments", cat(frame(false, opText, []byte("ab")), frame(false, opContinuation, []byte("cd")), frame(true, opContinuation, []byte("e"))), 0, `1:"abcde";`, 0},
		{"ControlBetweenFragments", cat(frame(false, opText, []byte("ab")), frame(true, opPing, []byte("p")), frame(true, opContinuation, []byte("c"))), 0, `9:"p";1:"abc";`, 0},
		{"Controls", cat(frame(true, opPong, nil), frame(true, opClose, []byte{3, 232})), 0, `10:"";8:"\x03\xe8";`, 0},
		{"AtLimit", frame(true, opText, long), 300, fmt.Sprintf("1:%q;", long), 0},
		{"PastLimit", frame(true, opText, long), 299, "", CloseTooBig},
		{"PastLimitInFragments", cat(frame(false, opText, long[:200]), frame(true, opContinuation, long[:200])), 300, "", CloseTooBig},
		{"Unmasked", []byte{0x81, 0x01, 'a'}, 0, "", CloseProtocol},
		{"Reserved", []byte{0x81 | 0x40, 0x80, 0, 0, 0, 0}, 0, "", CloseProtocol},
		{"Opcode3", frame(true, 3, nil), 0, "", CloseProtocol},
		{"Opcode11", frame(true, 11, nil), 0, "", CloseProtocol},
		{"FragmentedPing", frame(false, opPing, nil), 0, "", CloseProtocol},
		{"LongPing", frame(true, opPing, long[:126]), 0, "", CloseProtocol},
		{"LoneContinuation", frame(true, opContinuation, []byte("a")), 0, "", CloseProtocol},
		{"TextInText", cat(frame(false, opText, []byte("a")), frame(true, opText, []byte("b"))), 0, "", CloseProtocol},
		{"Len64HighBit", []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, 0, "", CloseProtocol},
	}
	for _, tt := range tests {
		for _, pieces := range [][]int{nil, {1}, {2, 5, 3}, {13}} {
			t.Run(fmt.Sprintf("%s/%v", tt.name, pieces), func(t *testing.T) {
				got, err := parseAll(tt.in, tt.limit, pieces)
				var ce *closeError
				switch {
				case tt.code == 0 && err != nil:
					t.Fatalf("error %v", err)
				case tt.code != 0 && (!errors.As(err, &ce) || ce.Code != tt.code):
					t.Fatalf("error %v, want close %d", err, tt.code)
				case tt.code == 0 && got != tt.want:
					t.Fatalf("emitted %.200s\nwant %.200s", got, tt.want)
				}
			})
		}
	}
}

func TestFrameParserStop(t *testing.T) {
	p := frameParser{}
	var n int
	stop, err := p.feed(append(frame(true, opText, []byte("a")), frame(true, opText, []byte("b"))...), func(byte, []byte) bool {
		n++
		return false
	})
	if !stop || err != nil || n != 1 {
		t.Fatalf("stop %v err %v emitted %d; want stop after the first", stop, err, n)
	}
}

func TestParseClose(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		code int
		err  int
	}{
		{nil, 1005, 0},
		{[]byte{3, 232}, 1000, 0},
		{[]byte{15, 160, 'o', 'k'}, 4000, 0},
		{[]byte{3}, 0, CloseProtocol},
		{[]byte{3, 237}, 0, CloseProtocol}, // 1005 may not be sent
		{[]byte{3, 238}, 0, CloseProtocol}, // 1006 neither
		{[]byte{0x13, 0x88}, 0, CloseProtocol},
		{[]byte{3, 232, 0xff}, 0, CloseInvalidPayload},
	} {
		code, err := parseClose(tt.in)
		var ce *closeError
		if tt.err != 0 {
			if !errors.As(err, &ce) || ce.Code != tt.err {
				t.Errorf("parseClose(%v) error %v, want close %d", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || code != tt.code {
			t.Errorf("parseClose(%v) = %d, %v; want %d", tt.in, code, err, tt.code)
		}
	}
}

// FuzzFrameParser feeds arbitrary bytes whole and in pieces: the parser
// never panics, and how the bytes are split never changes what it emits or
// whether it refuses them.
func FuzzFrameParser(f *testing.F) {
	f.Add(frame(true, opText, []byte(`{"type":"ping"}`)), uint8(1), uint8(3))
	f.Add(append(frame(false, opText, []byte("ab")), frame(true, opContinuation, []byte("c"))...), uint8(2), uint8(7))
	f.Add(append(frame(true, opPing, []byte("p")), frame(true, opClose, []byte{3, 232})...), uint8(5), uint8(1))
	f.Add(frame(true, opText, bytes.Repeat([]byte("z"), 200)), uint8(13), uint8(100))
	f.Add([]byte{0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0}, uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, b []byte, a, c uint8) {
		whole, werr := parseAll(b, 4096, nil)
		split, serr := parseAll(b, 4096, []int{int(a), int(c)})
		if whole != split || fmt.Sprint(werr) != fmt.Sprint(serr) {
			t.Fatalf("whole: %q %v\nsplit(%d,%d): %q %v", whole, werr, a, c, split, serr)
		}
		if werr != nil {
			var ce *closeError
			if !errors.As(werr, &ce) || (ce.Code != CloseProtocol && ce.Code != CloseTooBig) {
				t.Fatalf("error %v is not a protocol or too-big close", werr)
			}
		}
	})
}
