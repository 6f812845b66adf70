package store

import (
	"errors"
	"fmt"
	"strings"
)

// ListSource runs the SQL of a planned list inside one read transaction
// of a store.
type ListSource interface {
	// Columns returns the store's resource columns, as Rows scans them.
	Columns() string
	// Count runs a CountSQL query.
	Count(query string, args []any) (int, error)
	// Rows runs a Batch query selecting the resource columns and then n
	// order values, calling fn for each row in order; it stops and
	// returns fn's error when fn fails.
	Rows(query string, args []any, n int, fn func(r Resource, vals []any) error) error
}

// RunList fills one page of opts from a planned query: it reads batches
// of rows, keeps those matching the selector and the filter, and stops at
// opts.Limit+1 matches, the end, or the scan budget. limit is the page
// size already defaulted. Errors: CodeNeedsIndex when the budget runs out
// (or, for a query the store must sort, when the candidates exceed it),
// CodeInvalid for AfterValues that do not fit the order, the source's
// errors.
func RunList(q *ListQuery, opts ListOptions, limit int, src ListSource) (Page, error) {
	budget := opts.MaxScan
	if budget <= 0 {
		budget = DefaultMaxScan
	}
	page := Page{Items: []Resource{}, Index: q.Index}
	if opts.After != "" && len(opts.AfterValues) != q.OrderColumns() {
		return page, Errorf(CodeInvalid, "the page position does not fit the order")
	}
	if q.CheckSize {
		query, args := q.CountSQL(budget)
		n, err := src.Count(query, args)
		if err != nil {
			return page, err
		}
		if n > budget && q.Fallback != nil {
			return RunList(q.Fallback, opts, limit, src)
		}
		if n > budget {
			return page, needsIndex(opts, q, budget, fmt.Sprintf("sorting %s needs more than %d resources read", orderText(opts), budget))
		}
	}
	after, vals := opts.After, opts.AfterValues
	batch := limit + 1
	if opts.Filter != nil || len(opts.Selector) > 0 {
		batch = max(batch, 256)
	}
	batch = min(batch, budget+1)
	examined := 0
	var lastVals []any
	for {
		query, args := q.Batch(src.Columns(), after, vals, batch)
		n := 0
		err := src.Rows(query, args, q.OrderColumns(), func(r Resource, v []any) error {
			n++
			examined++
			after, vals = r.ID, v
			if opts.Matches(NewDoc(&r)) {
				page.Items = append(page.Items, r)
				if len(page.Items) > limit {
					return errPageFull
				}
				lastVals = v
			}
			return nil
		})
		if err != nil && !errors.Is(err, errPageFull) {
			return page, err
		}
		if len(page.Items) > limit {
			page.Items, page.More = page.Items[:limit], true
			break
		}
		if n < batch {
			break
		}
		if examined > budget {
			return page, needsIndex(opts, q, budget, fmt.Sprintf("the filter examined %d resources without filling a page of %d", examined, limit))
		}
	}
	if q.OrderColumns() > 0 {
		page.LastValues = lastVals
	}
	return page, nil
}

var errPageFull = errors.New("page full")

func orderText(opts ListOptions) string {
	if len(opts.OrderBy) == 0 {
		return "by id"
	}
	return "by " + OrderString(opts.OrderBy)
}

func needsIndex(opts ListOptions, q *ListQuery, budget int, why string) error {
	if q.indexFields != nil && len(opts.OrderBy) == 0 {
		return Errorf(CodeNeedsIndex,
			"%s of collection %q (the budget is %d): the index on %s matches too many resources to sort them by id; order by its fields (orderBy=%s) so that it gives the order, or narrow the filter",
			why, opts.Collection, budget, strings.Join(q.indexFields, ", "), strings.Join(q.indexFields, ","))
	}
	advice := q.IndexAdvice()
	if advice == "" {
		advice = "the fields the filter compares"
	}
	fields := strings.Split(advice, ", ")
	quoted := make([]string, len(fields))
	for i, f := range fields {
		quoted[i] = fmt.Sprintf("%q", f)
	}
	return Errorf(CodeNeedsIndex,
		"%s of collection %q (the budget is %d): declare an index on %s (PATCH /v1/collections/%s with {\"indexes\":[{\"fields\":[%s]}]}) or narrow the filter with an indexed field",
		why, opts.Collection, budget, advice, opts.Collection, strings.Join(quoted, ","))
}
