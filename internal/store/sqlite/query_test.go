package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// seedExplain creates collection ex with the given indexes and n rows
// written straight into the table (status "paid" for one in 50, score i).
func seedExplain(t testing.TB, s *Store, n int, ixs ...store.Index) {
	t.Helper()
	ctx := context.Background()
	if _, err := s.CreateCollection(ctx, store.Collection{Name: "ex", Indexes: ixs}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i+1 FROM n WHERE i < ?)
		INSERT INTO resources (collection, id, data, labels, revision, created_at, updated_at)
		SELECT 'ex', printf('r%06d', i), json_object('status', CASE i % 50 WHEN 0 THEN 'paid' ELSE 'new' END, 'score', i, 'qty', i % 7),
			'{}', 1, i, i FROM n`, n-1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
}

// TestListUsesIndexes checks with EXPLAIN QUERY PLAN that list queries
// with an indexed equality, range or order search the declared index
// instead of scanning, and need no sort when the index gives the order.
func TestListUsesIndexes(t *testing.T) {
	s := openAt(t, filepath.Join(t.TempDir(), "tandem.db"))
	status, score := store.Index{Fields: []string{"data.status", "data.score"}}, store.Index{Fields: []string{"data.score"}}
	seedExplain(t, s, 5000, status, score)
	for _, tc := range []struct {
		filter, order string
		index         store.Index
		sorted        bool // the plan may sort (a temp b-tree)
	}{
		{`data.status == "paid"`, "", status, true},
		{`data.status == "paid"`, "data.score desc", status, false},
		{`data.status == "paid" && data.score >= 100 && data.score < 900`, "data.score", status, false},
		{`data.score > 4900`, "", score, true},
		{``, "data.score desc", score, false},
		{`data.qty == 3`, "data.score", score, false},
		{`data.status == "paid"`, "data.score", status, false},
		{`data.status == "paid" && data.score >= 100`, "data.score desc", status, false},
		{`data.status == "paid" && data.score >= 100`, "data.score", status, false},
	} {
		f, err := store.ParseFilter(tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := store.ParseOrderBy(tc.order)
		if err != nil {
			t.Fatal(err)
		}
		c := store.Collection{Name: "ex", Indexes: []store.Index{status, score}}
		q, err := store.PlanList(dialect{}, c, store.ListOptions{Collection: "ex", Filter: f, OrderBy: keys})
		if err != nil {
			t.Fatal(err)
		}
		if want := store.IndexName("ex", tc.index); q.Index != want {
			t.Errorf("%q / %q: planned index %q, want %q", tc.filter, tc.order, q.Index, want)
			continue
		}
		for _, after := range []string{"", "r000100"} {
			var vals []any
			if after != "" {
				vals = make([]any, q.OrderColumns())
				for i := range vals {
					vals[i] = int64(4)
				}
			}
			sqlText, args := q.Batch(resourceCols, after, vals, 51)
			plan := explain(t, s, sqlText, args)
			if !strings.Contains(plan, "USING INDEX "+q.Index) || strings.Contains(plan, "SCAN resources\n") {
				t.Errorf("%q / %q after %q: plan does not use %s:\n%s", tc.filter, tc.order, after, q.Index, plan)
			}
			if tc.filter != "" && !strings.Contains(plan, "SEARCH") && tc.order == "" {
				t.Errorf("%q: plan scans the whole index:\n%s", tc.filter, plan)
			}
			if !tc.sorted && strings.Contains(plan, "TEMP B-TREE") {
				t.Errorf("%q / %q: plan sorts although the index gives the order:\n%s", tc.filter, tc.order, plan)
			}
		}
	}
}

func explain(t *testing.T, s *Store, query string, args []any) string {
	t.Helper()
	rows, err := s.r.Query("EXPLAIN QUERY PLAN "+query, args...)
	if err != nil {
		t.Fatalf("explain %s: %v", query, err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	return b.String()
}

// BenchmarkListFiltered reads a page of 50 of a 100,000-resource
// collection through an index on data.status (one resource in 50 is
// "paid"), from the first page and from a page token deep in the result,
// and reports the latency percentiles.
func BenchmarkListFiltered(b *testing.B) {
	s := openAt(b, filepath.Join(b.TempDir(), "tandem.db"))
	seedExplain(b, s, 100000, store.Index{Fields: []string{"data.status"}}, store.Index{Fields: []string{"data.score"}})
	f, _ := store.ParseFilter(`data.status == "paid" && data.qty >= 0`)
	order, _ := store.ParseOrderBy("data.score desc")
	for _, bc := range []struct {
		name string
		opts store.ListOptions
	}{
		{"indexed-equality", store.ListOptions{Collection: "ex", Filter: f, Limit: 50}},
		{"indexed-order", store.ListOptions{Collection: "ex", OrderBy: order, Limit: 50}},
		{"indexed-equality-deep", store.ListOptions{Collection: "ex", Filter: f, Limit: 50, After: "r090000"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			benchLatency(b, func() error {
				p, err := s.ListResources(context.Background(), bc.opts)
				if err == nil && len(p.Items) != 50 {
					err = fmt.Errorf("page of %d", len(p.Items))
				}
				return err
			})
		})
	}
}

// BenchmarkIndexBuild measures building a declared index over 100,000
// resources: the writer is held for this long (docs/queries.md).
func BenchmarkIndexBuild(b *testing.B) {
	s := openAt(b, filepath.Join(b.TempDir(), "tandem.db"))
	seedExplain(b, s, 100000)
	ctx := context.Background()
	ix := []store.Index{{Fields: []string{"data.score"}}}
	for b.Loop() {
		err := s.write(ctx, "bench index", func(ctx context.Context, tx *sql.Tx) (bool, error) {
			if err := syncIndexes(ctx, tx, "ex", nil, ix); err != nil {
				return false, err
			}
			return true, syncIndexes(ctx, tx, "ex", ix, nil)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchLatency runs fn b.N times and reports p50 and p99 in µs.
func benchLatency(b *testing.B, fn func() error) {
	b.Helper()
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := fn(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(d[len(d)*99/100].Microseconds()), "p99-µs")
}
