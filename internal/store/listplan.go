package store

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// DefaultMaxScan is how many resources a list request examines, when
// ListOptions.MaxScan is 0, before it gives up with CodeNeedsIndex.
const DefaultMaxScan = 10000

// The SQL stores (sqlite, postgres) share the planning of a list query:
// which declared index serves it, which filter terms the index evaluates,
// the order columns and the keyset that resumes a page. A ListDialect says
// how one of them spells each part.

// ListDialect spells the parts of a list query for one SQL store.
type ListDialect interface {
	// Field returns the SQL columns of a filter field.
	Field(f Field) SQLField
	// Placeholder returns the n-th (1-based) bind parameter.
	Placeholder(n int) string
	// Nulls returns the clause placing NULLs first when ascending and last
	// when descending ("" where that is the default).
	Nulls(desc bool) string
	// IndexHint returns what follows the table name to make the query use
	// the named index ("" when the store cannot say).
	IndexHint(name string) string
}

// SQLField is how a store sorts, indexes and compares one field: Cols are
// its order (and index) columns. For data fields Rank (one of Cols) is the
// type rank of the value (0 missing, 1 null, 2 false, 3 true, 4 number,
// 5 string, 6 array or object) and Value gives the column holding values
// of one literal kind; other fields have one column, which is Value's
// answer for every kind, and no Rank.
type SQLField struct {
	Cols []ListCol
	Rank string
	// Value returns the column comparing with literals of kind k, "" when
	// the field cannot be compared with them in SQL.
	Value func(k ValueKind) string
	// Bind converts a literal for binding.
	Bind func(v Value) any
}

// ListCol is one order column: its expression and whether it can be NULL.
type ListCol struct {
	Expr     string
	Nullable bool
}

// The type ranks of data values (SQLField.Rank).
const (
	RankMissing = 0
	RankNull    = 1
	RankFalse   = 2
	RankTrue    = 3
	RankNumber  = 4
	RankString  = 5
	RankOther   = 6
)

// rankOf returns the rank of a literal's value.
func rankOf(v Value) int {
	switch v.Kind {
	case KindNull:
		return RankNull
	case KindBool:
		if v.Bool {
			return RankTrue
		}
		return RankFalse
	case KindNumber:
		return RankNumber
	}
	return RankString
}

// IndexName returns the SQL name of a collection's declared index: a hash
// of the collection and the fields, short enough for every store.
func IndexName(collection string, ix Index) string {
	h := sha256.Sum256([]byte(collection + "\x00" + strings.Join(ix.Fields, "\x00")))
	return "tix_" + hex.EncodeToString(h[:10])
}

// IndexSQL returns the statement creating collection's index ix (a
// partial index over the collection's rows, ending with the ID).
func IndexSQL(d ListDialect, collection string, ix Index) (string, error) {
	var cols []string
	for _, name := range ix.Fields {
		f, err := IndexField(name)
		if err != nil {
			return "", err
		}
		for _, c := range d.Field(f).Cols {
			cols = append(cols, "("+c.Expr+")"+d.Nulls(false))
		}
	}
	cols = append(cols, "id")
	return fmt.Sprintf(`CREATE INDEX IF NOT EXISTS "%s" ON resources (%s) WHERE collection = %s`,
		IndexName(collection, ix), strings.Join(cols, ", "), sqlString(collection)), nil
}

// IndexStatements returns the statements that make collection name's SQL
// indexes match ixs when they matched old: drops for the indexes of old
// that ixs no longer lists, and creates (IndexSQL, idempotent) for every
// index of ixs. Errors: an index field IndexField refuses.
func IndexStatements(d ListDialect, name string, old, ixs []Index) (drops, creates []string, err error) {
	keep := map[string]bool{}
	for _, ix := range ixs {
		keep[IndexName(name, ix)] = true
		q, err := IndexSQL(d, name, ix)
		if err != nil {
			return nil, nil, err
		}
		creates = append(creates, q)
	}
	for _, ix := range old {
		if n := IndexName(name, ix); !keep[n] {
			drops = append(drops, `DROP INDEX IF EXISTS "`+n+`"`)
		}
	}
	return drops, creates, nil
}

func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// ListQuery is a planned list query: build each batch with Batch.
type ListQuery struct {
	d     ListDialect
	from  string
	where string
	args  []any
	order []orderCol
	// Index is the name of the declared index the query reads ("" for
	// the primary key).
	Index string
	// CheckSize is set when the store must sort the candidates itself
	// (no index gives the order): the caller first counts them with
	// CountSQL and refuses more than its scan budget.
	CheckSize bool
	// hint names the fields to index, for the error that refuses a query.
	hint []string
	// fixed are the columns the pushed terms hold to one value: they stay
	// out of ORDER BY (SQLite sorts otherwise) but not out of the keyset.
	fixed map[string]bool
	// indexFields are the fields of the index read (nil for none).
	indexFields []string
	// Fallback is the primary-key plan, when the index narrows the filter
	// but the primary key gives the order: if the index matches too many
	// resources to sort, scanning in order may still fill the page.
	Fallback *ListQuery
}

type orderCol struct {
	ListCol
	desc bool
}

// OrderColumns returns how many order values each row carries before the
// ID (Page.LastValues' length).
func (q *ListQuery) OrderColumns() int { return len(q.order) - 1 }

// IndexAdvice names the fields whose index would serve the query.
func (q *ListQuery) IndexAdvice() string { return strings.Join(q.hint, ", ") }

// sqlb accumulates bind arguments.
type sqlb struct {
	d    ListDialect
	args []any
}

func (b *sqlb) arg(v any) string {
	b.args = append(b.args, v)
	return b.d.Placeholder(len(b.args))
}

// PlanList plans the list of collection c for opts: it picks the declared
// index that serves the filter's conjuncts or the order best (equality
// terms on its leading fields, then a range or the order on the next) and
// pushes those terms into SQL. Every row the query returns must still be
// checked against the whole filter. Errors: CodeInvalid when an order key
// cannot be sorted on (a data path with characters other than letters,
// digits, '_' and '-').
func PlanList(d ListDialect, c Collection, opts ListOptions) (*ListQuery, error) {
	keys := opts.OrderBy
	for _, k := range keys {
		if err := CheckIndexField(k.Field); err != nil {
			return nil, Errorf(CodeInvalid, "cannot order by %s: %s", k.Field, ErrorMessage(err))
		}
	}
	q := &ListQuery{d: d}
	b := &sqlb{d: d}
	conj := opts.Filter.Conjuncts()
	best, bestScore, pushed, ordered := -1, 0, []*Expr(nil), false
	for i, ix := range c.Indexes {
		score, terms, gives := scoreIndex(ix, conj, keys)
		if score > bestScore {
			best, bestScore, pushed, ordered = i, score, terms, gives
		}
	}
	var where []string
	where = append(where, "collection = "+sqlString(c.Name))
	q.from = "resources"
	if best >= 0 {
		q.Index = IndexName(c.Name, c.Indexes[best])
		q.indexFields = c.Indexes[best].Fields
		q.from += d.IndexHint(q.Index)
		q.fixed = map[string]bool{}
		for _, e := range pushed {
			if s, fixed, ok := termSQL(b, e); ok {
				where = append(where, s)
				for _, f := range fixed {
					q.fixed[f] = true
				}
			}
		}
	} else {
		// the primary key gives the ID order, either way
		ordered = len(keys) == 0 || len(keys) == 1 && keys[0].Field.Root == RootID
	}
	q.CheckSize = !ordered
	if best >= 0 && !ordered && (len(keys) == 0 || len(keys) == 1 && keys[0].Field.Root == RootID) {
		pk := c
		pk.Indexes = nil
		fb, err := PlanList(d, pk, opts)
		if err != nil {
			return nil, err
		}
		q.Fallback = fb
	}
	last := false
	for _, k := range keys {
		for _, col := range d.Field(k.Field).Cols {
			q.order = append(q.order, orderCol{col, k.Desc})
		}
		last = k.Desc
	}
	if len(keys) == 0 || keys[len(keys)-1].Field.Root != RootID {
		q.order = append(q.order, orderCol{ListCol{Expr: "id"}, last})
	}
	q.where = strings.Join(where, " AND ")
	q.args = b.args
	for _, k := range keys {
		q.hint = append(q.hint, k.Field.String())
	}
	if len(q.hint) == 0 {
		for _, e := range conj {
			q.hint = append(q.hint, e.Field.String())
		}
	}
	return q, nil
}

// scoreIndex rates how well ix serves conjuncts conj and order keys: two
// points per leading field fixed by equality, one for a range on the next
// field, one when the index gives the order. It returns the terms the
// index evaluates and whether it gives the order.
func scoreIndex(ix Index, conj []*Expr, keys []OrderKey) (int, []*Expr, bool) {
	fields := make([]Field, 0, len(ix.Fields))
	for _, name := range ix.Fields {
		f, err := IndexField(name)
		if err != nil {
			return 0, nil, false
		}
		fields = append(fields, f)
	}
	score, j := 0, 0
	var terms []*Expr
	for ; j < len(fields); j++ {
		eq := false
		for _, e := range conj {
			if e.Field.Equal(fields[j]) && e.Op == OpEq && pushable(e) {
				terms, eq = append(terms, e), true
				break
			}
		}
		if !eq {
			break
		}
		score += 2
	}
	if j < len(fields) {
		ranged := false
		for _, e := range conj {
			if e.Field.Equal(fields[j]) && e.Op != OpEq && pushable(e) {
				terms, ranged = append(terms, e), true
			}
		}
		if ranged {
			score++
		}
	}
	// The order the index gives after the fixed fields: its next fields,
	// then the ID, in one direction.
	gives := false
	user := keys
	if n := len(user); n > 0 && user[n-1].Field.Root == RootID {
		user = user[:n-1]
	}
	if j+len(user) <= len(fields) && (len(user) > 0 || j == len(fields)) {
		gives = true
		for i, k := range user {
			if !k.Field.Equal(fields[j+i]) || k.Desc != keys[0].Desc {
				gives = false
			}
		}
		if gives && len(user) > 0 && j+len(user) < len(fields) {
			gives = false // the index orders ties by its further fields, not by ID
		}
		if n := len(keys); gives && n > 0 && keys[n-1].Field.Root == RootID && keys[n-1].Desc != keys[0].Desc {
			gives = false
		}
	}
	if gives && len(user) > 0 {
		score++
	}
	return score, terms, gives
}

// pushable reports whether SQL can evaluate term e exactly as a superset
// filter through the field's columns.
func pushable(e *Expr) bool {
	if CheckIndexField(e.Field) != nil {
		return false
	}
	switch e.Op {
	case OpEq, OpLt, OpLe, OpGt, OpGe:
		return true
	case OpIn:
		for _, v := range e.Values[1:] {
			if v.Kind != e.Values[0].Kind {
				return false
			}
		}
		return true
	case OpStartsWith:
		_, ok := prefixEnd(e.Values[0].Str)
		return ok
	}
	return false
}

// prefixEnd returns the least string greater than every string starting
// with p, when it is simple (p ends with an ASCII byte below '~').
func prefixEnd(p string) (string, bool) {
	if p == "" || p[len(p)-1] >= 0x7e {
		return "", false
	}
	return p[:len(p)-1] + string(p[len(p)-1]+1), true
}

// termSQL returns the SQL form of a pushable term and the columns it
// holds to one value.
func termSQL(b *sqlb, e *Expr) (string, []string, bool) {
	sf := b.d.Field(e.Field)
	kind := e.Values[0].Kind
	col := sf.Value(kind)
	var rank string
	var fixed []string
	if sf.Rank != "" {
		rank = fmt.Sprintf("%s = %d", sf.Rank, rankOf(e.Values[0]))
		if kind == KindNull || kind == KindBool {
			if e.Op == OpIn {
				var rs []string
				for _, v := range e.Values {
					rs = append(rs, fmt.Sprint(rankOf(v)))
				}
				return sf.Rank + " IN (" + strings.Join(rs, ", ") + ")", nil, true
			}
			return rank, []string{sf.Rank}, e.Op == OpEq
		}
		fixed = append(fixed, sf.Rank)
	}
	if col == "" {
		return "", nil, false
	}
	if e.Op == OpEq {
		fixed = append(fixed, col)
	}
	var cond string
	switch e.Op {
	case OpIn:
		var ps []string
		for _, v := range e.Values {
			ps = append(ps, b.arg(sf.Bind(v)))
		}
		cond = col + " IN (" + strings.Join(ps, ", ") + ")"
	case OpStartsWith:
		end, _ := prefixEnd(e.Values[0].Str)
		cond = fmt.Sprintf("%s >= %s AND %s < %s", col, b.arg(e.Values[0].Str), col, b.arg(end))
	default:
		op := string(e.Op)
		if e.Op == OpEq {
			op = "="
		}
		cond = fmt.Sprintf("%s %s %s", col, op, b.arg(sf.Bind(e.Values[0])))
	}
	if rank != "" {
		cond = rank + " AND " + cond
	}
	return cond, fixed, true
}

// CountSQL returns the query counting the candidates, up to max+1.
func (q *ListQuery) CountSQL(max int) (string, []any) {
	b := &sqlb{d: q.d, args: append([]any(nil), q.args...)}
	lim := b.arg(max + 1)
	return fmt.Sprintf("SELECT count(*) FROM (SELECT 1 FROM %s WHERE %s LIMIT %s) AS c", q.from, q.where, lim), b.args
}

// Batch returns the query reading up to limit rows after the row with
// order values vals and ID after (none for the first batch: after == ""
// and vals nil). cols are the columns to select; the query selects the
// order values after them (OrderColumns of them).
func (q *ListQuery) Batch(cols, after string, vals []any, limit int) (string, []any) {
	b := &sqlb{d: q.d, args: append([]any(nil), q.args...)}
	where := q.where
	if after != "" {
		where += " AND " + q.keyset(b, append(append([]any(nil), vals...), after))
	}
	var sel, ord []string
	for i, c := range q.order {
		if i < len(q.order)-1 {
			sel = append(sel, c.Expr)
		}
		if q.fixed[c.Expr] {
			continue
		}
		dir := " ASC"
		if c.desc {
			dir = " DESC"
		}
		ord = append(ord, c.Expr+dir+q.d.Nulls(c.desc))
	}
	extra := ""
	if len(sel) > 0 {
		extra = ", " + strings.Join(sel, ", ")
	}
	lim := b.arg(limit)
	return fmt.Sprintf("SELECT %s%s FROM %s WHERE %s ORDER BY %s LIMIT %s",
		cols, extra, q.from, where, strings.Join(ord, ", "), lim), b.args
}

// keyset returns the condition selecting the rows after the one whose
// order values are vals (the ID last): lexicographic over the order
// columns, NULL first when ascending and last when descending. A leading
// row-value bound lets an index start the scan at the position.
func (q *ListQuery) keyset(b *sqlb, vals []any) string {
	// The bound (first, so that its arguments come first): the longest
	// prefix of columns in the first column's direction with known
	// values (and, descending, never NULL).
	n := 0
	for n < len(q.order) && q.order[n].desc == q.order[0].desc && vals[n] != nil && !(q.order[0].desc && q.order[n].Nullable) {
		n++
	}
	bound := ""
	if n > 0 {
		var l, r []string
		for i := 0; i < n; i++ {
			l = append(l, q.order[i].Expr)
			r = append(r, b.arg(vals[i]))
		}
		op := ">="
		if q.order[0].desc {
			op = "<="
		}
		if n == 1 {
			bound = fmt.Sprintf("%s %s %s AND ", l[0], op, r[0])
		} else {
			bound = fmt.Sprintf("(%s) %s (%s) AND ", strings.Join(l, ", "), op, strings.Join(r, ", "))
		}
	}
	var ors []string
	for i, c := range q.order {
		if c.desc && vals[i] == nil {
			continue // nothing follows NULL when descending
		}
		var ands []string
		for j := 0; j < i; j++ {
			if vals[j] == nil {
				ands = append(ands, q.order[j].Expr+" IS NULL")
			} else {
				ands = append(ands, q.order[j].Expr+" = "+b.arg(vals[j]))
			}
		}
		switch {
		case !c.desc && vals[i] == nil:
			ands = append(ands, c.Expr+" IS NOT NULL")
		case !c.desc:
			ands = append(ands, c.Expr+" > "+b.arg(vals[i]))
		case c.Nullable:
			ands = append(ands, "("+c.Expr+" < "+b.arg(vals[i])+" OR "+c.Expr+" IS NULL)")
		default:
			ands = append(ands, c.Expr+" < "+b.arg(vals[i]))
		}
		ors = append(ors, "("+strings.Join(ands, " AND ")+")")
	}
	if len(ors) == 0 {
		return bound + "(1 = 0)"
	}
	return bound + "(" + strings.Join(ors, " OR ") + ")"
}

// CheckIndexField reports whether f can be indexed and sorted on: data
// paths of segments of letters, digits, '_' and '-' (at most 64 bytes
// each, MaxFieldSegments of them; as CheckIndexes), any label, or a
// metadata field. Errors:
// CodeInvalid saying why.
func CheckIndexField(f Field) error {
	if f.Root != RootData {
		return nil
	}
	if len(f.Path) > MaxFieldSegments {
		return Errorf(CodeInvalid, "%s is deeper than %d members", f, MaxFieldSegments)
	}
	for _, s := range f.Path {
		if !validSegment(s) {
			return Errorf(CodeInvalid, "member %q is not 1 to 64 letters, digits, '_' or '-'", s)
		}
	}
	return nil
}
