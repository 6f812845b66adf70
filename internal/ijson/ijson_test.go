package ijson

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestCheckAccepts(t *testing.T) {
	for _, s := range []string{
		`{}`, `[]`, `0`, `-0`, `"x"`, `true`, `false`, `null`, " \t\r\n{} \n",
		`{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`,
		`{"a":1,"A":2}`,                    // names are case-sensitive
		`{"a":1,"a ":2}`,                   // and compared exactly
		`[{"a":1},{"a":2}]`,                // siblings may share names
		`{"x":{"a":1},"y":{"a":1}}`,        // so may cousins
		`1e308`, `-1.7976931348623157e308`, // the largest double
		`1e-400`, `-4.9e-325`, `0e999999`, // underflow is accepted
		`123456789012345678901234567890`,       // beyond 2^53: precision only
		`"\ud83d\ude00"`, `{"\ud83d\ude00":1}`, // a paired surrogate
		`"\uFFFE\uFDD0"`, "\"\xef\xbf\xbe\"", // noncharacters (see package doc)
		`{"a\"b":1,"a\\b":2,"a/b":3,"a\/c":4}`, // distinct after unescaping
		`[` + strings.Repeat(`{"k":0},`, 100) + `0]`,
		`{` + manyMembers(100) + `}`,
		strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth),
	} {
		if err := Check([]byte(s)); err != nil {
			t.Errorf("Check(%.60q) = %v", s, err)
		}
		if !json.Valid([]byte(s)) {
			t.Errorf("test bug: %.60q is not JSON", s)
		}
	}
}

func manyMembers(n int) string {
	var sb strings.Builder
	for i := 0; i < n; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`"m` + strings.Repeat("x", i) + `":1`)
	}
	return sb.String()
}

func TestCheckRefuses(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	tests := []struct {
		in      string
		reason  Reason
		offset  int
		pointer string
		msg     string // substring of Error()
	}{
		// Duplicates, named by the pointer of the second member.
		{`{"data":{"qty":-5,"qty":5}}`, Duplicate, 18, "/data/qty", `duplicate member "qty" at byte 18`},
		{`{"a":1,"a":2}`, Duplicate, 7, "/a", `duplicate member "a"`},
		{`{"a":1,"\u0061":2}`, Duplicate, 7, "/a", `duplicate member "a"`},
		{`{"":1,"":2}`, Duplicate, 6, "/", `duplicate member ""`},
		{`{"a/b":1,"a\/b":2}`, Duplicate, 9, "/a~1b", `duplicate member "a/b"`},
		{`{"~":1,"~":2}`, Duplicate, 7, "/~0", `duplicate member "~"`},
		{`[0,{"x":[1,{"k":1,"j":2,"k":3}]}]`, Duplicate, 24, "/1/x/1/k", `duplicate member "k"`},
		{`{` + manyMembers(40) + `,"m` + strings.Repeat("x", 30) + `":2}`, Duplicate, len(`{` + manyMembers(40) + `,`), "/m" + strings.Repeat("x", 30), "duplicate member"},
		{`{"a":1,"a":2,"b":1e999}`, Duplicate, 7, "/a", "duplicate"}, // the first violation wins
		// Numbers beyond the double range.
		{`1e999999`, NumberRange, 0, "", "number 1e999999 is beyond the range of an IEEE 754 double at byte 0"},
		{`{"data":{"x":-1e400}}`, NumberRange, 13, "/data/x", "number -1e400"},
		{`[1,2,1.8e308]`, NumberRange, 5, "/2", "1.8e308"},
		{strings.Repeat("9", 309), NumberRange, 0, "", "is beyond the range"},
		{`{"a":1e999,"a":1}`, NumberRange, 5, "/a", "beyond"},
		// Unpaired surrogates.
		{`"\ud800"`, Surrogate, 1, "", `unpaired UTF-16 surrogate \ud800 in string`},
		{`{"s":"x\udc00y"}`, Surrogate, 7, "/s", `\udc00`},
		{`{"s":"\ud800\u0041"}`, Surrogate, 6, "/s", `\ud800`},
		{`{"\udbff":1}`, Surrogate, 2, "/\ufffd", "in member name"},
		// Nesting.
		{deep, TooDeep, MaxDepth, "/" + strings.TrimSuffix(strings.Repeat("0/", MaxDepth), "/"), "nesting deeper than 10000 levels at byte 10000"},
		{`{"data":` + strings.Repeat(`{"a":`, MaxDepth) + `1` + strings.Repeat("}", MaxDepth+1), TooDeep, 8 + 5*(MaxDepth-1), "", "nesting deeper than 10000 levels"},
		// Syntax, with the offset of the offending byte.
		{``, Syntax, 0, "", "unexpected end of input at byte 0"},
		{`  `, Syntax, 2, "", "unexpected end of input at byte 2"},
		{`{"data":{"a":`, Syntax, 13, "/data/a", "unexpected end of input at byte 13"},
		{`{"data":`, Syntax, 8, "/data", "unexpected end of input at byte 8"},
		{`{"a":1} {"b":2}`, Syntax, 8, "", "data after the top-level value at byte 8"},
		{`01`, Syntax, 1, "", "data after the top-level value"},
		{`{"a" 1}`, Syntax, 5, "/a", "invalid character '1' after object member name (want ':')"},
		{`{"a":1 "b":2}`, Syntax, 7, "/a", "after object member value"},
		{`[1 2]`, Syntax, 3, "/0", "after array element"},
		{`[1,]`, Syntax, 3, "/1", "invalid character ']' looking for beginning of value"},
		{`{"a":1,}`, Syntax, 7, "/a", "looking for beginning of object member name"},
		{`{1:2}`, Syntax, 1, "", "looking for beginning of object member name"},
		{`[-]`, Syntax, 2, "/0", "in number"},
		{`1.`, Syntax, 2, "", "unexpected end of input"},
		{`1.e3`, Syntax, 2, "", "want a digit after '.'"},
		{`1e+`, Syntax, 3, "", "unexpected end"},
		{`tru`, Syntax, 3, "", "unexpected end of input"},
		{`nul1`, Syntax, 3, "", "in literal null"},
		{`"a` + "\n" + `"`, Syntax, 2, "", "control character U+000A in string"},
		{`"\x"`, Syntax, 2, "", `invalid escape 'x' in string`},
		{`"\u12G4"`, Syntax, 5, "", `invalid character 'G' in \u escape`},
		{"\"\xff\"", Syntax, 1, "", "invalid UTF-8 in string"},
		{"\xef\xbb\xbf{}", Syntax, 0, "", `invalid character '\ufeff' looking for beginning of value`},
		{"\xff", Syntax, 0, "", "invalid character byte 0xff"},
		{`{"a":1,"a":2`, Syntax, 12, "/a", "unexpected end of input"}, // syntax wins over an earlier duplicate
		{`[1e999,`, Syntax, 7, "/1", "unexpected end of input"},
		{deep + "x", Syntax, len(deep), "", "data after the top-level value"},
		{strings.Repeat("[", MaxDepth+5) + "}", Syntax, MaxDepth + 5, "/" + strings.TrimSuffix(strings.Repeat("0/", MaxDepth), "/"), "invalid character '}'"},
	}
	for _, tc := range tests {
		err := Check([]byte(tc.in))
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("Check(%.60q) = %v, want a %v error", tc.in, err, tc.reason)
			continue
		}
		if e.Reason != tc.reason || e.Offset != tc.offset || (tc.pointer != "" || len(tc.in) < 1000) && e.Pointer != tc.pointer || !strings.Contains(e.Error(), tc.msg) {
			t.Errorf("Check(%.60q) = %v (reason %v, offset %d, pointer %.60q), want %v at %d, pointer %.60q, message with %q",
				tc.in, e, e.Reason, e.Offset, e.Pointer, tc.reason, tc.offset, tc.pointer, tc.msg)
		}
		if IsSyntax(err) != (tc.reason == Syntax) {
			t.Errorf("IsSyntax(%v) = %v", err, IsSyntax(err))
		}
		if tc.reason == Duplicate && e.Name == "" && !strings.Contains(tc.in, `""`) {
			t.Errorf("Check(%.60q): no Name", tc.in)
		}
		// Syntax errors are exactly what encoding/json calls invalid
		// (when the input is UTF-8 and within its depth limit).
		if tc.reason == Syntax && json.Valid([]byte(tc.in)) && !strings.Contains(tc.msg, "UTF-8") {
			t.Errorf("Check(%.60q) reports a syntax error but encoding/json accepts it", tc.in)
		}
		if tc.reason != Syntax && tc.reason != TooDeep && !json.Valid([]byte(tc.in)) {
			t.Errorf("test bug: %.60q is not JSON", tc.in)
		}
	}
}

// TestCheckVeryDeep: nesting far beyond MaxDepth neither recurses nor
// keeps a frame per level.
func TestCheckVeryDeep(t *testing.T) {
	const n = 2_000_000
	b := []byte(strings.Repeat("[", n) + strings.Repeat("]", n))
	var e *Error
	if err := Check(b); !errors.As(err, &e) || e.Reason != TooDeep || e.Offset != MaxDepth {
		t.Fatalf("Check = %v", err)
	}
	allocs := testing.AllocsPerRun(3, func() { _ = Check(b) })
	if allocs > 200 {
		t.Fatalf("%v allocations for %d levels", allocs, n)
	}
	b[len(b)-1] = '}'
	if err := Check(b); !IsSyntax(err) {
		t.Fatalf("mismatched bracket past MaxDepth: %v", err)
	}
}

// TestCheckStoredDepth: the depth the server stores (3000) passes.
func TestCheckStoredDepth(t *testing.T) {
	s := `{"data":` + strings.Repeat(`{"a":`, 3000) + "1" + strings.Repeat("}", 3001)
	if err := Check([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckMembers(t *testing.T) {
	tests := []struct {
		in   string
		ref  string // raw value found, "-" for none
		typ  string
		err  Reason
		desc string
	}{
		{`{"type":"ping","ref":"1"}`, `"1"`, `"ping"`, 0, "plain"},
		{`{"ref":{"x":[1,{}]} ,"type":"t"}`, `{"x":[1,{}]}`, `"t"`, 0, "composite"},
		{`{"ref":"a","ref":"b"}`, `"a"`, "-", Duplicate, "first occurrence"},
		{`{"\u0072ef":"e"}`, `"e"`, "-", 0, "escaped name"},
		{`{"x":{"ref":"inner"}}`, "-", "-", 0, "top level only"},
		{`[{"ref":"inner"}]`, "-", "-", 0, "not an object"},
		{`{"ref":"n","data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, `"n"`, "-", TooDeep, "found despite deep nesting"},
		{`{"data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `,"ref":"late"}`, `"late"`, "-", TooDeep, "found after deep nesting"},
		{`{"ref":"t","x":`, `"t"`, "-", Syntax, "complete before a syntax error"},
		{`{"ref":"t`, "-", "-", Syntax, "incomplete"},
	}
	for _, tc := range tests {
		vals, err := CheckMembers([]byte(tc.in), "ref", "type")
		var e *Error
		switch {
		case tc.err == 0 && err != nil, tc.err != 0 && (!errors.As(err, &e) || e.Reason != tc.err):
			t.Errorf("%s: error %v, want %v", tc.desc, err, tc.err)
		}
		for k, want := range []string{tc.ref, tc.typ} {
			got := string(vals[k])
			if vals[k] == nil {
				got = "-"
			}
			if got != want {
				t.Errorf("%s: member %d = %s, want %s", tc.desc, k, got, want)
			}
		}
	}
}

// FuzzIJSONCheck: Check never panics; it refuses as Syntax exactly what
// encoding/json cannot parse (for UTF-8 within its depth limit); whatever
// it accepts encoding/json decodes (numbers into float64 included), and
// decoding into maps loses no member, so no name was duplicated; every
// error has an offset within the input and a well-formed pointer.
func FuzzIJSONCheck(f *testing.F) {
	for _, s := range []string{
		`{"data":{"qty":-5,"qty":5}}`, `{"a":1,"\u0061":2}`, `[1e999999]`, `-1e400`, `1e-400`,
		`"\ud800"`, `"\ud83d\ude00"`, `{"data":{"a":`, `{"a":[{"b":{}},{"b":[]}],"c":"\u00e9"}`,
		`[[[[[[[[[[]]]]]]]]]]`, "\"\xff\"", `{"a":1} x`, `{"~/":0,"~0~1":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := CheckMembers(b, "a")
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if e.Offset < 0 || e.Offset > len(b) || e.Msg == "" {
				t.Fatalf("bad error %+v for %q", e, b)
			}
			if !validPointer(e.Pointer) {
				t.Fatalf("bad pointer %q for %q", e.Pointer, b)
			}
			if e.Reason == Syntax && json.Valid(b) && !strings.Contains(e.Msg, "UTF-8") {
				t.Fatalf("syntax error %v, but encoding/json accepts %q", e, b)
			}
			// Not a syntax error: the text is JSON, which encoding/json
			// parses unless it is nested too deep for it.
			if e.Reason != Syntax && !json.Valid(b) && len(b) <= MaxDepth {
				t.Fatalf("%v error, but encoding/json refuses %q", e, b)
			}
			return
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("accepted %q, encoding/json: %v", b, err)
		}
		re, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("re-encode %q: %v", b, err)
		}
		if n, m := members(t, b), members(t, re); n != m {
			t.Fatalf("accepted %q: %d members, %d after a map round trip", b, n, m)
		}
		if err := Check(re); err != nil {
			t.Fatalf("re-encoding %q of accepted %q refused: %v", re, b, err)
		}
		if m, ok := v.(map[string]any); ok {
			if _, has := m["a"]; has != (vals[0] != nil) {
				t.Fatalf("member a found %v in %q", vals[0] != nil, b)
			}
		}
	})
}

// members counts object members with encoding/json's tokenizer, which
// keeps duplicates.
func members(t *testing.T, b []byte) int {
	dec := json.NewDecoder(bytes.NewReader(b))
	n := 0
	type state struct{ obj, key bool }
	var st []state
	for {
		tok, err := dec.Token()
		if err != nil {
			return n
		}
		top := len(st) - 1
		if top >= 0 && st[top].obj && !st[top].key {
			if _, ok := tok.(string); ok {
				n++
				st[top].key = true
				continue
			}
		}
		if top >= 0 && st[top].obj {
			st[top].key = false
		}
		switch tok {
		case json.Delim('{'):
			st = append(st, state{obj: true})
		case json.Delim('['):
			st = append(st, state{})
		case json.Delim('}'), json.Delim(']'):
			st = st[:len(st)-1]
		}
	}
}

func validPointer(p string) bool {
	if p != "" && p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 >= len(p) || p[i+1] != '0' && p[i+1] != '1') {
			return false
		}
	}
	return true
}

// BenchmarkCheck compares Check with json.Valid on a typical write body.
func BenchmarkCheck(b *testing.B) {
	body := []byte(`{"data":{"item":"tea","qty":2,"price":3.5,"tags":["a","b"],"customer":{"id":"c-1","name":"Ann","vip":true}},"labels":{"env":"prod"}}`)
	b.Run("Check", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_ = Check(body)
		}
	})
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			_ = json.Valid(body)
		}
	})
}
