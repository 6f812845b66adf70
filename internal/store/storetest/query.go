package storetest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// queryData are the data of the resources q00…q29 of the query cases: a
// status, a score of every JSON type (missing, null, booleans, numbers,
// strings) and a tag list.
func queryData(i int) string {
	statuses := []string{"new", "paid", "shipped"}
	var score string
	switch i % 10 {
	case 0:
		score = "" // missing
	case 1:
		score = `"score":null,`
	case 2:
		score = `"score":true,`
	case 3:
		score = `"score":false,`
	case 4, 5, 6:
		score = fmt.Sprintf(`"score":%d,`, (i*7)%13-4)
	case 7:
		score = fmt.Sprintf(`"score":%d.5,`, i%5)
	default:
		score = fmt.Sprintf(`"score":"s%02d",`, (i*3)%17)
	}
	return fmt.Sprintf(`{%s"status":%q,"qty":%d,"tags":["t%d"],"nested":{"n":%d}}`, score, statuses[i%3], i%7, i%4, i%5)
}

// putQueryData creates collection name with indexes and the 30 resources.
func (e *env) putQueryData(name string, indexes ...store.Index) []store.Resource {
	e.t.Helper()
	_, err := e.s.CreateCollection(e.ctx, store.Collection{Name: name, Indexes: indexes})
	e.ok(err)
	var out []store.Resource
	for i := 0; i < 30; i++ {
		env := []string{"prod", "dev"}[i%2]
		out = append(out, e.put(name, fmt.Sprintf("q%02d", i), queryData(i), lbl("env", env)))
	}
	return out
}

// listAll pages through opts with page size n and returns every item.
func (e *env) listAll(opts store.ListOptions, n int) ([]store.Resource, []store.Page) {
	e.t.Helper()
	return e.listAllWith(opts, n, nil)
}

// listAllWith is listAll calling between (when set) after every page.
func (e *env) listAllWith(opts store.ListOptions, n int, between func()) ([]store.Resource, []store.Page) {
	e.t.Helper()
	opts.Limit = n
	var items []store.Resource
	var pages []store.Page
	for range 100 {
		p, err := e.s.ListResources(e.ctx, opts)
		e.ok(err)
		pages = append(pages, p)
		items = append(items, p.Items...)
		if !p.More {
			return items, pages
		}
		if between != nil {
			between()
		}
		last := p.Items[len(p.Items)-1]
		opts.After, opts.AfterValues = last.ID, p.LastValues
		if len(opts.OrderBy) > 0 {
			b := store.EncodeKeyValues(p.LastValues) // as a page token carries them
			v, err := store.DecodeKeyValues(b)
			e.ok(err)
			opts.AfterValues = v
		}
	}
	e.t.Fatalf("more than 100 pages")
	return nil, nil
}

// rankOf is the documented order of one field's values by type.
func rankOf(v any, ok bool) int {
	switch t := v.(type) {
	case nil:
		if !ok {
			return 0
		}
		return 1
	case bool:
		if t {
			return 3
		}
		return 2
	case float64:
		return 4
	case string:
		return 5
	}
	return 6
}

// refCompare orders a and b by the documented order of field f.
func refCompare(f store.Field, a, b store.Resource) int {
	va, oka := lookup(f, a)
	vb, okb := lookup(f, b)
	if c := cmp.Compare(rankOf(va, oka), rankOf(vb, okb)); c != 0 {
		return c
	}
	switch x := va.(type) {
	case float64:
		return cmp.Compare(x, vb.(float64))
	case string:
		return strings.Compare(x, vb.(string))
	}
	return 0
}

func lookup(f store.Field, r store.Resource) (any, bool) {
	switch f.Root {
	case store.RootID:
		return r.ID, true
	case store.RootLabels:
		v, ok := r.Labels[f.Path[0]]
		return v, ok
	}
	var cur any
	_ = json.Unmarshal(r.Data, &cur)
	for _, p := range f.Path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func mustFilter(e *env, s string) *store.Filter {
	e.t.Helper()
	f, err := store.ParseFilter(s)
	e.ok(err)
	return f
}

func mustOrder(e *env, s string) []store.OrderKey {
	e.t.Helper()
	k, err := store.ParseOrderBy(s)
	e.ok(err)
	return k
}

func ix(fields ...string) store.Index { return store.Index{Fields: fields} }

var queryFilters = []string{
	`data.status == "paid"`,
	`data.status == "paid" && data.qty > 2`,
	`data.status in ["new", "shipped"] && data.score >= 0`,
	`data.score < 0 || data.score == true`,
	`!exists(data.score) || data.score == null`,
	`startsWith(data.score, "s0") && labels.env == "prod"`,
	`data.qty >= 3 && data.qty <= 5 && !(data.status == "new")`,
	`contains(data.tags, "t1") || data.nested.n == 4`,
	`id >= "q10" && id < "q20" && revision > 0`,
	`data.score > "s05"`,
	`data.status != "paid"`,
}

func queryCases() []testCase {
	return []testCase{
		{"Query", "FilterPagesMatchEvaluation", func(e *env) {
			for k, indexes := range [][]store.Index{nil, {ix("data.status"), ix("data.score")}, {ix("data.status", "data.qty"), ix("id")}} {
				name := fmt.Sprintf("f%d", k)
				all := e.putQueryData(name, indexes...)
				for _, fs := range queryFilters {
					f := mustFilter(e, fs)
					var want []string
					for _, r := range all {
						if f.Matches(store.NewDoc(&r)) {
							want = append(want, r.ID)
						}
					}
					for _, n := range []int{1, 4, 100} {
						got, _ := e.listAll(store.ListOptions{Collection: name, Filter: f}, n)
						if !slices.Equal(ids(got), want) {
							e.t.Fatalf("indexes %v, filter %q, pages of %d: got %v, want %v", indexes, fs, n, ids(got), want)
						}
					}
				}
				e.ok(e.s.DeleteCollection(e.ctx, name))
			}
		}},
		{"Query", "OrderBy", func(e *env) {
			for k, indexes := range [][]store.Index{nil, {ix("data.score")}, {ix("data.status", "data.score")}, {ix("labels.env", "data.qty")}} {
				name := fmt.Sprintf("o%d", k)
				all := e.putQueryData(name, indexes...)
				for _, tc := range []struct{ filter, order string }{
					{"", "data.score"},
					{"", "data.score desc"},
					{"", "data.score desc, id"},
					{`data.status == "paid"`, "data.score desc"},
					{`data.status == "new"`, "data.score"},
					{"", "labels.env, data.qty desc"},
					{`labels.env == "dev"`, "data.qty"},
					{"", "data.nested.n, data.qty desc"},
					{"", "id desc"},
					{"", "data.missing"},
				} {
					f := mustFilter(e, tc.filter)
					keys := mustOrder(e, tc.order)
					var want []store.Resource
					for _, r := range all {
						if f.Matches(store.NewDoc(&r)) {
							want = append(want, r)
						}
					}
					slices.SortStableFunc(want, func(a, b store.Resource) int {
						for _, k := range keys {
							c := refCompare(k.Field, a, b)
							if k.Desc {
								c = -c
							}
							if c != 0 {
								return c
							}
						}
						c := strings.Compare(a.ID, b.ID)
						if n := len(keys); n > 0 && keys[n-1].Field.Root != store.RootID && keys[n-1].Desc {
							c = -c
						}
						return c
					})
					for _, n := range []int{1, 3, 100} {
						got, _ := e.listAll(store.ListOptions{Collection: name, Filter: f, OrderBy: keys}, n)
						if !slices.Equal(ids(got), ids(want)) {
							e.t.Fatalf("indexes %v, filter %q, orderBy %q, pages of %d:\n got %v\nwant %v", indexes, tc.filter, tc.order, n, ids(got), ids(want))
						}
					}
				}
			}
		}},
		{"Query", "IndexUsed", func(e *env) {
			e.putQueryData("iu", ix("data.status"), ix("data.status", "data.score"), ix("createdAt"), ix("labels.env"))
			for _, tc := range []struct {
				filter, order string
				want          store.Index
			}{
				{`data.status == "paid"`, "", ix("data.status")},
				{`data.status == "paid" && data.score > 1`, "", ix("data.status", "data.score")},
				{`data.status == "paid"`, "data.score desc", ix("data.status", "data.score")},
				{`createdAt > "2000-01-01T00:00:00Z"`, "", ix("createdAt")},
				{"", "createdAt desc", ix("createdAt")},
				{`labels.env == "dev" && data.qty > 1`, "", ix("labels.env")},
			} {
				p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "iu", Filter: mustFilter(e, tc.filter), OrderBy: mustOrder(e, tc.order), Limit: 5})
				e.ok(err)
				if want := store.IndexName("iu", tc.want); p.Index != want {
					e.t.Errorf("filter %q order %q read index %q, want %s (%v)", tc.filter, tc.order, p.Index, want, tc.want.Fields)
				}
			}
		}},
		{"Query", "ScanBudget", func(e *env) {
			e.putQueryData("sb", ix("data.status"))
			for _, tc := range []struct {
				filter, order string
				ok            bool
			}{
				{`data.qty == 99`, "", false},                                   // nothing matches, nothing indexed: the scan stops at the budget
				{`data.status == "none"`, "", true},                             // the index finds nothing at once
				{`data.qty >= 0`, "", true},                                     // unindexed but the page fills first
				{"", "data.qty", false},                                         // sorting needs every resource
				{`data.status == "paid"`, "data.qty", true},                     // 10 candidates through the index
				{`data.status in ["paid", "new"]`, "", true},                    // 20 candidates to sort by ID: the ID order fills the page instead
				{`data.status in ["paid", "new"] && data.qty == 99`, "", false}, // too many to sort, and the ID order finds nothing within the budget
				{`data.status in ["paid"]`, "", true},
			} {
				_, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "sb", Filter: mustFilter(e, tc.filter), OrderBy: mustOrder(e, tc.order), Limit: 5, MaxScan: 12})
				if tc.ok {
					e.ok(err)
					continue
				}
				if store.ErrorCode(err) != store.CodeNeedsIndex || !strings.Contains(store.ErrorMessage(err), "declare an index") {
					e.t.Errorf("filter %q order %q: err = %v, want needs-index advice", tc.filter, tc.order, err)
				}
			}
		}},
		{"Query", "BadPagePosition", func(e *env) {
			e.putQueryData("bp")
			_, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "bp", OrderBy: mustOrder(e, "data.qty"), After: "q01"})
			wantCode(e.t, err, store.ErrInvalid)
			_, err = e.s.ListResources(e.ctx, store.ListOptions{Collection: "bp", OrderBy: mustOrder(e, `data["a b"]`)})
			wantCode(e.t, err, store.ErrInvalid)
		}},
		{"Query", "PagesStableUnderWriters", func(e *env) {
			e.putQueryData("pw", ix("data.qty"))
			// Between every two pages, writes move two of the churn
			// resources (q2x) across the reader's position and add a new
			// resource; every resource that did not change must come
			// exactly once, and none twice unless it changed.
			for k, order := range []string{"data.qty", "data.qty desc, id", "id desc", ""} {
				w := 0
				between := func() {
					for range 2 {
						w++
						e.put("pw", fmt.Sprintf("q2%d", w%10), fmt.Sprintf(`{"qty":%d}`, (w*5)%9), nil)
					}
					e.put("pw", fmt.Sprintf("n%d-%03d", k, w), fmt.Sprintf(`{"qty":%d}`, w%7), nil)
				}
				got, _ := e.listAllWith(store.ListOptions{Collection: "pw", OrderBy: mustOrder(e, order)}, 3, between)
				seen := map[string]int{}
				for _, r := range got {
					seen[r.ID]++
				}
				for i := 0; i < 20; i++ {
					if id := fmt.Sprintf("q%02d", i); seen[id] != 1 {
						e.t.Errorf("order %q: unchanged resource %s listed %d times", order, id, seen[id])
					}
				}
				for id, n := range seen {
					if n > 1 && !strings.HasPrefix(id, "q2") {
						e.t.Errorf("order %q: %s listed %d times", order, id, n)
					}
				}
			}
		}},
	}
}

func indexUpdateCases() []testCase {
	return []testCase{
		{"Query", "IndexesChangeWithTheCollection", func(e *env) {
			e.putQueryData("ic")
			f := mustFilter(e, `data.status == "paid"`)
			list := func() store.Page {
				p, err := e.s.ListResources(e.ctx, store.ListOptions{Collection: "ic", Filter: f, Limit: 100})
				e.ok(err)
				if len(p.Items) != 10 {
					e.t.Fatalf("%d paid resources, want 10", len(p.Items))
				}
				return p
			}
			if p := list(); p.Index != "" {
				e.t.Fatalf("read index %q before any was declared", p.Index)
			}
			c, err := e.s.GetCollection(e.ctx, "ic")
			e.ok(err)
			c.Indexes = []store.Index{ix("data.status")}
			_, err = e.s.UpdateCollection(e.ctx, c, store.CollectionCondition{})
			e.ok(err)
			if p := list(); p.Index != store.IndexName("ic", ix("data.status")) {
				e.t.Fatalf("after declaring data.status: read index %q", p.Index)
			}
			c.Indexes = nil
			_, err = e.s.UpdateCollection(e.ctx, c, store.CollectionCondition{})
			e.ok(err)
			if p := list(); p.Index != "" {
				e.t.Fatalf("after removing the index: read %q", p.Index)
			}
		}},
	}
}
