package stream

import (
	"context"

	"github.com/tandemhq/tandem/internal/hub"
	"github.com/tandemhq/tandem/internal/store"
)

// Atomic batches in the streams. The changes of a batch (store.Batch) are
// contiguous in the change log and every one carries the batch; their
// events carry it too (Event.Batch), and End marks the last event of the
// batch that the subscription receives — with a selector it may see only
// some of the batch's changes, so the change at the batch's last revision
// may never reach it. Every reader of the log (the feed, a replay, a
// long-poll or webhook tail) therefore reads a batch whole before it
// emits any event of it (completeBatches), then marks each subscription's
// last visible event.

// BatchMark is what an event of a batch-written change says about the
// batch: its ID, its last revision, and whether this is the last event of
// the batch the subscription receives.
type BatchMark struct {
	ID           string
	LastRevision int64
	End          bool
}

// batchMark is the mark of ch's event for a subscription whose last
// visible change of ch's batch is at revision end (nil outside a batch).
func batchMark(ch store.Change, end int64) *BatchMark {
	if ch.Batch == nil {
		return nil
	}
	return &BatchMark{ID: ch.Batch.ID, LastRevision: ch.Batch.LastRevision, End: ch.Revision == end}
}

// completeBatches extends changes (one read of the log, in revision
// order) so that it does not end inside a batch: when its last change
// belongs to a batch whose last revision it does not reach, the rest of
// the batch is read (a batch commits whole, so it is there; at most
// store.MaxBatchOps changes). Errors: the store's.
func completeBatches(ctx context.Context, s store.Store, changes []store.Change) ([]store.Change, error) {
	for len(changes) > 0 {
		last := changes[len(changes)-1]
		if last.Batch == nil || last.Revision >= last.Batch.LastRevision {
			return changes, nil
		}
		more, err := s.Changes(ctx, last.Revision, int(min(last.Batch.LastRevision-last.Revision, store.MaxBatchOps)))
		if err != nil {
			return nil, err
		}
		if len(more) == 0 {
			return changes, nil // never expected: the batch committed whole
		}
		changes = append(changes, more...)
	}
	return changes, nil
}

// viewsOf returns the views of changes (each decoded at most once, for
// lastVisible and the events alike).
func viewsOf(changes []store.Change) []*ChangeView {
	views := make([]*ChangeView, len(changes))
	for i, ch := range changes {
		views[i] = NewChangeView(ch)
	}
	return views
}

// lastVisible returns, for each batch among views, the revision of its
// last change that a subscription of topic selecting p gets an event for
// (batches without one are absent).
func lastVisible(views []*ChangeView, topic Topic, p store.Predicate) map[string]int64 {
	var ends map[string]int64
	for _, v := range views {
		if v.Batch == nil || !matchesTopic(topic, v.Change) {
			continue
		}
		if _, ok := EventFor(v, p); ok {
			if ends == nil {
				ends = map[string]int64{}
			}
			ends[v.Batch.ID] = v.Revision
		}
	}
	return ends
}

// batchEnd is the revision of ch's batch's last change visible to a
// subscription, given lastVisible's map (0 outside a batch).
func batchEnd(ends map[string]int64, ch store.Change) int64 {
	if ch.Batch == nil {
		return 0
	}
	return ends[ch.Batch.ID]
}

// dispatchBatch broadcasts the changes of one batch (group, whole and in
// order): like dispatch, each change encoded once per key, each event
// carrying the batch and End on the last one its key sees. Every change
// of the group is matched against the keys registered when the group
// started; a key registered later starts after the batch (its
// subscription reads the store's revision after registering).
func (f *Feed) dispatchBatch(group []store.Change) {
	entries := map[string][]hub.Entry{}
	ends := map[string]int64{} // key → revision of its last visible change
	views := make([]*ChangeView, len(group))
	for i, ch := range group {
		views[i] = NewChangeView(ch) // decoded once for every key
		for _, topic := range changeTopics(ch) {
			es, ok := entries[topic]
			if !ok {
				es = f.hub.Entries(topic)
				entries[topic] = es
			}
			for _, e := range es {
				if _, ok := EventFor(views[i], specOf(e).pred); ok {
					ends[e.Key] = ch.Revision
				}
			}
		}
	}
	for _, v := range views {
		f.broadcast(v, entries, ends)
	}
}
