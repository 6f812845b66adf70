package store

import (
	"strconv"
	"strings"
	"time"
)

// The filter language's bounds. Every filter that parses evaluates in
// time linear in its size (no loops, no functions of unbounded cost), so
// bounding the size bounds the cost of one evaluation: at most MaxFilterTerms
// field lookups and MaxFilterValues comparisons, plus substring tests over
// the resource's own strings.
const (
	// MaxFilterLength is the longest filter expression, in bytes.
	MaxFilterLength = 4096
	// MaxFilterDepth bounds the nesting of parentheses and negations.
	MaxFilterDepth = 32
	// MaxFilterTerms bounds the number of comparisons and functions.
	MaxFilterTerms = 64
	// MaxFilterValues bounds the number of literals (in-lists included).
	MaxFilterValues = 256
	// MaxFilterPath bounds the segments of a data path (data.a.b.c …).
	MaxFilterPath = 16
)

// FieldRoot is what a filter field names: a member of the resource's data,
// one of its labels, or one of its metadata fields.
type FieldRoot string

// The field roots of the filter language.
const (
	RootData      FieldRoot = "data"
	RootLabels    FieldRoot = "labels"
	RootID        FieldRoot = "id"
	RootRevision  FieldRoot = "revision"
	RootCreatedAt FieldRoot = "createdAt"
	RootUpdatedAt FieldRoot = "updatedAt"
)

// Field is a filter field: Root, and for data and labels the path below it
// (one segment for labels).
type Field struct {
	Root FieldRoot
	Path []string
}

// String returns the field in canonical form: data.a.b, with segments that
// are not identifiers quoted (data["a b"], labels["app.kubernetes.io/name"]).
func (f Field) String() string {
	var b strings.Builder
	b.WriteString(string(f.Root))
	for _, s := range f.Path {
		if isIdent(s) {
			b.WriteByte('.')
			b.WriteString(s)
		} else {
			b.WriteByte('[')
			b.WriteString(quote(s))
			b.WriteByte(']')
		}
	}
	return b.String()
}

// Equal reports whether f and g name the same field.
func (f Field) Equal(g Field) bool {
	if f.Root != g.Root || len(f.Path) != len(g.Path) {
		return false
	}
	for i := range f.Path {
		if f.Path[i] != g.Path[i] {
			return false
		}
	}
	return true
}

// ParseField parses one field name as the filter language writes it
// (data.status, labels.env, createdAt, data["a b"]). Errors: CodeInvalid
// naming the position.
func ParseField(s string) (Field, error) {
	p := &parser{src: s}
	if err := p.lex(); err != nil {
		return Field{}, err
	}
	f, err := p.field()
	if err != nil {
		return Field{}, err
	}
	if t := p.peek(); t.kind != tokEOF {
		return Field{}, p.errAt(t.pos, "unexpected %s after the field", t.describe())
	}
	return f, nil
}

// ValueKind is the type of a filter literal.
type ValueKind uint8

// The literal types. Time literals are written as RFC 3339 strings and
// appear only in comparisons with createdAt and updatedAt.
const (
	KindString ValueKind = iota + 1
	KindNumber
	KindBool
	KindNull
	KindTime
)

// Value is a typed filter literal.
type Value struct {
	Kind ValueKind
	Str  string
	Num  float64
	Bool bool
	Time time.Time
}

// String returns the literal as the filter language writes it.
func (v Value) String() string {
	switch v.Kind {
	case KindString:
		return quote(v.Str)
	case KindNumber:
		return strconv.FormatFloat(v.Num, 'g', -1, 64)
	case KindBool:
		return strconv.FormatBool(v.Bool)
	case KindTime:
		return quote(v.Time.UTC().Format(time.RFC3339Nano))
	}
	return "null"
}

// Op is a filter operator.
type Op string

// The operators. OpAnd and OpOr are n-ary; OpNot has one operand; the
// others are terms over one field.
const (
	OpAnd        Op = "&&"
	OpOr         Op = "||"
	OpNot        Op = "!"
	OpEq         Op = "=="
	OpNe         Op = "!="
	OpLt         Op = "<"
	OpLe         Op = "<="
	OpGt         Op = ">"
	OpGe         Op = ">="
	OpIn         Op = "in"
	OpExists     Op = "exists"
	OpStartsWith Op = "startsWith"
	OpEndsWith   Op = "endsWith"
	OpContains   Op = "contains"
)

// Expr is one node of a parsed filter.
type Expr struct {
	Op Op
	// Args are the operands of OpAnd, OpOr (two or more) and OpNot (one).
	Args []*Expr
	// Field and Values are the field and literals of a term (one value
	// for comparisons and string functions, one or more for OpIn, none
	// for OpExists).
	Field  Field
	Values []Value
}

// Filter is a parsed, validated filter expression. The zero value and nil
// match everything. A Filter is immutable and safe for concurrent use.
type Filter struct {
	root *Expr
	text string // canonical form
}

// Root returns the expression tree (nil for an empty filter). Callers must
// not modify it.
func (f *Filter) Root() *Expr {
	if f == nil {
		return nil
	}
	return f.root
}

// String returns the canonical form of the filter ("" for none): equal
// filters print the same, so they can share a subscription.
func (f *Filter) String() string {
	if f == nil {
		return ""
	}
	return f.text
}

// IsEmpty reports whether f matches everything.
func (f *Filter) IsEmpty() bool { return f == nil || f.root == nil }

// Conjuncts returns the terms that every matching resource satisfies: the
// root term, or the terms directly under a root OpAnd. A store may use
// them to narrow a query through an index before evaluating the whole
// filter on what it reads.
func (f *Filter) Conjuncts() []*Expr {
	r := f.Root()
	switch {
	case r == nil:
		return nil
	case r.Op == OpAnd:
		var out []*Expr
		for _, a := range r.Args {
			if a.isTerm() {
				out = append(out, a)
			}
		}
		return out
	case r.isTerm():
		return []*Expr{r}
	}
	return nil
}

func (e *Expr) isTerm() bool { return e.Op != OpAnd && e.Op != OpOr && e.Op != OpNot }

// precedence orders the operators for printing: || < && < ! < terms.
func (e *Expr) precedence() int {
	switch e.Op {
	case OpOr:
		return 1
	case OpAnd:
		return 2
	case OpNot:
		return 3
	}
	return 4
}

// write prints e in canonical form, parenthesising only where needed.
func (e *Expr) write(b *strings.Builder) {
	sub := func(a *Expr, min int) {
		if a.precedence() < min {
			b.WriteByte('(')
			a.write(b)
			b.WriteByte(')')
			return
		}
		a.write(b)
	}
	switch e.Op {
	case OpAnd, OpOr:
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(" " + string(e.Op) + " ")
			}
			sub(a, e.precedence()+1)
		}
	case OpNot:
		b.WriteByte('!')
		switch a := e.Args[0]; a.Op {
		case OpExists, OpStartsWith, OpEndsWith, OpContains:
			a.write(b)
		default: // !(data.x == 1) reads better than !data.x == 1
			sub(a, 5)
		}
	case OpIn:
		b.WriteString(e.Field.String() + " in [")
		for i, v := range e.Values {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(v.String())
		}
		b.WriteByte(']')
	case OpExists:
		b.WriteString("exists(" + e.Field.String() + ")")
	case OpStartsWith, OpEndsWith, OpContains:
		b.WriteString(string(e.Op) + "(" + e.Field.String() + ", " + e.Values[0].String() + ")")
	default:
		b.WriteString(e.Field.String() + " " + string(e.Op) + " " + e.Values[0].String())
	}
}

// quote writes s as a double-quoted string with the escapes the filter
// language reads (JSON's).
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\t':
			b.WriteString(`\t`)
		case c == '\r':
			b.WriteString(`\r`)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[c>>4])
			b.WriteByte("0123456789abcdef"[c&15])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return !isKeyword(s)
}

func isKeyword(s string) bool {
	switch s {
	case "true", "false", "null", "in":
		return true
	}
	return false
}
