package store

import (
	"errors"
	"fmt"
)

// MaxBatchOps is the most operations one Store.Batch call takes; callers
// (app) bound batches lower, by configuration.
const MaxBatchOps = 1000

// BatchOp is one write of an atomic batch (Store.Batch): a put (create or
// replace Resource's Data and Labels, as PutResource) or, with Delete, the
// deletion of Resource.Collection/Resource.ID (as DeleteResource). Cond
// guards it against the state the batch's earlier operations left.
type BatchOp struct {
	Delete   bool
	Resource Resource
	Cond     Precondition
}

// BatchOpResult is what one operation of a batch stored: the resource's
// new state (for a delete, its last state with Revision set to the
// deletion's revision) and, for a put, whether it created the resource.
type BatchOpResult struct {
	Resource Resource
	Created  bool
}

// BatchResult is a committed batch: its ID, its last revision (the batch
// took the contiguous revisions LastRevision-len(Results)+1 …
// LastRevision, one per operation in order) and each operation's result.
type BatchResult struct {
	ID           string
	LastRevision int64
	Results      []BatchOpResult
}

// FirstRevision is the revision of the batch's first operation.
func (b BatchResult) FirstRevision() int64 { return b.LastRevision - int64(len(b.Results)) + 1 }

// BatchOpError is the failure of one operation of a batch (Index counts
// from 0): the batch wrote nothing. It unwraps to the operation's error, so
// errors.Is(err, ErrPreconditionFailed) and ErrorCode see the operation's
// code, and ErrorMessage prefixes its message with the operation's index.
type BatchOpError struct {
	Index int
	Err   error
}

func (e *BatchOpError) Error() string { return fmt.Sprintf("operation %d: %v", e.Index, e.Err) }

// Unwrap returns the operation's error.
func (e *BatchOpError) Unwrap() error { return e.Err }

// As lets ErrorCode and ErrorMessage read the operation's *Error with the
// index in its message.
func (e *BatchOpError) As(target any) bool {
	t, ok := target.(**Error)
	if !ok {
		return false
	}
	var inner *Error
	if !errors.As(e.Err, &inner) {
		return false
	}
	*t = &Error{Code: inner.Code, Message: fmt.Sprintf("operation %d: %s", e.Index, inner.Message)}
	return true
}

// OpError wraps err as the failure of operation i of a batch; nil stays
// nil, and an error that already names an operation is left as it is.
func OpError(i int, err error) error {
	if err == nil {
		return nil
	}
	var be *BatchOpError
	if errors.As(err, &be) {
		return err
	}
	return &BatchOpError{Index: i, Err: err}
}

// BatchInput is one operation of a batch, validated and encoded for
// storage (see PrepareBatch).
type BatchInput struct {
	Op  BatchOp
	Put PutInput // for a put
}

// PrepareBatch validates and encodes a batch before any transaction.
// Errors: CodeInvalid for an invalid batch ID, no operations or more than
// MaxBatchOps; a *BatchOpError wrapping CodeInvalid (bad collection name
// or ID, data not a JSON object, bad labels) naming the first invalid
// operation.
func PrepareBatch(id string, ops []BatchOp) ([]BatchInput, error) {
	if !ValidName(id) {
		return nil, Errorf(CodeInvalid, "invalid batch ID %q", id)
	}
	if len(ops) == 0 {
		return nil, Errorf(CodeInvalid, "a batch needs at least one operation")
	}
	if len(ops) > MaxBatchOps {
		return nil, Errorf(CodeInvalid, "a batch takes at most %d operations, not %d", MaxBatchOps, len(ops))
	}
	out := make([]BatchInput, len(ops))
	for i, op := range ops {
		if err := CheckCollectionName(op.Resource.Collection); err != nil {
			return nil, OpError(i, err)
		}
		out[i].Op = op
		if op.Delete {
			if err := CheckResourceID(op.Resource.ID); err != nil {
				return nil, OpError(i, err)
			}
			continue
		}
		in, err := PreparePut(op.Resource)
		if err != nil {
			return nil, OpError(i, err)
		}
		out[i].Put = in
	}
	return out, nil
}
