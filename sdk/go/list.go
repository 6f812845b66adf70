package tandem

import (
	"context"
	"iter"
	"net/http"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// ListOptions select and order the resources of a list. The zero value (or
// nil) lists every resource of the collection by ID.
type ListOptions struct {
	// Labels is a label selector, e.g. "env=prod,tier!=db".
	Labels string
	// Filter is a filter expression (docs/queries.md), e.g.
	// `data.status == "paid" && data.qty > 2`.
	Filter string
	// OrderBy orders the resources: up to 4 comma-separated fields of the
	// filter language, each optionally followed by asc or desc, e.g.
	// "data.qty desc, id" (ties are ordered by ID; "" orders by ID).
	OrderBy string
	// Limit stops after this many resources in all (0: every one).
	Limit int
	// PageSize is the number of resources asked for per request, at most
	// 1000 (0: 1000, or 100 with a Filter; never more than Limit). The
	// server examines at most its scan budget (--max-scan, 10,000 by
	// default) per request, so a sparse filter without an index fills
	// small pages where a large one would answer 422 needs-index.
	PageSize int
	// PageToken starts after the page that returned it (a nextPageToken of
	// a list with the same Labels, Filter and OrderBy); "" starts at the
	// beginning.
	PageToken string
}

// maxPageSize is the largest page the server returns; filterPageSize is
// the default page of a filtered list (the server's own default).
const (
	maxPageSize    = 1000
	filterPageSize = 100
)

// List reads the resources of a collection that opts selects, in opts'
// order, following pages until the last one (or opts.Limit). revision is
// the store revision the first page was read at. Pages are keyset pages:
// while writers run, no resource that did not change is skipped or
// repeated, but the pages are not one snapshot; to follow changes without
// a gap afterwards, prefer a snapshot subscription (Conn.Subscribe with
// Snapshot, or Mirror), which hands over from the state to live events
// atomically. Errors: ErrNotFound (the collection), *ProblemError: 400 for
// a bad Labels, Filter, OrderBy or PageToken (the detail names the
// parameter and, for an expression, the position), 422 needs-index when
// the query would examine more resources than the server's scan budget
// (the detail names the fields to index).
func (c *Client) List(ctx context.Context, collection string, opts *ListOptions) (items []client.Resource, revision int64, err error) {
	first := true
	for page, err := range c.Pages(ctx, collection, opts) {
		if err != nil {
			return nil, 0, err
		}
		if first {
			revision, first = page.Revision, false
		}
		items = append(items, page.Items...)
	}
	return items, revision, nil
}

// Pages iterates over the pages of a list, following nextPageToken, until
// the last page or until opts.Limit resources have been read (the last
// request asks for no more than are left; its page's NextPageToken still
// continues the list). Each page carries the store revision it was read at.
// An error is yielded once and ends the iteration. Errors: as List.
func (c *Client) Pages(ctx context.Context, collection string, opts *ListOptions) iter.Seq2[*client.ResourceList, error] {
	var o ListOptions
	if opts != nil {
		o = *opts
	}
	size := o.PageSize
	switch {
	case size > maxPageSize:
		size = maxPageSize
	case size <= 0 && o.Filter != "":
		size = filterPageSize
	case size <= 0:
		size = maxPageSize
	}
	return func(yield func(*client.ResourceList, error) bool) {
		params := &client.ListResourcesParams{}
		if o.Labels != "" {
			params.Labels = &o.Labels
		}
		if o.Filter != "" {
			params.Filter = &o.Filter
		}
		if o.OrderBy != "" {
			params.OrderBy = &o.OrderBy
		}
		if o.PageToken != "" {
			tok := o.PageToken
			params.PageToken = &tok
		}
		left := o.Limit
		for {
			n := size
			if o.Limit > 0 {
				n = min(n, left)
			}
			params.Limit = &n
			r, err := c.REST.ListResourcesWithResponse(ctx, collection, params)
			if err == nil {
				err = check(r.StatusCode(), r.Body, http.StatusOK)
			}
			if err != nil {
				yield(nil, err)
				return
			}
			page := r.JSON200
			if o.Limit > 0 {
				left -= len(page.Items)
			}
			more := page.NextPageToken != nil && *page.NextPageToken != ""
			if !yield(page, nil) || !more || (o.Limit > 0 && left <= 0) {
				return
			}
			params.PageToken = page.NextPageToken
		}
	}
}
