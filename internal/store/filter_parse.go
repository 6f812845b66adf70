package store

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// ParseFilter parses a filter expression such as
//
//	data.status == "paid" && data.qty > 2 && !exists(data.refund)
//
// Grammar (precedence low to high: ||, &&, !):
//
//	expr    = and { "||" and }
//	and     = unary { "&&" unary }
//	unary   = "!" unary | "(" expr ")" | term
//	term    = field ("==" | "!=" | "<" | "<=" | ">" | ">=") literal
//	        | field "in" "[" literal { "," literal } "]"
//	        | "exists" "(" field ")"
//	        | ("startsWith" | "endsWith" | "contains") "(" field "," literal ")"
//	field   = "data" segment { segment } | "labels" segment
//	        | "id" | "revision" | "createdAt" | "updatedAt"
//	segment = "." identifier | "[" string "]"
//	literal = string | number | "true" | "false" | "null"
//
// Strings are JSON strings in double or single quotes; numbers are JSON
// numbers. createdAt and updatedAt compare with RFC 3339 strings, revision
// with integers, id and labels with strings. An empty (or all-space)
// expression yields a nil Filter. Errors: CodeInvalid, the message naming
// the 1-based byte position of the problem ("position 14: …"), also for
// expressions beyond the bounds (MaxFilterLength, MaxFilterDepth,
// MaxFilterTerms, MaxFilterValues, MaxFilterPath).
func ParseFilter(s string) (*Filter, error) {
	if len(s) > MaxFilterLength {
		return nil, Errorf(CodeInvalid, "is %d bytes long; the limit is %d", len(s), MaxFilterLength)
	}
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if !utf8.ValidString(s) {
		return nil, Errorf(CodeInvalid, "is not valid UTF-8")
	}
	p := &parser{src: s}
	if err := p.lex(); err != nil {
		return nil, err
	}
	root, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return nil, p.errAt(t.pos, "unexpected %s; expected && or || or the end", t.describe())
	}
	var b strings.Builder
	root.write(&b)
	return &Filter{root: root, text: b.String()}, nil
}

type tokKind uint8

const (
	tokEOF tokKind = iota
	tokIdent
	tokString
	tokNumber
	tokPunct
)

type token struct {
	kind tokKind
	pos  int    // 0-based byte offset
	text string // identifier, punctuation, or the decoded string
	num  float64
}

func (t token) describe() string {
	switch t.kind {
	case tokEOF:
		return "end of the expression"
	case tokString:
		return "string " + strconv.Quote(t.text)
	case tokNumber, tokIdent:
		return strconv.Quote(t.text)
	}
	return "'" + t.text + "'"
}

type parser struct {
	src    string
	toks   []token
	i      int
	terms  int
	values int
}

func (p *parser) errAt(pos int, format string, args ...any) error {
	return Errorf(CodeInvalid, "position %d: %s", pos+1, fmt.Sprintf(format, args...))
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) punct(s string) bool {
	if t := p.peek(); t.kind == tokPunct && t.text == s {
		p.i++
		return true
	}
	return false
}

func (p *parser) expect(s, what string) error {
	if p.punct(s) {
		return nil
	}
	t := p.peek()
	return p.errAt(t.pos, "expected '%s' %s, found %s", s, what, t.describe())
}

// lex splits src into tokens (ending with tokEOF).
func (p *parser) lex() error {
	s := p.src
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			j := i + 1
			for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			p.toks = append(p.toks, token{kind: tokIdent, pos: i, text: s[i:j]})
			i = j
		case c == '"' || c == '\'':
			str, n, err := lexString(s[i:])
			if err != nil {
				return p.errAt(i, "%s", err)
			}
			p.toks = append(p.toks, token{kind: tokString, pos: i, text: str})
			i += n
		case c == '-' || c >= '0' && c <= '9':
			n := lexNumber(s[i:])
			if n == 0 {
				return p.errAt(i, "malformed number")
			}
			v, err := strconv.ParseFloat(s[i:i+n], 64)
			if err != nil || math.IsInf(v, 0) {
				return p.errAt(i, "number %s is out of range", s[i:i+n])
			}
			p.toks = append(p.toks, token{kind: tokNumber, pos: i, text: s[i : i+n], num: v})
			i += n
		default:
			two := ""
			if i+1 < len(s) {
				two = s[i : i+2]
			}
			switch two {
			case "==", "!=", "<=", ">=", "&&", "||":
				p.toks = append(p.toks, token{kind: tokPunct, pos: i, text: two})
				i += 2
				continue
			}
			if strings.IndexByte("()[],.<>!", c) < 0 {
				if c == '=' || c == '&' || c == '|' {
					return p.errAt(i, "unexpected '%c'; the operators are ==, !=, &&, ||", c)
				}
				r, _ := utf8.DecodeRuneInString(s[i:])
				return p.errAt(i, "unexpected character %q", r)
			}
			p.toks = append(p.toks, token{kind: tokPunct, pos: i, text: s[i : i+1]})
			i++
		}
	}
	p.toks = append(p.toks, token{kind: tokEOF, pos: len(s)})
	return nil
}

// lexString reads a quoted string at the start of s (JSON escapes; the
// quote may be ' or ") and returns its value and length in s.
func lexString(s string) (string, int, error) {
	q := s[0]
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == q:
			return b.String(), i + 1, nil
		case c < 0x20:
			return "", 0, fmt.Errorf("control character in a string")
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			break
		}
		i++
		switch e := s[i]; e {
		case '"', '\'', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			if i+4 >= len(s) {
				return "", 0, fmt.Errorf("malformed \\u escape")
			}
			v, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", 0, fmt.Errorf("malformed \\u escape")
			}
			r := rune(v)
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
				if lo, err := strconv.ParseUint(s[i+3:i+7], 16, 16); err == nil && lo >= 0xDC00 && lo < 0xE000 {
					r = (r-0xD800)<<10 + (rune(lo) - 0xDC00) + 0x10000
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				return "", 0, fmt.Errorf("unpaired surrogate in a \\u escape")
			}
			b.WriteRune(r)
		default:
			return "", 0, fmt.Errorf("unknown escape \\%c", e)
		}
	}
	return "", 0, fmt.Errorf("unterminated string")
}

// lexNumber returns the length of the JSON number at the start of s, or 0.
func lexNumber(s string) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := func() int {
		j := i
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		return i - j
	}
	if i < len(s) && s[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0
	}
	if i < len(s) && s[i] == '.' {
		i++
		if digits() == 0 {
			return 0
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0
		}
	}
	if i < len(s) && (s[i] == '_' || s[i] >= 'a' && s[i] <= 'z' || s[i] >= 'A' && s[i] <= 'Z' || s[i] >= '0' && s[i] <= '9') {
		return 0 // 12abc, 01
	}
	return i
}

func (p *parser) or(depth int) (*Expr, error) {
	return p.nary(OpOr, depth, p.and)
}

func (p *parser) and(depth int) (*Expr, error) {
	return p.nary(OpAnd, depth, p.unary)
}

// nary parses operands joined by op, flattening them into one node.
func (p *parser) nary(op Op, depth int, operand func(int) (*Expr, error)) (*Expr, error) {
	first, err := operand(depth)
	if err != nil {
		return nil, err
	}
	args := []*Expr{first}
	for p.punct(string(op)) {
		a, err := operand(depth)
		if err != nil {
			return nil, err
		}
		if a.Op == op {
			args = append(args, a.Args...)
		} else {
			args = append(args, a)
		}
	}
	if len(args) == 1 {
		return first, nil
	}
	if first.Op == op { // (a && b) && c
		args = append(append([]*Expr{}, first.Args...), args[1:]...)
	}
	return &Expr{Op: op, Args: args}, nil
}

func (p *parser) unary(depth int) (*Expr, error) {
	t := p.peek()
	if depth >= MaxFilterDepth {
		return nil, p.errAt(t.pos, "nested deeper than %d levels", MaxFilterDepth)
	}
	switch {
	case p.punct("!"):
		a, err := p.unary(depth + 1)
		if err != nil {
			return nil, err
		}
		if a.Op == OpNot { // !!x is x
			return a.Args[0], nil
		}
		return &Expr{Op: OpNot, Args: []*Expr{a}}, nil
	case p.punct("("):
		e, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := p.expect(")", "to close the '(' at position "+strconv.Itoa(t.pos+1)); err != nil {
			return nil, err
		}
		return e, nil
	}
	return p.term()
}

func (p *parser) term() (*Expr, error) {
	t := p.peek()
	p.terms++
	if p.terms > MaxFilterTerms {
		return nil, p.errAt(t.pos, "more than %d terms", MaxFilterTerms)
	}
	if t.kind == tokIdent && p.toks[p.i+1].kind == tokPunct && p.toks[p.i+1].text == "(" {
		return p.function()
	}
	f, err := p.field()
	if err != nil {
		return nil, err
	}
	op := p.next()
	switch {
	case op.kind == tokIdent && op.text == "in":
		return p.inList(f)
	case op.kind == tokPunct && (op.text == "==" || op.text == "!=" || op.text == "<" || op.text == "<=" || op.text == ">" || op.text == ">="):
	default:
		return nil, p.errAt(op.pos, "expected an operator (== != < <= > >= in) after %s, found %s", f, op.describe())
	}
	v, err := p.literal(f)
	if err != nil {
		return nil, err
	}
	o := Op(op.text)
	if o != OpEq && o != OpNe && v.Kind != KindNumber && v.Kind != KindString && v.Kind != KindTime {
		return nil, p.errAt(op.pos, "%s compares numbers, strings and times only", o)
	}
	return &Expr{Op: o, Field: f, Values: []Value{v}}, nil
}

func (p *parser) function() (*Expr, error) {
	name := p.next()
	p.next() // (
	op := Op(name.text)
	switch op {
	case OpExists, OpStartsWith, OpEndsWith, OpContains:
	default:
		return nil, p.errAt(name.pos, "unknown function %q; the functions are exists, startsWith, endsWith, contains", name.text)
	}
	f, err := p.field()
	if err != nil {
		return nil, err
	}
	e := &Expr{Op: op, Field: f}
	if op != OpExists {
		if err := p.expect(",", "after the field"); err != nil {
			return nil, err
		}
		at := p.peek().pos
		v, err := p.literal(Field{Root: RootData}) // the value's own type: contains looks into arrays too
		if err != nil {
			return nil, err
		}
		if op != OpContains && v.Kind != KindString {
			return nil, p.errAt(at, "%s takes a string", op)
		}
		if f.Root == RootRevision || f.Root == RootCreatedAt || f.Root == RootUpdatedAt {
			return nil, p.errAt(at, "%s applies to strings; %s is not one", op, f)
		}
		e.Values = []Value{v}
	}
	if err := p.expect(")", "to close "+string(op)+"("); err != nil {
		return nil, err
	}
	return e, nil
}

func (p *parser) inList(f Field) (*Expr, error) {
	if err := p.expect("[", "after in"); err != nil {
		return nil, err
	}
	e := &Expr{Op: OpIn, Field: f}
	for {
		v, err := p.literal(f)
		if err != nil {
			return nil, err
		}
		e.Values = append(e.Values, v)
		if p.punct("]") {
			return e, nil
		}
		if err := p.expect(",", "or ']' in the list"); err != nil {
			return nil, err
		}
	}
}

// field parses a field name.
func (p *parser) field() (Field, error) {
	t := p.next()
	if t.kind != tokIdent {
		return Field{}, p.errAt(t.pos, "expected a field (data.…, labels.…, id, revision, createdAt, updatedAt), found %s", t.describe())
	}
	f := Field{Root: FieldRoot(t.text)}
	switch f.Root {
	case RootID, RootRevision, RootCreatedAt, RootUpdatedAt:
		if n := p.peek(); n.kind == tokPunct && (n.text == "." || n.text == "[") {
			return Field{}, p.errAt(n.pos, "%s has no members", f.Root)
		}
		return f, nil
	case RootData, RootLabels:
	default:
		return Field{}, p.errAt(t.pos, "unknown field %q; fields start with data., labels., or are id, revision, createdAt, updatedAt", t.text)
	}
	for {
		n := p.peek()
		var seg string
		switch {
		case p.punct("."):
			s := p.next()
			if s.kind != tokIdent {
				return Field{}, p.errAt(s.pos, "expected a member name after '.', found %s", s.describe())
			}
			seg = s.text
		case p.punct("["):
			s := p.next()
			if s.kind != tokString {
				return Field{}, p.errAt(s.pos, "expected a quoted member name after '[', found %s", s.describe())
			}
			if err := p.expect("]", "after the member name"); err != nil {
				return Field{}, err
			}
			seg = s.text
		default:
			if len(f.Path) == 0 {
				return Field{}, p.errAt(n.pos, "%s needs a member: %s.name", f.Root, f.Root)
			}
			return f, nil
		}
		f.Path = append(f.Path, seg)
		switch {
		case f.Root == RootLabels && len(f.Path) > 1:
			return Field{}, p.errAt(n.pos, "labels have no members")
		case f.Root == RootLabels && !ValidLabelKey(seg):
			return Field{}, p.errAt(n.pos, "%q is not a label key", seg)
		case len(f.Path) > MaxFilterPath:
			return Field{}, p.errAt(n.pos, "path deeper than %d members", MaxFilterPath)
		}
	}
}

// literal parses a literal compared with field f, checking its type.
func (p *parser) literal(f Field) (Value, error) {
	t := p.next()
	p.values++
	if p.values > MaxFilterValues {
		return Value{}, p.errAt(t.pos, "more than %d values", MaxFilterValues)
	}
	var v Value
	switch {
	case t.kind == tokString:
		v = Value{Kind: KindString, Str: t.text}
	case t.kind == tokNumber:
		v = Value{Kind: KindNumber, Num: t.num}
	case t.kind == tokIdent && (t.text == "true" || t.text == "false"):
		v = Value{Kind: KindBool, Bool: t.text == "true"}
	case t.kind == tokIdent && t.text == "null":
		v = Value{Kind: KindNull}
	default:
		return Value{}, p.errAt(t.pos, "expected a value (a string, number, true, false or null), found %s", t.describe())
	}
	switch f.Root {
	case RootID, RootLabels:
		if v.Kind != KindString {
			return Value{}, p.errAt(t.pos, "%s is a string; compare it with a string", f)
		}
	case RootRevision:
		if v.Kind != KindNumber || v.Num != math.Trunc(v.Num) {
			return Value{}, p.errAt(t.pos, "revision is an integer; compare it with one")
		}
	case RootCreatedAt, RootUpdatedAt:
		if v.Kind != KindString {
			return Value{}, p.errAt(t.pos, "%s is a time; compare it with an RFC 3339 string such as \"2026-01-02T15:04:05Z\"", f)
		}
		tm, err := time.Parse(time.RFC3339Nano, v.Str)
		if err != nil {
			return Value{}, p.errAt(t.pos, "%q is not an RFC 3339 time such as \"2026-01-02T15:04:05Z\"", v.Str)
		}
		v = Value{Kind: KindTime, Time: tm.UTC()}
	}
	return v, nil
}
