package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// DefaultMaxBatchOps is the most operations a batch takes unless
// Options.MaxBatchOps says otherwise.
const DefaultMaxBatchOps = 100

// maxBatchAttempts bounds the optimistic retries of a batch whose patches
// keep meeting concurrent writes.
const maxBatchAttempts = 8

// BatchOpKind names what one operation of a batch does.
type BatchOpKind string

// The operations of a batch, as the single REST calls: create (POST),
// put (PUT), patch (PATCH) and delete (DELETE).
const (
	BatchCreate BatchOpKind = "create"
	BatchPut    BatchOpKind = "put"
	BatchPatch  BatchOpKind = "patch"
	BatchDelete BatchOpKind = "delete"
)

// BatchOp is one operation of a batch, as the client sent it.
type BatchOp struct {
	Kind       BatchOpKind
	Collection string
	// ID names the resource; "" on a create makes a server-made ID.
	ID string
	// Data and Labels are, on a create or put, the resource's data (a
	// JSON object) and labels (a JSON object of strings; empty: none); on
	// a patch, JSON Merge Patches of them (empty: unchanged). A delete
	// takes neither.
	Data, Labels json.RawMessage
	// IfMatch, when non-zero, is the revision the resource must be at
	// (put, patch, delete).
	IfMatch int64
	// CreateOnly makes a put fail when the resource exists (If-None-Match: *).
	CreateOnly bool
}

// BatchOpResult is what one operation of a committed batch did: the
// resource's new state (for a delete, its last state with the deletion's
// revision) and whether it was created.
type BatchOpResult struct {
	Kind     BatchOpKind
	Resource store.Resource
	Created  bool
}

// BatchResult is a committed batch: its ID (which its events carry), its
// last revision and one result per operation, in order.
type BatchResult struct {
	ID           string
	LastRevision int64
	Results      []BatchOpResult
}

// Batch applies ops atomically: in order, each seeing what the earlier
// ones wrote, in one store write that takes one revision per operation.
// Every operation is authorised, validated and preconditioned as its
// single call would be (CreateResource, ReplaceResource, PatchResource,
// DeleteResource); a patch without IfMatch reads the current state and
// retries the whole batch when a concurrent write changed it. Errors:
// store.ErrInvalid (no operations), store.CodeTooLarge (more than the
// App's MaxBatchOps), and, naming the failing operation with a
// *store.BatchOpError (pointers under /operations/{i}): a ValidationError
// (invalid or unprocessable), auth errors (write on the collection's
// resources for a create, on the resource for the others),
// store.ErrNotFound, store.ErrPreconditionFailed, store.ErrConflict (a
// create of an existing ID, retries exhausted); store.ErrUnavailable.
// Nothing is written on error.
func (a *App) Batch(ctx context.Context, p auth.Principal, ops []BatchOp) (BatchResult, error) {
	if len(ops) == 0 {
		return BatchResult{}, invalidField("/operations", "a batch needs at least one operation")
	}
	if len(ops) > a.maxBatchOps {
		return BatchResult{}, store.Errorf(store.CodeTooLarge, "a batch takes at most %d operations on this server, not %d", a.maxBatchOps, len(ops))
	}
	ops = append([]BatchOp(nil), ops...) // server-made IDs are filled in
	for i := range ops {
		if err := checkBatchOp(i, &ops[i]); err != nil {
			return BatchResult{}, store.OpError(i, err)
		}
	}
	for i, op := range ops { // every operation, before any data is looked at
		topic := stream.ResourceTopic(op.Collection, op.ID)
		if op.Kind == BatchCreate {
			topic = stream.CollectionTopic(op.Collection)
		}
		if err := a.Authorize(p, auth.ActionWrite, topic); err != nil {
			return BatchResult{}, store.OpError(i, err)
		}
	}
	for i := range ops {
		if ops[i].Kind == BatchCreate && ops[i].ID == "" {
			ops[i].ID = a.ids.next(a.now())
		}
	}
	for attempt := 1; ; attempt++ {
		plan, err := a.planBatch(ctx, ops)
		if err != nil {
			return BatchResult{}, err
		}
		res, err := a.store.Batch(ctx, a.ids.next(a.now()), plan.ops)
		a.batchWritten(plan.ops, res, err)
		var be *store.BatchOpError
		if errors.As(err, &be) && be.Index >= 0 && be.Index < len(ops) {
			i := be.Index
			switch {
			case plan.implicit[i] && errors.Is(err, store.ErrPreconditionFailed) && attempt < maxBatchAttempts:
				continue
			case errors.Is(err, store.ErrCollectionChanged) && attempt < maxBatchAttempts:
				continue
			case errors.Is(err, store.ErrCollectionChanged):
				return BatchResult{}, store.OpError(i, store.Errorf(store.CodeConflict, "collection %q changed %d times while the batch was validated against its schema; try again", ops[i].Collection, maxBatchAttempts))
			case plan.implicit[i] && errors.Is(err, store.ErrPreconditionFailed):
				return BatchResult{}, store.OpError(i, store.Errorf(store.CodeConflict, "resource %q changed concurrently %d times; try again", ops[i].ID, maxBatchAttempts))
			case ops[i].Kind == BatchCreate && errors.Is(err, store.ErrPreconditionFailed):
				return BatchResult{}, store.OpError(i, store.Errorf(store.CodeConflict, "resource %q already exists in collection %q", ops[i].ID, ops[i].Collection))
			}
		}
		if err != nil {
			return BatchResult{}, err
		}
		out := BatchResult{ID: res.ID, LastRevision: res.LastRevision, Results: make([]BatchOpResult, len(res.Results))}
		for i, r := range res.Results {
			out.Results[i] = BatchOpResult{Kind: ops[i].Kind, Resource: r.Resource, Created: r.Created}
		}
		return out, nil
	}
}

// batchWritten invalidates the resource cache's entries of the keys a
// batch wrote (all its keys when it failed: its outcome may be unknown).
func (a *App) batchWritten(ops []store.BatchOp, res store.BatchResult, err error) {
	if a.rcache == nil {
		return
	}
	for i, op := range ops {
		var rev int64
		if err == nil && i < len(res.Results) {
			rev = res.Results[i].Resource.Revision
		}
		a.rcache.written(resKey{op.Resource.Collection, op.Resource.ID}, rev)
	}
}

// checkBatchOp checks the form of operation i (what it takes, names,
// preconditions), before anything is read. Errors: a ValidationError
// (invalid) with pointers under /operations/{i}.
func checkBatchOp(i int, op *BatchOp) error {
	at := fmt.Sprintf("/operations/%d", i)
	switch op.Kind {
	case BatchCreate, BatchPut, BatchPatch, BatchDelete:
	default:
		return invalidField(at+"/op", "must be create, put, patch or delete")
	}
	if !store.ValidName(op.Collection) {
		return invalidField(at+"/collection", "must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	switch {
	case op.ID == "" && op.Kind != BatchCreate:
		return invalidField(at+"/id", "is required on a "+string(op.Kind))
	case op.ID != "" && !store.ValidName(op.ID):
		return invalidField(at+"/id", "must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit")
	case op.IfMatch < 0:
		return invalidField(at+"/ifMatch", "must be a revision (a positive integer)")
	case op.IfMatch != 0 && op.Kind == BatchCreate:
		return invalidField(at+"/ifMatch", "a create has no precondition; use a put")
	case op.CreateOnly && op.Kind != BatchPut:
		return invalidField(at+"/ifNoneMatch", "only a put takes ifNoneMatch")
	}
	data, labels := bytes.TrimSpace(op.Data), bytes.TrimSpace(op.Labels)
	switch op.Kind {
	case BatchDelete:
		if len(data) > 0 {
			return invalidField(at+"/data", "a delete takes no data")
		}
		if len(labels) > 0 {
			return invalidField(at+"/labels", "a delete takes no labels")
		}
	case BatchPatch:
		if bytes.Equal(data, []byte("null")) {
			return invalidField(at+"/data", "data cannot be removed; patch its members instead")
		}
	default:
		if len(data) == 0 {
			return invalidField(at+"/data", "is required on a "+string(op.Kind))
		}
	}
	return nil
}

// batchPlan is one attempt at a batch: the store operations, and which of
// them carry a precondition of the App's own (a patch's read revision)
// rather than the client's.
type batchPlan struct {
	ops      []store.BatchOp
	implicit []bool
}

// resourceKey names a resource within a batch.
type resourceKey struct{ collection, id string }

// planned is a resource's state after the batch's operations so far.
type planned struct {
	exists bool
	r      store.Resource
}

// planBatch reads what the operations depend on (their collections, and
// the current state of the resources patched) and turns them into store
// operations: validated data, merged patches and preconditions. Errors: as
// Batch, naming the operation.
func (a *App) planBatch(ctx context.Context, ops []BatchOp) (batchPlan, error) {
	plan := batchPlan{ops: make([]store.BatchOp, len(ops)), implicit: make([]bool, len(ops))}
	colls := map[string]store.Collection{}
	state := map[resourceKey]planned{} // what the earlier operations wrote
	for i, op := range ops {
		c, ok := colls[op.Collection]
		if !ok {
			var err error
			if c, err = a.store.GetCollection(ctx, op.Collection); err != nil {
				return batchPlan{}, store.OpError(i, err)
			}
			colls[op.Collection] = c
		}
		key := resourceKey{op.Collection, op.ID}
		sop := store.BatchOp{Resource: store.Resource{Collection: op.Collection, ID: op.ID}, Cond: store.Precondition{IfMatch: op.IfMatch}}
		if op.Kind == BatchDelete {
			sop.Delete = true
			plan.ops[i], state[key] = sop, planned{}
			continue
		}
		at := fmt.Sprintf("/operations/%d", i)
		var data json.RawMessage
		var labels map[string]string
		var err error
		switch op.Kind {
		case BatchCreate, BatchPut:
			sop.Cond.CreateOnly = op.Kind == BatchCreate || op.CreateOnly
			data = op.Data
			labels, err = batchLabels(at, op.Labels)
		case BatchPatch:
			var cur store.Resource
			if cur, err = a.patchBase(ctx, op, state, &sop.Cond, &plan.implicit[i]); err == nil {
				data, labels, err = mergeResource(cur, at, op.Data, op.Labels)
			}
		}
		if err == nil {
			// Bound to the collection revision validated against: a schema
			// change before the commit makes the store refuse the batch
			// (ErrCollectionChanged) and Batch plan it again.
			data, sop.Cond.CollectionRevision, err = a.checkIn(ctx, c, at, data, labels)
		}
		if err != nil {
			return batchPlan{}, store.OpError(i, err)
		}
		sop.Resource = a.stamp(op.Collection, op.ID, data, labels)
		plan.ops[i], state[key] = sop, planned{exists: true, r: sop.Resource}
	}
	return plan, nil
}

// patchBase returns the state a patch applies to and sets its store
// precondition: for a resource an earlier operation of the batch wrote,
// that state (the client's IfMatch, if any, stays for the store to check
// against the batch's revisions); otherwise the stored state, whose
// revision becomes the precondition (implicit unless the client gave it).
// Errors: store.ErrNotFound, store.ErrPreconditionFailed (IfMatch is not
// the current revision).
func (a *App) patchBase(ctx context.Context, op BatchOp, state map[resourceKey]planned, cond *store.Precondition, implicit *bool) (store.Resource, error) {
	if st, ok := state[resourceKey{op.Collection, op.ID}]; ok {
		if !st.exists {
			return store.Resource{}, store.ResourceNotFound(op.Collection, op.ID)
		}
		cond.MustExist = true
		return st.r, nil
	}
	cur, err := a.store.GetResource(ctx, op.Collection, op.ID)
	if err != nil {
		return store.Resource{}, err
	}
	if op.IfMatch != 0 && cur.Revision != op.IfMatch {
		return store.Resource{}, store.Errorf(store.CodePreconditionFailed, "ifMatch %d does not match the current revision %d", op.IfMatch, cur.Revision)
	}
	cond.IfMatch, *implicit = cur.Revision, op.IfMatch == 0
	return cur, nil
}

// batchLabels decodes the labels of a create or put (a JSON object of
// strings; empty: none). Errors: a ValidationError (invalid) naming the
// member under at.
func batchLabels(at string, raw json.RawMessage) (map[string]string, error) {
	out := map[string]string{}
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return out, nil
	}
	var m map[string]*string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, invalidField(at+"/labels", "must be an object of strings")
	}
	for k, v := range m {
		if v == nil {
			return nil, invalidField(at+"/labels/"+escapePointer(k), "must be a string (null removes a label only in a patch)")
		}
		out[k] = *v
	}
	return out, nil
}
