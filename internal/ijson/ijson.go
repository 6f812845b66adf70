// One file because it is one single-pass scanner whose states share a cursor, a depth stack and an error.

// Package ijson checks that a JSON text is I-JSON (RFC 7493) before
// anything decodes it, in one streaming pass over the bytes: no member
// name is duplicated within an object (§2.3), no number overflows an
// IEEE 754 double (§2.2), no string escapes an unpaired UTF-16 surrogate
// (§2.1), the text is UTF-8 (§2.1), and nesting stays within MaxDepth.
//
// Go's encoding/json (and everything built on it: kin-openapi, the JSON
// Schema validator) silently keeps the last of two duplicate members and
// refuses an out-of-range number only when it decodes it into a float64,
// so without this check `{"qty":-5,"qty":5}` passes `minimum: 1` and is
// stored with both members, and `1e999999` is stored and relayed to
// browsers that read it as Infinity.
//
// Decisions:
//   - Underflow is accepted: 1e-400 rounds to zero or a subnormal double,
//     which RFC 7493 §2.2 allows (receivers "SHOULD NOT expect more
//     precision"). Only overflow to ±Inf is refused. Integers beyond 2^53
//     are accepted for the same reason.
//   - Names are compared after unescaping, as RFC 7493 §2.3 requires:
//     {"a":1,"\u0061":2} has a duplicate.
//   - Noncharacters (U+FFFE, U+FDD0…) are accepted: RFC 7493 §2.1 refuses
//     them, but Unicode Corrigendum #9 allows them in interchange and they
//     harm no transport. Unpaired surrogates are refused: decoders disagree
//     on them (Go turns each into U+FFFD, so two different names would
//     collide), and no UTF-8 encoder can write them.
//   - A top-level scalar is accepted (RFC 7493 §4.1 is a SHOULD); callers'
//     schemas decide the shape.
//
// Memory: one bit per nesting level, a small frame per level up to
// MaxDepth, and the member names of the objects currently open (kept as
// offsets into the input, not copied, unless an object has many members).
// Nothing recurses, so input nested arbitrarily deep cannot exhaust the
// stack.
package ijson

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting Check accepts: encoding/json's own limit,
// so every text Check accepts can be decoded by it. Opening the
// (MaxDepth+1)th nested object or array is a TooDeep error.
const MaxDepth = 10000

// Reason says what an *Error found.
type Reason uint8

const (
	// Syntax: the input is not a JSON text (RFC 8259), including invalid
	// UTF-8, an empty input and data after the top-level value.
	Syntax Reason = iota + 1
	// Duplicate: an object has two members with the same name (RFC 7493
	// §2.3). Error.Name is the name.
	Duplicate
	// NumberRange: a number's magnitude overflows an IEEE 754 double
	// (RFC 7493 §2.2).
	NumberRange
	// Surrogate: a string escapes an unpaired UTF-16 surrogate, e.g.
	// "\ud800" (RFC 7493 §2.1).
	Surrogate
	// TooDeep: objects and arrays are nested deeper than MaxDepth.
	TooDeep
)

func (r Reason) String() string {
	switch r {
	case Syntax:
		return "syntax"
	case Duplicate:
		return "duplicate member"
	case NumberRange:
		return "number out of range"
	case Surrogate:
		return "unpaired surrogate"
	case TooDeep:
		return "too deep"
	}
	return "Reason(" + strconv.Itoa(int(r)) + ")"
}

// Error describes why a text is not I-JSON.
type Error struct {
	Reason Reason
	// Offset is the byte offset of the offending token (for Duplicate, the
	// opening quote of the second name; for an unexpected end, len(input)).
	Offset int
	// Pointer is the RFC 6901 pointer of the offending member or value
	// ("" is the whole text). For Duplicate it names the second member;
	// for TooDeep, the value that opens one level too many; for Syntax,
	// the value being read when the error was found. For an error nested
	// deeper than MaxDepth it names the ancestor at depth MaxDepth.
	Pointer string
	// Name is the duplicated member name (Duplicate only), unescaped.
	Name string
	// Msg says what is wrong, without the offset, e.g. `duplicate member
	// "qty"` or "unexpected end of input".
	Msg string
}

// Error returns Msg and the byte offset, e.g. "unexpected end of input at
// byte 13".
func (e *Error) Error() string {
	return e.Msg + " at byte " + strconv.Itoa(e.Offset)
}

// IsSyntax reports whether err is an *Error of Reason Syntax: the input is
// not JSON at all, as opposed to JSON that is not I-JSON.
func IsSyntax(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Reason == Syntax
}

// Check reports whether b is one I-JSON text (surrounding whitespace
// allowed). It returns nil or an *Error: a Syntax error when b is not JSON
// at all (the first one found); otherwise the first Duplicate,
// NumberRange, Surrogate or TooDeep violation in document order. Syntax
// errors take precedence, so a caller can tell "not JSON" from "JSON that
// is not I-JSON" whatever comes first in the text.
func Check(b []byte) error {
	if _, e := check(b, nil); e != nil {
		return e
	}
	return nil
}

// CheckMembers checks b like Check and also returns, for each of names,
// the raw bytes of that member's value when b is an object that has it at
// its top level (the first occurrence; nil otherwise). Values are found
// even when the text has a later I-JSON violation or deeper nesting than
// MaxDepth, so a caller can still read, say, a request id to answer; after
// a Syntax error they are nil unless complete before it. The error is as
// for Check.
func CheckMembers(b []byte, names ...string) ([][]byte, error) {
	found, e := check(b, names)
	if e != nil {
		return found, e
	}
	return found, nil
}

// checkers recycles checkers (and their stacks) between calls.
var checkers = sync.Pool{New: func() any { return new(checker) }}

func check(b []byte, names []string) ([][]byte, *Error) {
	c := checkers.Get().(*checker)
	*c = checker{b: b, slot: -1, frames: c.frames[:0], kinds: c.kinds[:0], names: c.names[:0]}
	if len(names) > 0 {
		c.want, c.found = names, make([][]byte, len(names))
	}
	e := c.run()
	found := c.found
	if cap(c.frames) <= 1024 && cap(c.names) <= 4096 {
		// Keep small stacks only, and no reference to the input.
		clear(c.frames[:cap(c.frames)])
		clear(c.names[:cap(c.names)])
		*c = checker{frames: c.frames[:0], kinds: c.kinds[:0], names: c.names[:0]}
		checkers.Put(c)
	}
	return found, e
}

// span is a member name: the raw bytes between its quotes.
type span struct {
	start, end int
	esc        bool // contains a backslash escape
}

// frame is one open object or array (up to MaxDepth levels).
type frame struct {
	obj    bool
	hasKey bool
	key    span                // the current member's name (objects)
	idx    int                 // the current element's index (arrays)
	nstart int                 // this object's names are checker.names[nstart:]
	set    map[string]struct{} // replaces them past setAfter members
}

// setAfter is how many names an object keeps in a slice (compared
// linearly) before they move into a map.
const setAfter = 16

type checker struct {
	b      []byte
	depth  int
	kinds  []uint64 // bit d set: level d+1 is an object
	frames []frame  // levels 1..min(depth, MaxDepth)
	names  []span   // the names of the open objects, innermost last
	sem    *Error   // first I-JSON (non-syntax) violation

	want  []string
	found [][]byte
	slot  int // index into want of the member whose value is being read, or -1
	start int // where that value starts
}

func (c *checker) run() *Error {
	b := c.b
	i := skipWS(b, 0)
value:
	for {
		if i >= len(b) {
			return c.syntax(i, "unexpected end of input")
		}
		switch ch := b[i]; {
		case ch == '{':
			c.push(true, i)
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == '}' {
				c.pop()
				i++
				break
			}
			var e *Error
			if i, e = c.member(i); e != nil {
				return e
			}
			continue value
		case ch == '[':
			c.push(false, i)
			i = skipWS(b, i+1)
			if i < len(b) && b[i] == ']' {
				c.pop()
				i++
				break
			}
			continue value
		case ch == '"':
			end, _, sur, e := c.str(i)
			if e != nil {
				return e
			}
			if sur >= 0 {
				c.violation(Surrogate, sur, "unpaired UTF-16 surrogate "+string(b[sur:sur+6])+" in string", "")
			}
			i = end
		case ch == '-' || ch >= '0' && ch <= '9':
			var e *Error
			if i, e = c.number(i); e != nil {
				return e
			}
		case ch == 't':
			var e *Error
			if i, e = c.literal(i, "true"); e != nil {
				return e
			}
		case ch == 'f':
			var e *Error
			if i, e = c.literal(i, "false"); e != nil {
				return e
			}
		case ch == 'n':
			var e *Error
			if i, e = c.literal(i, "null"); e != nil {
				return e
			}
		default:
			return c.syntax(i, "invalid character "+char(b, i)+" looking for beginning of value")
		}
		// A value ended at i: close containers until another value is due.
		for {
			if c.depth == 1 && c.slot >= 0 {
				c.found[c.slot] = b[c.start:i:i]
				c.slot = -1
			}
			i = skipWS(b, i)
			if c.depth == 0 {
				if i < len(b) {
					return c.syntax(i, "data after the top-level value")
				}
				return c.sem
			}
			if i >= len(b) {
				return c.syntax(i, "unexpected end of input")
			}
			if c.isObject() {
				switch b[i] {
				case ',':
					var e *Error
					if i, e = c.member(skipWS(b, i+1)); e != nil {
						return e
					}
					continue value
				case '}':
					c.pop()
					i++
					continue
				}
				return c.syntax(i, "invalid character "+char(b, i)+" after object member value (want ',' or '}')")
			}
			switch b[i] {
			case ',':
				if c.depth <= MaxDepth {
					c.frames[c.depth-1].idx++
				}
				i = skipWS(b, i+1)
				continue value
			case ']':
				c.pop()
				i++
				continue
			}
			return c.syntax(i, "invalid character "+char(b, i)+" after array element (want ',' or ']')")
		}
	}
}

// member reads `"name" :` at i in the innermost object and returns where
// its value starts.
func (c *checker) member(i int) (int, *Error) {
	b := c.b
	if i >= len(b) {
		return i, c.syntax(i, "unexpected end of input")
	}
	if b[i] != '"' {
		return i, c.syntax(i, "invalid character "+char(b, i)+" looking for beginning of object member name")
	}
	end, esc, sur, e := c.str(i)
	if e != nil {
		return i, e
	}
	name := span{i + 1, end - 1, esc}
	if c.depth <= MaxDepth {
		f := &c.frames[c.depth-1]
		f.key, f.hasKey = name, true
		if sur >= 0 {
			c.violation(Surrogate, sur, "unpaired UTF-16 surrogate "+string(b[sur:sur+6])+" in member name", "")
		}
		if c.sem == nil && c.seen(f, name) {
			n := c.unquote(name)
			c.violation(Duplicate, i, "duplicate member "+quote(n), n)
		}
	} // deeper, a TooDeep violation is already recorded
	i = skipWS(b, end)
	if i >= len(b) {
		return i, c.syntax(i, "unexpected end of input")
	}
	if b[i] != ':' {
		return i, c.syntax(i, "invalid character "+char(b, i)+" after object member name (want ':')")
	}
	i = skipWS(b, i+1)
	if c.depth == 1 && len(c.want) > 0 {
		for k, w := range c.want {
			if c.found[k] == nil && c.nameIs(name, w) {
				c.slot, c.start = k, i
				break
			}
		}
	}
	return i, nil
}

// seen records name in f and reports whether f already had it.
func (c *checker) seen(f *frame, name span) bool {
	if f.set != nil {
		n := c.unquote(name)
		if _, dup := f.set[n]; dup {
			return true
		}
		f.set[n] = struct{}{}
		return false
	}
	for _, o := range c.names[f.nstart:] {
		if c.sameName(o, name) {
			return true
		}
	}
	c.names = append(c.names, name)
	if len(c.names)-f.nstart > setAfter {
		f.set = make(map[string]struct{}, 2*setAfter)
		for _, o := range c.names[f.nstart:] {
			f.set[c.unquote(o)] = struct{}{}
		}
		c.names = c.names[:f.nstart]
	}
	return false
}

func (c *checker) sameName(a, b span) bool {
	if !a.esc && !b.esc {
		return bytes.Equal(c.b[a.start:a.end], c.b[b.start:b.end])
	}
	return c.unquote(a) == c.unquote(b)
}

func (c *checker) nameIs(a span, s string) bool {
	if !a.esc {
		return string(c.b[a.start:a.end]) == s
	}
	return c.unquote(a) == s
}

// push opens an object or array at offset i.
func (c *checker) push(obj bool, i int) {
	if c.depth >= MaxDepth {
		if c.sem == nil {
			c.violation(TooDeep, i, "nesting deeper than "+strconv.Itoa(MaxDepth)+" levels", "")
		}
	} else {
		c.frames = append(c.frames, frame{obj: obj, nstart: len(c.names)})
	}
	w, bit := c.depth/64, uint64(1)<<(c.depth%64)
	if w == len(c.kinds) {
		c.kinds = append(c.kinds, 0)
	}
	if obj {
		c.kinds[w] |= bit
	} else {
		c.kinds[w] &^= bit
	}
	c.depth++
}

func (c *checker) pop() {
	c.depth--
	if c.depth < len(c.frames) {
		c.names = c.names[:c.frames[c.depth].nstart]
		c.frames = c.frames[:c.depth]
	}
}

func (c *checker) isObject() bool {
	d := c.depth - 1
	return c.kinds[d/64]&(1<<(d%64)) != 0
}

// str scans the string starting with the quote at i. It returns the offset
// after the closing quote, whether it has escapes, and the offset of the
// first unpaired surrogate escape (-1 if none).
func (c *checker) str(i int) (end int, esc bool, sur int, e *Error) {
	b := c.b
	sur = -1
	j := i + 1
	for {
		if j >= len(b) {
			return j, esc, sur, c.syntax(j, "unexpected end of input")
		}
		ch := b[j]
		switch {
		case ch == '"':
			return j + 1, esc, sur, nil
		case ch == '\\':
			esc = true
			if j+1 >= len(b) {
				return j, esc, sur, c.syntax(j+1, "unexpected end of input")
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				r, e := c.hex4(j + 2)
				if e != nil {
					return j, esc, sur, e
				}
				switch {
				case utf16.IsSurrogate(r) && r < 0xdc00:
					if r2, ok := c.lowSurrogate(j + 6); ok && r2 >= 0xdc00 {
						j += 12
						continue
					}
					fallthrough
				case utf16.IsSurrogate(r):
					if sur < 0 {
						sur = j
					}
				}
				j += 6
			default:
				return j, esc, sur, c.syntax(j+1, "invalid escape "+char(b, j+1)+" in string")
			}
		case ch < 0x20:
			return j, esc, sur, c.syntax(j, fmt.Sprintf("control character U+%04X in string (escape it)", ch))
		case ch < utf8.RuneSelf:
			j++
		default:
			r, size := utf8.DecodeRune(b[j:])
			if r == utf8.RuneError && size == 1 {
				return j, esc, sur, c.syntax(j, "invalid UTF-8 in string")
			}
			j += size
		}
	}
}

// hexDigit is the value of one hex digit.
func hexDigit(d byte) (byte, bool) {
	switch {
	case d >= '0' && d <= '9':
		return d - '0', true
	case d >= 'a' && d <= 'f':
		return d - 'a' + 10, true
	case d >= 'A' && d <= 'F':
		return d - 'A' + 10, true
	}
	return 0, false
}

// hex4 reads the four hex digits of a \u escape at i.
func (c *checker) hex4(i int) (rune, *Error) {
	var r rune
	for k := i; k < i+4; k++ {
		if k >= len(c.b) {
			return 0, c.syntax(k, "unexpected end of input")
		}
		d, ok := hexDigit(c.b[k])
		if !ok {
			return 0, c.syntax(k, "invalid character "+char(c.b, k)+" in \\u escape")
		}
		r = r<<4 | rune(d)
	}
	return r, nil
}

// lowSurrogate reads a \uXXXX escape at i without reporting errors.
func (c *checker) lowSurrogate(i int) (rune, bool) {
	if i+6 > len(c.b) || c.b[i] != '\\' || c.b[i+1] != 'u' {
		return 0, false
	}
	var r rune
	for _, x := range c.b[i+2 : i+6] {
		d, ok := hexDigit(x)
		if !ok {
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	return r, r >= 0xdc00 && r < 0xe000
}

// number scans the number at i and checks its range.
func (c *checker) number(i int) (int, *Error) {
	b := c.b
	j := i
	if b[j] == '-' {
		j++
	}
	digits := func(what string) *Error {
		if j >= len(b) {
			return c.syntax(j, "unexpected end of input")
		}
		if b[j] < '0' || b[j] > '9' {
			return c.syntax(j, "invalid character "+char(b, j)+" in number (want a digit "+what+")")
		}
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return nil
	}
	intStart := j
	if j < len(b) && b[j] == '0' {
		j++
	} else if e := digits("after '-'"); e != nil {
		return j, e
	}
	intDigits := j - intStart
	if j < len(b) && b[j] == '.' {
		j++
		if e := digits("after '.'"); e != nil {
			return j, e
		}
	}
	exp := false
	if j < len(b) && (b[j] == 'e' || b[j] == 'E') {
		exp = true
		j++
		if j < len(b) && (b[j] == '+' || b[j] == '-') {
			j++
		}
		if e := digits("in the exponent"); e != nil {
			return j, e
		}
	}
	// Without an exponent, 308 integer digits stay below 1e308 < MaxFloat64.
	if exp || intDigits > 308 {
		if _, err := strconv.ParseFloat(string(b[i:j]), 64); errors.Is(err, strconv.ErrRange) {
			c.violation(NumberRange, i, "number "+truncate(string(b[i:j]), 40)+" is beyond the range of an IEEE 754 double", "")
		}
	}
	return j, nil
}

func (c *checker) literal(i int, lit string) (int, *Error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(c.b) {
			return i + k, c.syntax(i+k, "unexpected end of input")
		}
		if c.b[i+k] != lit[k] {
			return i + k, c.syntax(i+k, "invalid character "+char(c.b, i+k)+" in literal "+lit)
		}
	}
	return i + len(lit), nil
}

// violation records the first non-syntax error; checking goes on for
// syntax errors only (duplicate names are no longer tracked).
func (c *checker) violation(r Reason, off int, msg, name string) {
	if c.sem != nil {
		return
	}
	c.sem = &Error{Reason: r, Offset: off, Pointer: c.pointer(), Name: name, Msg: msg}
	for k := range c.frames {
		c.frames[k].set = nil
	}
}

func (c *checker) syntax(off int, msg string) *Error {
	return &Error{Reason: Syntax, Offset: off, Pointer: c.pointer(), Msg: msg}
}

// pointer is the RFC 6901 pointer of the value being read.
func (c *checker) pointer() string {
	var sb strings.Builder
	for k := range c.frames {
		f := &c.frames[k]
		switch {
		case f.obj && f.hasKey:
			sb.WriteByte('/')
			n := c.unquote(f.key)
			if strings.ContainsAny(n, "~/") {
				n = strings.NewReplacer("~", "~0", "/", "~1").Replace(n)
			}
			sb.WriteString(n)
		case !f.obj:
			sb.WriteByte('/')
			sb.WriteString(strconv.Itoa(f.idx))
		}
	}
	return sb.String()
}

// unquote decodes a scanned name; an unpaired surrogate becomes U+FFFD.
func (c *checker) unquote(s span) string {
	raw := c.b[s.start:s.end]
	if !s.esc {
		return string(raw)
	}
	out := make([]byte, 0, len(raw))
	for j := 0; j < len(raw); {
		if raw[j] != '\\' {
			out = append(out, raw[j])
			j++
			continue
		}
		switch raw[j+1] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, _ := strconv.ParseUint(string(raw[j+2:j+6]), 16, 32)
			ru := rune(r)
			if utf16.IsSurrogate(ru) && j+12 <= len(raw) && raw[j+6] == '\\' && raw[j+7] == 'u' {
				r2, _ := strconv.ParseUint(string(raw[j+8:j+12]), 16, 32)
				if d := utf16.DecodeRune(ru, rune(r2)); d != utf8.RuneError {
					out = utf8.AppendRune(out, d)
					j += 12
					continue
				}
			}
			if utf16.IsSurrogate(ru) {
				ru = utf8.RuneError
			}
			out = utf8.AppendRune(out, ru)
			j += 6
			continue
		default: // " \ /
			out = append(out, raw[j+1])
		}
		j += 2
	}
	return string(out)
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// char quotes the character at b[i] for a message.
func char(b []byte, i int) string {
	r, size := utf8.DecodeRune(b[i:])
	if r == utf8.RuneError && size == 1 {
		return fmt.Sprintf("byte 0x%02x", b[i])
	}
	return strconv.QuoteRune(r)
}

func quote(s string) string { return strconv.Quote(truncate(s, 64)) }

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
