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

// withOperation names, in a request validation problem, the batch
// operation its first field points into (/operations/{i}/…).
func withOperation(p api.Problem) api.Problem {
	if p.Errors == nil || len(*p.Errors) == 0 || (*p.Errors)[0].Pointer == nil {
		return p
	}
	rest, ok := strings.CutPrefix(*(*p.Errors)[0].Pointer, "/operations/")
	if !ok {
		return p
	}
	n, _, _ := strings.Cut(rest, "/")
	if i, err := strconv.Atoi(n); err == nil && i >= 0 {
		p.Operation = &i
	}
	return p
}
