package postgres

import (
	"context"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/store"
)

// TestListUsesIndexes checks with EXPLAIN that, on an analysed table and
// without the enable_seqscan hint ListResources adds, PostgreSQL's planner
// reads the declared expression indexes for indexed equalities, ranges and
// orders (the planned one or another declared one it finds cheaper).
func TestListUsesIndexes(t *testing.T) {
	s := openDSN(t, newDatabase(t), Options{})
	ctx := context.Background()
	status, score := store.Index{Fields: []string{"data.status", "data.score"}}, store.Index{Fields: []string{"data.score"}}
	c := store.Collection{Name: "ex", Indexes: []store.Index{status, score}}
	if _, err := s.CreateCollection(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO resources (collection, id, data, labels, revision, created_at, updated_at)
		SELECT 'ex', 'r' || lpad(i::text, 6, '0'),
			json_build_object('status', CASE WHEN i % 50 = 0 THEN 'paid' ELSE 'new' END, 'score', i, 'qty', i % 7),
			'{}', 1, now(), now() FROM generate_series(0, 19999) AS i`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `ANALYZE resources`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		filter, order string
		index         store.Index
	}{
		{`data.status == "paid"`, "", status},
		{`data.status == "paid"`, "data.score desc", status},
		{`data.status == "paid" && data.score >= 100 && data.score < 900`, "data.score", status},
		{`data.score > 19900`, "", score},
		{``, "data.score desc", score},
	} {
		f, err := store.ParseFilter(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := store.ParseOrderBy(tc.order)
		if err != nil {
			t.Fatal(err)
		}
		q, err := store.PlanList(dialect{}, c, store.ListOptions{Collection: "ex", Filter: f, OrderBy: keys})
		if err != nil {
			t.Fatal(err)
		}
		if want := store.IndexName("ex", tc.index); q.Index != want {
			t.Errorf("%q / %q: planned index %q, want %q", tc.filter, tc.order, q.Index, want)
			continue
		}
		sqlText, args := q.Batch(listSource{}.Columns(), "", nil, 51)
		rows, err := s.pool.Query(ctx, "EXPLAIN "+sqlText, args...)
		if err != nil {
			t.Fatalf("explain %s: %v", sqlText, err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		rows.Close()
		// The planner may prefer another declared index than ours (it
		// costs them with statistics); it must read one of them.
		if p := plan.String(); !strings.Contains(p, "Index Scan using tix_") && !strings.Contains(p, "Index Scan Backward using tix_") &&
			!strings.Contains(p, "Bitmap Index Scan on tix_") || strings.Contains(p, "Seq Scan") {
			t.Errorf("%q / %q: plan reads no declared index:\n%s", tc.filter, tc.order, p)
		}
	}
}

// TestIndexBuiltAfterUpdate checks that an index added by UpdateCollection
// exists and is valid when the call returns (built concurrently after the
// change committed), and that a removed one is gone.
func TestIndexBuiltAfterUpdate(t *testing.T) {
	s := openDSN(t, newDatabase(t), Options{})
	ctx := context.Background()
	c, err := s.CreateCollection(ctx, store.Collection{Name: "ib"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO resources (collection, id, data, labels, revision, created_at, updated_at)
		SELECT 'ib', 'r' || i, json_build_object('n', i), '{}', 1, now(), now() FROM generate_series(1, 5000) AS i`); err != nil {
		t.Fatal(err)
	}
	ix := store.Index{Fields: []string{"data.n"}}
	valid := func() *bool {
		var v *bool
		if err := s.pool.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)`, store.IndexName("ib", ix)).Scan(&v); err != nil && err.Error() != "no rows in result set" {
			t.Fatal(err)
		}
		return v
	}
	c.Indexes = []store.Index{ix}
	if _, err := s.UpdateCollection(ctx, c, store.CollectionCondition{}); err != nil {
		t.Fatal(err)
	}
	if v := valid(); v == nil || !*v {
		t.Fatalf("index after the update: valid = %v", v)
	}
	c.Indexes = nil
	if _, err := s.UpdateCollection(ctx, c, store.CollectionCondition{}); err != nil {
		t.Fatal(err)
	}
	if v := valid(); v != nil {
		t.Fatalf("index still there after its removal (valid = %v)", *v)
	}
}
