// Package store holds Tandem's domain types for durable resources, the Store
// interface that the sqlite and postgres packages implement, and the errors
// they return. It depends on nothing else of Tandem's.
package store

import (
	"context"
	"encoding/json"
	"time"
)

// Collection is a named set of resources, optionally constrained by a JSON Schema.
type Collection struct {
	Name string
	// Schema is a JSON Schema document that every resource's Data must satisfy,
	// or nil when the collection accepts any JSON object.
	Schema json.RawMessage
	// Description is free text for people ("" for none).
	Description string
	// Indexes are the indexes the collection declares; list queries whose
	// filter or order uses their fields read them instead of scanning.
	Indexes   []Index
	Revision  int64
	CreatedAt time.Time
	// UpdatedAt is the time of the collection's last change (its creation
	// time when it never changed).
	UpdatedAt time.Time
}

// Index is one declared index of a collection: an ordered list of fields
// (the filter language's field names: "data.status", "labels.env",
// "createdAt" …).
type Index struct {
	Fields []string
}

// Resource is one durable JSON object in a collection.
type Resource struct {
	Collection string
	ID         string
	// Data is always a JSON object.
	Data   json.RawMessage
	Labels map[string]string
	// Revision is the store revision of the write that produced this state.
	Revision  int64
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ChangeType says what a change did to a resource.
type ChangeType string

// The change types, as they appear in events (resource.created …).
const (
	Created ChangeType = "created"
	Updated ChangeType = "updated"
	Deleted ChangeType = "deleted"
	// CollectionUpdated is a change of the collection itself (schema,
	// indexes, description): Resource carries only the collection's name.
	CollectionUpdated ChangeType = "collection.updated"
)

// Change is one entry of the change log: the write with revision Revision.
type Change struct {
	Revision int64
	Type     ChangeType
	// Resource is the state after the write; for Deleted, the last state
	// before deletion with Revision set to the deletion's revision.
	Resource Resource
	// PrevLabels are the labels before the write (nil for Created), so that
	// filtered subscribers can tell when a resource leaves their selector.
	PrevLabels map[string]string
	// Prev is the resource's state before the write (nil for Created and
	// collection changes, and for changes logged before the store kept
	// it: then only PrevLabels is known), so that a filtered subscriber
	// can tell when a resource leaves its filter.
	Prev *Resource
	// Batch is the atomic batch the write belonged to (nil outside one).
	Batch *BatchRef
	// Collection is the collection's new definition, for CollectionUpdated
	// (nil otherwise).
	Collection *Collection
	// Trace is the W3C traceparent of the request that made the write
	// ("" when it was not traced; see WithTrace).
	Trace string
}

// BatchRef names the atomic batch a change belongs to: every change of the
// batch carries the same ID and LastRevision, so a reader that has seen
// the change with Revision == LastRevision has seen the whole batch.
type BatchRef struct {
	ID           string
	LastRevision int64
}

// Precondition guards a write, as the HTTP conditional headers do.
type Precondition struct {
	// IfMatch, when non-zero, requires the current revision to equal it
	// (ErrPreconditionFailed otherwise, ErrNotFound when the resource is missing).
	IfMatch int64
	// CreateOnly requires that the resource does not exist yet
	// (If-None-Match: *); ErrPreconditionFailed otherwise.
	CreateOnly bool
	// MustExist makes a missing resource ErrNotFound instead of creating it.
	MustExist bool
	// CollectionRevision, when non-zero, requires the collection's
	// revision to equal it inside the write's transaction
	// (ErrCollectionChanged otherwise): the caller validated the data
	// against that version of the collection's schema.
	CollectionRevision int64
}

// CollectionCondition guards UpdateCollection.
type CollectionCondition struct {
	// IfMatch, when non-zero, requires the collection's revision to equal
	// it (ErrPreconditionFailed otherwise).
	IfMatch int64
	// CheckedThrough, when non-zero, requires that no resource of the
	// collection was created or updated by a write with a later revision
	// (ErrCollectionChanged otherwise, also when the change log no longer
	// reaches back to it): the caller validated every resource up to that
	// revision against the new schema.
	CheckedThrough int64
}

// ListOptions selects a page of resources.
type ListOptions struct {
	Collection string
	// Selector filters by labels; nil matches everything.
	Selector Selector
	// Filter filters by the filter language; nil matches everything.
	Filter *Filter
	// OrderBy orders the items (nil: by ID); ties are ordered by ID.
	OrderBy []OrderKey
	// After is the ID of the previous page's last item ("" for the first
	// page) and AfterValues its order values (Page.LastValues), required
	// with OrderBy.
	After       string
	AfterValues []any
	// Limit is the page size; 0 means 100.
	Limit int
	// MaxScan bounds the resources examined (DefaultMaxScan when 0): a
	// query that needs more to fill its page fails with CodeNeedsIndex
	// rather than scanning on.
	MaxScan int
}

// Page is one page of a resource listing.
type Page struct {
	Items []Resource
	// Revision is the store revision the page was read at.
	Revision int64
	// More reports whether more items follow the last one.
	More bool
	// LastValues are the order values of the last item, for the next
	// page's ListOptions.AfterValues (nil without OrderBy).
	LastValues []any
	// Index is the declared index the query read ("" for none), for
	// tests and diagnostics.
	Index string
}

// Matches reports whether r passes the options' selector and filter.
func (o ListOptions) Matches(d *Doc) bool {
	return Predicate{o.Selector, o.Filter}.Matches(d)
}

// IdempotentReply is a stored reply to a POST carrying an Idempotency-Key.
type IdempotentReply struct {
	Key string
	// Fingerprint identifies the request (method, path, body hash); a replay
	// with another fingerprint is ErrConflict.
	Fingerprint string
	Status      int
	Header      map[string]string
	Body        []byte
	CreatedAt   time.Time
}

// Store keeps collections, resources, the change log, idempotent replies
// and webhooks (Webhooks).
// Every write runs in one serialised transaction that increments the store's
// revision and appends the change to the change log; the store never
// publishes anything itself, it only wakes Notify's receiver after commit.
type Store interface {
	Webhooks

	// Epoch identifies this store's history; it changes when the history is
	// lost (a new database), so cursors from another epoch are rejected.
	Epoch() string

	// CreateCollection creates c. Errors: ErrConflict when it exists,
	// ErrInvalid for a bad name.
	CreateCollection(ctx context.Context, c Collection) (Collection, error)
	// GetCollection returns the named collection. Errors: ErrNotFound.
	GetCollection(ctx context.Context, name string) (Collection, error)
	// ListCollections returns every collection ordered by name.
	ListCollections(ctx context.Context) ([]Collection, error)
	// UpdateCollection replaces the schema, description and indexes of
	// collection c.Name under cond, taking a new revision (the collection's
	// new Revision) and appending a CollectionUpdated change. Errors:
	// ErrNotFound, ErrInvalid (bad schema, description or indexes),
	// ErrPreconditionFailed, ErrCollectionChanged (retryable).
	UpdateCollection(ctx context.Context, c Collection, cond CollectionCondition) (Collection, error)
	// DeleteCollection deletes a collection and its resources, appending a
	// Deleted change for every resource. Errors: ErrNotFound.
	DeleteCollection(ctx context.Context, name string) error

	// GetResource returns one resource. Errors: ErrNotFound (collection or resource).
	GetResource(ctx context.Context, collection, id string) (Resource, error)
	// PutResource creates or replaces r (Data and Labels) under cond and
	// returns the stored state and whether it was created. Errors:
	// ErrNotFound (collection missing, or resource missing with MustExist or
	// IfMatch), ErrPreconditionFailed, ErrInvalid (empty ID),
	// ErrCollectionChanged (cond.CollectionRevision mismatch).
	PutResource(ctx context.Context, r Resource, cond Precondition) (Resource, bool, error)
	// DeleteResource deletes a resource under cond and returns its last state
	// with the deletion's revision. Errors: ErrNotFound, ErrPreconditionFailed,
	// ErrCollectionChanged.
	DeleteResource(ctx context.Context, collection, id string, cond Precondition) (Resource, error)
	// ListResources returns a page of resources ordered by ID. Errors:
	// ErrNotFound when the collection is missing.
	ListResources(ctx context.Context, opts ListOptions) (Page, error)
	// Batch runs ops as one atomic write named id (a ValidName): in order,
	// each under its Cond against the state the earlier ones left, taking
	// len(ops) contiguous revisions and appending one change per operation
	// that carries BatchRef{id, last revision}. Either every operation is
	// committed or none is. Errors: ErrInvalid (bad id, no operations, more
	// than MaxBatchOps), a *BatchOpError naming the first failing operation
	// and wrapping its error as PutResource or DeleteResource would return
	// it (ErrInvalid, ErrNotFound, ErrPreconditionFailed), ErrUnavailable.
	Batch(ctx context.Context, id string, ops []BatchOp) (BatchResult, error)

	// Revision returns the latest committed revision.
	Revision(ctx context.Context) (int64, error)
	// Changes returns up to limit changes with revision > after, in revision
	// order. Errors: ErrCompacted when changes after `after` were already
	// removed by Compact, so the caller cannot resume without a gap.
	Changes(ctx context.Context, after int64, limit int) ([]Change, error)
	// Compact removes changes with revision <= through (keeping the latest
	// revision's entry so the log is never empty after writes).
	Compact(ctx context.Context, through int64) error
	// Notify returns a channel that receives a value (without blocking the
	// writer; buffered, coalesced) after each committed write. There is one
	// channel per store; only one goroutine should receive from it.
	Notify() <-chan struct{}

	// GetIdempotentReply returns the reply stored for key. Errors: ErrNotFound.
	GetIdempotentReply(ctx context.Context, key string) (IdempotentReply, error)
	// PutIdempotentReply stores a reply; an existing key is left unchanged
	// (ErrConflict).
	PutIdempotentReply(ctx context.Context, r IdempotentReply) error
	// ExpireIdempotentReplies deletes replies created before t.
	ExpireIdempotentReplies(ctx context.Context, before time.Time) error

	// Ping reports whether the store is usable (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the store.
	Close() error
}
