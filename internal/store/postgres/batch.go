package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/store"
)

// Batch runs ops as one atomic write named id: one transaction, which
// takes len(ops) contiguous revisions (holding the revision counter's row
// lock, so no other write interleaves) and runs the operations in order,
// each seeing the state the earlier ones left; every change it appends
// carries the batch. A failing operation rolls the whole batch back.
// Errors: store.ErrInvalid (bad id, no operations, too many), a
// *store.BatchOpError naming the failing operation and wrapping
// store.ErrInvalid, store.ErrNotFound or store.ErrPreconditionFailed (as
// PutResource and DeleteResource), store.ErrUnavailable.
func (s *Store) Batch(ctx context.Context, id string, ops []store.BatchOp) (store.BatchResult, error) {
	ins, err := store.PrepareBatch(id, ops)
	if err != nil {
		return store.BatchResult{}, err
	}
	res := store.BatchResult{ID: id, Results: make([]store.BatchOpResult, len(ins))}
	err = s.write(ctx, "batch", func(tx pgx.Tx) (bool, error) {
		last, err := bumpRevision(ctx, tx, int64(len(ins)))
		if err != nil {
			return false, err
		}
		ref := &store.BatchRef{ID: id, LastRevision: last}
		first, t := last-int64(len(ins))+1, now()
		for i, in := range ins {
			rev := first + int64(i)
			var r store.BatchOpResult
			if in.Op.Delete {
				r.Resource, err = deleteOne(ctx, tx, in.Op.Resource.Collection, in.Op.Resource.ID, in.Op.Cond, rev, ref)
			} else {
				r.Resource, r.Created, err = putOne(ctx, tx, in.Put, in.Op.Cond, rev, t, ref)
			}
			if store.ErrorCode(err) != "" { // a database failure names no operation
				err = store.OpError(i, err)
			}
			if err != nil {
				return false, err
			}
			res.Results[i] = r
		}
		res.LastRevision = last
		return true, nil
	})
	if err != nil {
		return store.BatchResult{}, err
	}
	return res, nil
}
