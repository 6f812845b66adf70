package tandem

import (
	"context"
	"errors"
	"net/http"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// BatchOp is one operation of Client.Batch; make it with CreateOp, PutOp,
// PatchOp or DeleteOp, and add preconditions with IfMatch and
// IfNoneMatch.
type BatchOp struct {
	op  client.BatchOperation
	err error
}

func newOp(kind client.BatchOperationOp, collection, id string) BatchOp {
	o := BatchOp{op: client.BatchOperation{Op: kind, Collection: collection}}
	if id != "" {
		o.op.Id = &id
	}
	return o
}

// withData sets the operation's data (any JSON object; a json.RawMessage
// is sent as is) and labels (nil: none).
func (o BatchOp) withData(data any, labels any) BatchOp {
	if o.op.Data, o.err = rawJSON(data); o.err != nil {
		return o
	}
	if labels != nil {
		o.op.Labels, o.err = rawJSON(labels)
	}
	return o
}

// CreateOp creates a resource with data and labels (nil for none), as
// POST does; id "" gets a server-made ID. The batch fails with a 409
// conflict when the ID exists.
func CreateOp(collection, id string, data any, labels map[string]string) BatchOp {
	if labels == nil {
		return newOp(client.BatchOperationOpCreate, collection, id).withData(data, nil)
	}
	return newOp(client.BatchOperationOpCreate, collection, id).withData(data, labels)
}

// PutOp creates or replaces a resource with data and labels (nil for
// none), as PUT does.
func PutOp(collection, id string, data any, labels map[string]string) BatchOp {
	if labels == nil {
		return newOp(client.BatchOperationOpPut, collection, id).withData(data, nil)
	}
	return newOp(client.BatchOperationOpPut, collection, id).withData(data, labels)
}

// PatchOp applies JSON Merge Patches to a resource's data (nil: unchanged)
// and labels (nil: unchanged; a nil value removes the label), as PATCH
// does.
func PatchOp(collection, id string, data any, labels map[string]*string) BatchOp {
	o := newOp(client.BatchOperationOpPatch, collection, id)
	if data != nil {
		if o.op.Data, o.err = rawJSON(data); o.err != nil {
			return o
		}
	}
	if labels != nil {
		o.op.Labels, o.err = rawJSON(labels)
	}
	return o
}

// DeleteOp deletes a resource, as DELETE does.
func DeleteOp(collection, id string) BatchOp {
	return newOp(client.BatchOperationOpDelete, collection, id)
}

// IfMatch makes the operation (put, patch or delete) require that the
// resource is at revision rev (412 otherwise).
func (o BatchOp) IfMatch(rev int64) BatchOp {
	o.op.IfMatch = &rev
	return o
}

// IfNoneMatch makes a put create-only (412 when the resource exists).
func (o BatchOp) IfNoneMatch() BatchOp {
	star := client.BatchOperationIfNoneMatch("*")
	o.op.IfNoneMatch = &star
	return o
}

// Batch applies ops atomically (POST /v1/batch): all of them, in order,
// with contiguous revisions, or none. The result lists each operation's
// status (201, 200 or 204), revision and resource. Errors: a
// *ProblemError naming the failing operation (BatchOperation), matching
// ErrNotFound, ErrConflict, ErrPreconditionFailed or ErrForbidden by its
// status; an error of an operation's data that is not JSON.
func (c *Client) Batch(ctx context.Context, ops ...BatchOp) (*client.BatchResult, error) {
	return c.BatchWithKey(ctx, "", ops...)
}

// BatchWithKey is Batch with an Idempotency-Key ("" for none): a retry
// with the same key and operations gets the first reply again, without
// applying them twice. Errors: as Batch; ErrConflict when the key was used
// for other operations.
func (c *Client) BatchWithKey(ctx context.Context, key string, ops ...BatchOp) (*client.BatchResult, error) {
	body := client.Batch{Operations: make([]client.BatchOperation, len(ops))}
	for i, o := range ops {
		if o.err != nil {
			return nil, o.err
		}
		body.Operations[i] = o.op
	}
	params := &client.ApplyBatchParams{}
	if key != "" {
		params.IdempotencyKey = &key
	}
	r, err := c.REST.ApplyBatchWithResponse(ctx, params, body)
	if err != nil {
		return nil, err
	}
	if err := check(r.StatusCode(), r.Body, http.StatusOK); err != nil {
		return nil, err
	}
	return r.JSON200, nil
}

// BatchOperation returns the index of the operation that failed a batch
// (the problem's operation member), and false when err is not such a
// failure.
func BatchOperation(err error) (int, bool) {
	var pe *ProblemError
	if !errors.As(err, &pe) || pe.Problem.Operation == nil {
		return 0, false
	}
	return *pe.Problem.Operation, true
}
