package httpapi

import (
	"context"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/wire"
)

// ApplyBatch applies a batch of resource writes atomically: 200 with
// every operation's result, or the problem of the operation that failed
// it (app.App.Batch; its index in the problem's operation member).
func (s *Server) ApplyBatch(ctx context.Context, req api.ApplyBatchRequestObject) (api.ApplyBatchResponseObject, error) {
	if req.Body == nil {
		return nil, wire.ParamError(api.Body, "", "a batch body is required")
	}
	res, err := s.app.Batch(ctx, principalOf(ctx), wire.BatchOps(*req.Body))
	if err != nil {
		return nil, err
	}
	return api.ApplyBatch200JSONResponse(wire.BatchResult(res)), nil
}

// withOperation names, in a request validation problem, the first batch
// operation its fields point into (/operations/{i}/…).
func withOperation(p api.Problem) api.Problem {
	if p.Errors == nil {
		return p
	}
	for _, f := range *p.Errors {
		if f.Pointer == nil {
			continue
		}
		rest, ok := strings.CutPrefix(*f.Pointer, "/operations/")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, "/")
		if i, err := strconv.Atoi(n); err == nil && i >= 0 && (p.Operation == nil || i < *p.Operation) {
			p.Operation = &i
		}
	}
	return p
}
