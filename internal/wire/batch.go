package wire

import (
	"net/http"
	"strconv"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/store"
)

// ETag is the entity tag of revision rev (`"42"`).
func ETag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// Location is the URL path of a resource.
func Location(r store.Resource) string {
	return "/v1/collections/" + r.Collection + "/resources/" + r.ID
}

// BatchOps converts the operations of a batch request.
func BatchOps(b api.Batch) []app.BatchOp {
	out := make([]app.BatchOp, len(b.Operations))
	for i, o := range b.Operations {
		op := app.BatchOp{Kind: app.BatchOpKind(o.Op), Collection: o.Collection, Data: o.Data, Labels: o.Labels}
		if o.Id != nil {
			op.ID = *o.Id
		}
		if o.IfMatch != nil {
			op.IfMatch = *o.IfMatch
		}
		op.CreateOnly = o.IfNoneMatch != nil && *o.IfNoneMatch == "*"
		out[i] = op
	}
	return out
}

// BatchResult converts a committed batch to its reply: each operation
// with the status its single REST call would answer (201 created, 200
// replaced or patched, 204 deleted), its revision and, but for a delete,
// the resource and its ETag.
func BatchResult(r app.BatchResult) api.BatchResult {
	out := api.BatchResult{Id: r.ID, LastRevision: r.LastRevision, Results: make([]api.BatchOperationResult, len(r.Results))}
	for i, res := range r.Results {
		or := api.BatchOperationResult{Op: api.BatchOperationResultOp(res.Kind), Revision: res.Resource.Revision, Status: http.StatusOK}
		if res.Kind == app.BatchDelete {
			or.Status = http.StatusNoContent
		} else {
			rs, tag := Resource(res.Resource), ETag(res.Resource.Revision)
			or.Resource, or.Etag = &rs, &tag
		}
		if res.Created {
			loc := Location(res.Resource)
			or.Status, or.Location = http.StatusCreated, &loc
		}
		out.Results[i] = or
	}
	return out
}
