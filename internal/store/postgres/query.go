package postgres

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/store"
)

// dialect spells list queries for PostgreSQL: data fields sort by a type
// rank, then a float8 column for numbers and a "C"-collated text column
// for strings (so strings sort in byte order, as in the SQLite store,
// whatever the database's collation); the declared indexes are expression
// indexes over the same columns, NULLs first.
type dialect struct{}

var _ store.ListDialect = dialect{}

// jsonPath returns a text-array path literal; members never hold quotes,
// commas or braces (store.CheckIndexField).
func jsonPath(path []string) string { return "'{" + strings.Join(path, ",") + "}'" }

func (dialect) Field(f store.Field) store.SQLField {
	one := func(expr string, nullable bool) store.SQLField {
		return store.SQLField{Cols: []store.ListCol{{Expr: expr, Nullable: nullable}},
			Value: func(store.ValueKind) string { return expr }, Bind: bindPlain}
	}
	switch f.Root {
	case store.RootID:
		return one("id", false)
	case store.RootRevision:
		return one("revision", false)
	case store.RootCreatedAt:
		return one("created_at", false)
	case store.RootUpdatedAt:
		return one("updated_at", false)
	case store.RootLabels:
		return one(`((labels ->> '`+f.Path[0]+`') COLLATE "C")`, true)
	}
	e := "(data::jsonb #> " + jsonPath(f.Path) + ")"
	rank := "(CASE jsonb_typeof(" + e + ") WHEN 'null' THEN 1 WHEN 'boolean' THEN (CASE WHEN " + e + " = 'true'::jsonb THEN 3 ELSE 2 END)" +
		" WHEN 'number' THEN 4 WHEN 'string' THEN 5 WHEN 'array' THEN 6 WHEN 'object' THEN 6 ELSE 0 END)"
	num := "(CASE WHEN jsonb_typeof(" + e + ") = 'number' THEN (" + e + ")::float8 END)"
	str := "((CASE jsonb_typeof(" + e + ") WHEN 'string' THEN " + e + " #>> '{}' WHEN 'array' THEN (" + e + ")::text" +
		" WHEN 'object' THEN (" + e + `)::text END) COLLATE "C")`
	return store.SQLField{
		Cols: []store.ListCol{{Expr: rank}, {Expr: num, Nullable: true}, {Expr: str, Nullable: true}},
		Rank: rank,
		Value: func(k store.ValueKind) string {
			switch k {
			case store.KindNumber:
				return num
			case store.KindString:
				return str
			}
			return ""
		},
		Bind: bindPlain,
	}
}

func bindPlain(v store.Value) any {
	switch v.Kind {
	case store.KindNumber:
		return v.Num
	case store.KindTime:
		return v.Time
	}
	return v.Str
}

func (dialect) Placeholder(n int) string { return "$" + strconv.Itoa(n) }

func (dialect) Nulls(desc bool) string {
	if desc {
		return " NULLS LAST"
	}
	return " NULLS FIRST"
}

func (dialect) IndexHint(string) string { return "" }

// listSource runs list queries in one read transaction.
type listSource struct {
	ctx context.Context
	tx  pgx.Tx
}

var _ store.ListSource = listSource{}

func (listSource) Columns() string { return resourceCols }

// withValues scans a row's resource columns (scanResource) and then the
// order values into vals.
type withValues struct {
	row  pgx.Row
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
	err := l.tx.QueryRow(l.ctx, query, args...).Scan(&n)
	return n, err
}

func (l listSource) Rows(query string, args []any, n int, fn func(store.Resource, []any) error) error {
	rows, err := l.tx.Query(l.ctx, query, args...)
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
			switch t := v.(type) {
			case int32:
				vals[i] = int64(t)
			case time.Time:
				vals[i] = t.UTC()
			}
		}
		if err := fn(r, vals); err != nil {
			rows.Close()
			return err
		}
	}
	return rows.Err()
}

// syncIndexes makes the SQL indexes of collection name match ixs inside
// the caller's write transaction: it drops those of old that ixs no longer
// lists and creates the new ones. It serves CreateCollection (the
// collection is empty: the builds are instant) and DeleteCollection (ixs
// nil); UpdateCollection drops inside its transaction (dropIndexes) and
// builds after it (buildIndexes), so that writers are never blocked by a
// build over stored resources.
func syncIndexes(ctx context.Context, tx pgx.Tx, name string, old, ixs []store.Index) error {
	drops, creates, err := store.IndexStatements(dialect{}, name, old, ixs)
	if err != nil {
		return err
	}
	return execAll(ctx, tx, append(drops, creates...))
}

// dropRemovedIndexes drops the SQL indexes of old that ixs no longer lists.
func dropRemovedIndexes(ctx context.Context, tx pgx.Tx, name string, old, ixs []store.Index) error {
	drops, _, err := store.IndexStatements(dialect{}, name, old, ixs)
	if err != nil {
		return err
	}
	return execAll(ctx, tx, drops)
}

func execAll(ctx context.Context, tx pgx.Tx, stmts []string) error {
	for _, q := range stmts {
		if _, err := tx.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// buildIndexes makes sure every index of ixs exists and is valid, building
// the missing ones with CREATE INDEX CONCURRENTLY: writes to resources
// go on while it runs (it waits for the transactions already running to
// end, and takes no lock that blocks them). An index a failed build left
// invalid is dropped and built again, so repeating the collection change
// repairs it. Errors: the database's (the collection change is then
// committed, without the index).
func (s *Store) buildIndexes(ctx context.Context, name string, ixs []store.Index) error {
	for _, ix := range ixs {
		n := store.IndexName(name, ix)
		var valid *bool
		if err := s.pool.QueryRow(ctx, `SELECT i.indisvalid FROM pg_index i WHERE i.indexrelid = to_regclass($1)`, n).Scan(&valid); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if valid != nil && *valid {
			continue
		}
		if valid != nil {
			if _, err := s.pool.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS "`+n+`"`); err != nil {
				return err
			}
		}
		q, err := store.IndexSQL(dialect{}, name, ix)
		if err != nil {
			return err
		}
		if _, err := s.pool.Exec(ctx, strings.Replace(q, "CREATE INDEX IF NOT EXISTS", "CREATE INDEX CONCURRENTLY IF NOT EXISTS", 1)); err != nil {
			return err
		}
	}
	return nil
}
