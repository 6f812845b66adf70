package sqlite

import (
	"context"
	"database/sql"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// dialect spells list queries for SQLite: data fields sort by a type rank
// and json_extract's value (numbers numerically, text in byte order); the
// declared indexes are expression indexes over the same two columns.
type dialect struct{}

var _ store.ListDialect = dialect{}

// jsonPath returns the SQLite JSON path of a data or label path, every
// member quoted ($."a"."b"); members never hold quotes (CheckIndexField,
// ValidLabelKey).
func jsonPath(path []string) string {
	var b strings.Builder
	b.WriteString("$")
	for _, p := range path {
		b.WriteString(`."` + p + `"`)
	}
	return "'" + b.String() + "'"
}

func (dialect) Field(f store.Field) store.SQLField {
	one := func(expr string, nullable bool, bind func(store.Value) any) store.SQLField {
		return store.SQLField{Cols: []store.ListCol{{Expr: expr, Nullable: nullable}},
			Value: func(store.ValueKind) string { return expr }, Bind: bind}
	}
	plain := func(v store.Value) any {
		switch v.Kind {
		case store.KindNumber:
			return v.Num
		case store.KindTime:
			return toMicros(v.Time)
		}
		return v.Str
	}
	switch f.Root {
	case store.RootID:
		return one("id", false, plain)
	case store.RootRevision:
		return one("revision", false, func(v store.Value) any { return int64(v.Num) })
	case store.RootCreatedAt:
		return one("created_at", false, plain)
	case store.RootUpdatedAt:
		return one("updated_at", false, plain)
	case store.RootLabels:
		return one("json_extract(labels, "+jsonPath(f.Path)+")", true, plain)
	}
	p := jsonPath(f.Path)
	rank := "(CASE json_type(data, " + p + ") WHEN 'null' THEN 1 WHEN 'false' THEN 2 WHEN 'true' THEN 3" +
		" WHEN 'integer' THEN 4 WHEN 'real' THEN 4 WHEN 'text' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 6 ELSE 0 END)"
	val := "json_extract(data, " + p + ")"
	return store.SQLField{
		Cols: []store.ListCol{{Expr: rank}, {Expr: val, Nullable: true}},
		Rank: rank,
		Value: func(k store.ValueKind) string {
			if k == store.KindNumber || k == store.KindString {
				return val
			}
			return ""
		},
		Bind: plain,
	}
}

func (dialect) Placeholder(int) string { return "?" }

func (dialect) Nulls(bool) string { return "" } // SQLite's NULLs are first ascending, last descending

func (dialect) IndexHint(name string) string { return ` INDEXED BY "` + name + `"` }

// listSource runs list queries in one read transaction.
type listSource struct {
	ctx context.Context
	tx  *sql.Tx
}

var _ store.ListSource = listSource{}

func (listSource) Columns() string { return resourceCols }

// withValues scans a row's resource columns (scanResource) and then the
// order values into vals.
type withValues struct {
	row  interface{ Scan(...any) error }
	vals []any
}

func (w withValues) Scan(dest ...any) error {
	for i := range w.vals {
		dest = append(dest, &w.vals[i])
	}
	return w.row.Scan(dest...)
}

func (l listSource) Count(query string, args []any) (int, error) {
	var n int
	err := l.tx.QueryRowContext(l.ctx, query, args...).Scan(&n)
	return n, err
}

func (l listSource) Rows(query string, args []any, n int, fn func(store.Resource, []any) error) error {
	rows, err := l.tx.QueryContext(l.ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]any, n)
		r, err := scanResource(withValues{rows, vals})
		if err != nil {
			return err
		}
		for i, v := range vals {
			if b, ok := v.([]byte); ok {
				vals[i] = string(b)
			}
		}
		if err := fn(r, vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// syncIndexes makes the SQL indexes of collection name match ixs: it drops
// those of old that ixs no longer lists and creates the new ones, inside
// the caller's write transaction (CreateCollection, UpdateCollection,
// DeleteCollection). Building an index reads the whole collection while
// holding the writer (see docs/queries.md for the cost); an error undoes
// the whole write.
func syncIndexes(ctx context.Context, tx *sql.Tx, name string, old, ixs []store.Index) error {
	drops, creates, err := store.IndexStatements(dialect{}, name, old, ixs)
	if err != nil {
		return err
	}
	for _, q := range append(drops, creates...) {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
	}
	return nil
}
