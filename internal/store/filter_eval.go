package store

import (
	"encoding/json"
	"strings"
	"time"
)

// Doc is a resource as a filter reads it: its data is decoded once, on the
// first lookup, however many filters are evaluated over it. A Doc is not
// safe for concurrent use.
type Doc struct {
	r      *Resource
	data   map[string]any
	parsed bool
}

// NewDoc returns the Doc of r, which must not change while the Doc is used.
func NewDoc(r *Resource) *Doc { return &Doc{r: r} }

// Matches reports whether the resource r satisfies f (a nil or empty
// filter matches everything).
func (f *Filter) Matches(d *Doc) bool {
	r := f.Root()
	return r == nil || r.eval(d)
}

// lookup returns the value of field f in d: for data a decoded JSON value
// (string, float64, bool, nil for null, map[string]any, []any), a string
// for labels and id, a float64 for revision, a time.Time for the times.
// ok is false when the field is absent.
func (d *Doc) lookup(f Field) (any, bool) {
	switch f.Root {
	case RootID:
		return d.r.ID, true
	case RootRevision:
		return float64(d.r.Revision), true
	case RootCreatedAt:
		return d.r.CreatedAt, true
	case RootUpdatedAt:
		return d.r.UpdatedAt, true
	case RootLabels:
		v, ok := d.r.Labels[f.Path[0]]
		return v, ok
	}
	if !d.parsed {
		d.parsed = true
		_ = json.Unmarshal(d.r.Data, &d.data) // data is a JSON object by construction; a defect leaves it empty
	}
	var cur any = d.data
	for _, seg := range f.Path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func (e *Expr) eval(d *Doc) bool {
	switch e.Op {
	case OpAnd:
		for _, a := range e.Args {
			if !a.eval(d) {
				return false
			}
		}
		return true
	case OpOr:
		for _, a := range e.Args {
			if a.eval(d) {
				return true
			}
		}
		return false
	case OpNot:
		return !e.Args[0].eval(d)
	}
	v, ok := d.lookup(e.Field)
	if e.Op == OpExists {
		return ok
	}
	if !ok {
		return e.Op == OpNe // a missing field equals nothing
	}
	switch e.Op {
	case OpEq:
		return equalValue(v, e.Values[0])
	case OpNe:
		return !equalValue(v, e.Values[0])
	case OpIn:
		for _, x := range e.Values {
			if equalValue(v, x) {
				return true
			}
		}
		return false
	case OpStartsWith:
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, e.Values[0].Str)
	case OpEndsWith:
		s, ok := v.(string)
		return ok && strings.HasSuffix(s, e.Values[0].Str)
	case OpContains:
		switch x := v.(type) {
		case string:
			return e.Values[0].Kind == KindString && strings.Contains(x, e.Values[0].Str)
		case []any:
			for _, el := range x {
				if equalValue(el, e.Values[0]) {
					return true
				}
			}
		}
		return false
	}
	c, ok := compareValue(v, e.Values[0])
	if !ok {
		return false
	}
	switch e.Op {
	case OpLt:
		return c < 0
	case OpLe:
		return c <= 0
	case OpGt:
		return c > 0
	}
	return c >= 0 // OpGe
}

// equalValue reports whether the looked-up value v equals literal x: same
// type and same value (objects and arrays equal no literal).
func equalValue(v any, x Value) bool {
	switch t := v.(type) {
	case string:
		return x.Kind == KindString && t == x.Str
	case float64:
		return x.Kind == KindNumber && t == x.Num
	case bool:
		return x.Kind == KindBool && t == x.Bool
	case nil:
		return x.Kind == KindNull
	case time.Time:
		return x.Kind == KindTime && t.Equal(x.Time)
	}
	return false
}

// compareValue orders v against literal x when both are numbers, strings
// (byte order) or times; ok is false for any other pair.
func compareValue(v any, x Value) (int, bool) {
	switch t := v.(type) {
	case float64:
		if x.Kind != KindNumber {
			return 0, false
		}
		switch {
		case t < x.Num:
			return -1, true
		case t > x.Num:
			return 1, true
		}
		return 0, true
	case string:
		if x.Kind != KindString {
			return 0, false
		}
		return strings.Compare(t, x.Str), true
	case time.Time:
		if x.Kind != KindTime {
			return 0, false
		}
		return t.Compare(x.Time), true
	}
	return 0, false
}

// Predicate is what a filtered subscription selects: a label selector and
// a filter, both of which must hold. The zero value matches everything.
type Predicate struct {
	Selector Selector
	Filter   *Filter
}

// IsZero reports whether p matches everything.
func (p Predicate) IsZero() bool { return len(p.Selector) == 0 && p.Filter.IsEmpty() }

// Matches reports whether the resource d reads passes p.
func (p Predicate) Matches(d *Doc) bool {
	return p.Selector.Matches(d.r.Labels) && p.Filter.Matches(d)
}
