// Package app is Tandem's one use-case layer. Every operation a client can
// perform — resource CRUD, subscribe and unsubscribe, publish, history,
// presence, long-poll, idempotent replies — is a method of App that takes
// the caller's principal, and App owns every policy around it:
// authorisation (Authorize), channel namespaces (client publishing,
// presence, message size), topic routing to the resource or channel
// engine, cursor and epoch checks, subscription caps, collection schemas
// and preconditions. Transports (httpapi, wsapi) decode, call App and
// encode (through internal/wire); they never reach the store, the broker
// or the stream engines, and App knows nothing of HTTP, WebSocket or
// generated types.
package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// Options configures an App. The zero value is usable.
type Options struct {
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Validation bounds each validation of a write's data against its
	// collection's schema; zero fields take the defaults
	// (DefaultValidationSteps, DefaultValidationTimeout).
	Validation ValidationBudget
	// SchemaCheckTimeout bounds UpdateCollection's check of the stored
	// resources against a new schema; 0 means DefaultSchemaCheckTimeout.
	SchemaCheckTimeout time.Duration
	// Realtime wires the streaming engines (required for the realtime use
	// cases: Subscribe, Poll, Publish, History, Presence).
	Realtime Realtime
	// Webhooks configures webhook delivery (RunWebhooks); without a
	// Sender the webhook API answers 503.
	Webhooks WebhookOptions
	// Hooks configures the calls to the application (the connect hook,
	// the caller; the others are per namespace in Realtime.Namespaces).
	Hooks HookOptions
	// Node names this node (connections, webhook leases); "": random.
	Node string
	// Cluster carries the connection commands to every node; nil: this
	// node only.
	Cluster Cluster
	// MaxScan bounds the resources one list request (or one page of a
	// filtered snapshot) examines; 0 means store.DefaultMaxScan.
	MaxScan int
	// MaxBatchOps bounds the operations of one batch (Batch); 0 means
	// DefaultMaxBatchOps, and it is at most store.MaxBatchOps.
	MaxBatchOps int
	// ResourceEncoder encodes the resources GetResourceEncoded returns
	// (required for it).
	ResourceEncoder ResourceEncoder
	// ResourceCache configures the cache of encoded resources behind
	// GetResourceEncoded (the zero value: no cache).
	ResourceCache ResourceCacheOptions
}

// App implements the use cases on top of a store.Store and the streaming
// engines.
type App struct {
	store store.Store
	rt    Realtime
	wh    *webhooks
	hooks *hooks
	conns LocalConnections // nil until AttachConnections
	// node names this node; cluster carries commands to the others (nil:
	// one node).
	node    string
	cluster Cluster
	log     *slog.Logger
	now     func() time.Time
	ids     idGen
	// budget bounds each validation of data against a schema.
	budget ValidationBudget
	// maxScan bounds the resources a list examines (0: the store's default).
	maxScan int
	// maxBatchOps bounds the operations of one batch.
	maxBatchOps int
	// checkTimeout bounds the check of stored resources against a new schema.
	checkTimeout time.Duration
	// resEnc encodes resources for GetResourceEncoded; rcache caches its
	// output (nil: no cache).
	resEnc ResourceEncoder
	rcache *resourceCache

	mu      sync.Mutex
	schemas map[schemaKey]*collectionSchema
	// colls holds the collections writes were last validated against
	// (under mu; see collectionFor).
	colls map[string]store.Collection

	// idem serialises the requests of one idempotency key (striped).
	idem [64]sync.Mutex
}

type schemaKey struct {
	name     string
	revision int64
}

// New returns an App using s.
func New(s store.Store, opts Options) *App {
	if opts.Node == "" {
		opts.Node = randomNode()
	}
	if opts.Webhooks.Node == "" {
		opts.Webhooks.Node = opts.Node
	}
	a := &App{store: s, rt: opts.Realtime, log: opts.Logger, now: opts.Now, budget: opts.Validation.withDefaults(), schemas: map[schemaKey]*collectionSchema{}, wh: newWebhooks(opts.Webhooks), hooks: newHooks(opts.Hooks), node: opts.Node, cluster: opts.Cluster, maxScan: opts.MaxScan}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	a.maxBatchOps = min(store.MaxBatchOps, opts.MaxBatchOps)
	if a.maxBatchOps <= 0 {
		a.maxBatchOps = DefaultMaxBatchOps
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.checkTimeout = opts.SchemaCheckTimeout
	if a.checkTimeout <= 0 {
		a.checkTimeout = DefaultSchemaCheckTimeout
	}
	a.resEnc = opts.ResourceEncoder
	if feed := a.feed(); feed != nil && a.resEnc != nil && opts.ResourceCache.Bytes > 0 {
		a.rcache = newResourceCache(opts.ResourceCache.Bytes, opts.ResourceCache.MaxLag, feed.CaughtUp)
		feed.Observe(a.rcache)
	}
	return a
}

// feed is the change feed of the realtime engines (nil without them).
func (a *App) feed() *stream.Feed {
	if a.rt.Resources == nil {
		return nil
	}
	return a.rt.Resources.Feed
}

// Ping checks that the store answers (readiness). Errors: the store's.
func (a *App) Ping(ctx context.Context) error { return a.store.Ping(ctx) }

// CreateCollection creates a collection, checking and compiling its
// schema first: a schema over one of the limits (MaxSchemaBytes,
// MaxSchemaDepth, MaxSchemaSubschemas, MaxSchemaDepthSum,
// MaxSchemaExpansion), with a reference cycle, or whose validation cost
// doubles with each level of the data's nesting is refused. Errors:
// store.ErrInvalid (bad name), a ValidationError (unprocessable) for an
// invalid or refused schema, naming the place under /schema,
// store.ErrConflict when it exists, auth errors (admin on "collections").
// CreateCollectionSpec also takes a description and indexes.
func (a *App) CreateCollection(ctx context.Context, p auth.Principal, name string, schema json.RawMessage) (store.Collection, error) {
	return a.CreateCollectionSpec(ctx, p, CollectionSpec{Name: name, Schema: schema})
}

// GetCollection returns a collection. Errors: auth errors,
// store.ErrNotFound.
func (a *App) GetCollection(ctx context.Context, p auth.Principal, name string) (store.Collection, error) {
	if err := a.Authorize(p, auth.ActionRead, collectionPath(name)); err != nil {
		return store.Collection{}, err
	}
	return a.store.GetCollection(ctx, name)
}

// ListCollections returns every collection ordered by name. Errors: auth
// errors, the store's.
func (a *App) ListCollections(ctx context.Context, p auth.Principal) ([]store.Collection, error) {
	if err := a.Authorize(p, auth.ActionRead, collectionsPath()); err != nil {
		return nil, err
	}
	return a.store.ListCollections(ctx)
}

// DeleteCollection deletes a collection and its resources. Errors: auth
// errors (admin), store.ErrNotFound.
func (a *App) DeleteCollection(ctx context.Context, p auth.Principal, name string) error {
	if err := a.Authorize(p, auth.ActionAdmin, collectionPath(name)); err != nil {
		return err
	}
	err := a.store.DeleteCollection(ctx, name)
	if a.rcache != nil {
		a.rcache.invalidateCollection(name)
	}
	a.forgetCollection(name)
	return err
}

// collectionFor returns the collection a write to it is validated
// against. Unless fresh, it may come from a small cache: the store binds
// the write to the revision it carries (Precondition.CollectionRevision)
// and refuses it with store.ErrCollectionChanged if the collection has
// changed since — on this node or another — so a stale entry costs one
// retry with fresh set, never a write checked against an old schema. A
// create then no longer reads its collection from the store each time.
// Errors: GetCollection's.
func (a *App) collectionFor(ctx context.Context, name string, fresh bool) (store.Collection, error) {
	if !fresh {
		a.mu.Lock()
		c, ok := a.colls[name]
		a.mu.Unlock()
		if ok {
			return c, nil
		}
	}
	c, err := a.store.GetCollection(ctx, name)
	if err != nil {
		a.forgetCollection(name)
		return c, err
	}
	a.mu.Lock()
	if a.colls == nil || len(a.colls) >= 1024 { // bounded: start over
		a.colls = map[string]store.Collection{}
	}
	a.colls[name] = c
	a.mu.Unlock()
	return c, nil
}

// forgetCollection drops name from collectionFor's cache.
func (a *App) forgetCollection(name string) {
	a.mu.Lock()
	delete(a.colls, name)
	a.mu.Unlock()
}

// schemaFor returns the checked, compiled schema of collection c (nil
// when it has none). A stored schema goes through the same checks as at
// creation, so one stored before a limit existed cannot cost more than
// they allow. Errors: a ValidationError (unprocessable) when the stored
// schema fails them, wrapped with the collection's name.
func (a *App) schemaFor(c store.Collection) (*collectionSchema, error) {
	if c.Schema == nil {
		return nil, nil
	}
	k := schemaKey{c.Name, c.Revision}
	a.mu.Lock()
	s, ok := a.schemas[k]
	a.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := newCollectionSchema(c.Schema, a.budget)
	if err != nil {
		return nil, fmt.Errorf("stored schema of %q: %w", c.Name, err)
	}
	a.cacheSchema(k, s)
	return s, nil
}

func (a *App) cacheSchema(k schemaKey, s *collectionSchema) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.schemas) > 1024 { // bounded cache: collections are few; start over if not
		a.schemas = map[schemaKey]*collectionSchema{}
	}
	a.schemas[k] = s
}

// check validates data and labels for collection c, reporting pointers
// relative to the request body. The schema validation is bounded by the
// App's ValidationBudget and stops when ctx is done.
func (a *App) check(ctx context.Context, collection string, data json.RawMessage, labels map[string]string) (json.RawMessage, error) {
	data, _, err := a.checkAt(ctx, collection, data, labels, true)
	return data, err
}

// checkAt is check that also returns the revision of the collection whose
// schema validated the data (store.Precondition.CollectionRevision); the
// collection may be a cached one unless fresh (see collectionFor), so
// only a write bound to that revision may use fresh = false.
func (a *App) checkAt(ctx context.Context, collection string, data json.RawMessage, labels map[string]string, fresh bool) (json.RawMessage, int64, error) {
	c, err := a.collectionFor(ctx, collection, fresh)
	if err != nil {
		return nil, 0, err
	}
	return a.checkIn(ctx, c, "", data, labels)
}

// checkIn is check for the collection c, with pointers under prefix (""
// for a body that is the resource, "/operations/3" in a batch).
func (a *App) checkIn(ctx context.Context, c store.Collection, prefix string, data json.RawMessage, labels map[string]string) (json.RawMessage, int64, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || trimmed[0] != '{' || !json.Valid(trimmed) {
		return nil, 0, invalidField(prefix+"/data", "must be a JSON object")
	}
	if err := checkLabels(prefix, labels); err != nil {
		return nil, 0, err
	}
	s, err := a.schemaFor(c)
	if err != nil {
		return nil, 0, err
	}
	if err := validateData(ctx, s, trimmed, prefix+"/data"); err != nil {
		return nil, 0, err
	}
	return compact(trimmed), c.Revision, nil
}

// maxSchemaRaces bounds putChecked's retries when the collection keeps
// changing between a write's validation and its commit.
const maxSchemaRaces = 4

// putChecked validates r's data and labels against its collection's
// schema and writes r under cond, bound to the collection revision it
// validated against: when the collection changed in between
// (UpdateCollection), it validates again against the new schema. Errors:
// check's, PutResource's, store.ErrConflict when the collection kept
// changing.
func (a *App) putChecked(ctx context.Context, r store.Resource, cond store.Precondition) (store.Resource, bool, error) {
	raw := r.Data
	for attempt := 0; ; attempt++ {
		data, rev, err := a.checkAt(ctx, r.Collection, raw, r.Labels, attempt > 0)
		if err != nil {
			return store.Resource{}, false, err
		}
		r.Data, cond.CollectionRevision = data, rev
		out, created, err := a.store.PutResource(ctx, r, cond)
		a.rcache.written(resKey{r.Collection, r.ID}, out.Revision)
		if !errors.Is(err, store.ErrCollectionChanged) {
			return out, created, err
		}
		if attempt == maxSchemaRaces {
			return store.Resource{}, false, store.Errorf(store.CodeConflict, "collection %q changed %d times while the write was validated against its schema; try again", r.Collection, maxSchemaRaces+1)
		}
	}
}

func checkLabels(prefix string, labels map[string]string) error {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var fields []FieldError
	for _, k := range keys {
		switch {
		case !store.ValidLabelKey(k):
			fields = append(fields, FieldError{Pointer: prefix + "/labels/" + escapePointer(k), Detail: "invalid label key: 1–63 letters, digits, '-', '_', '.', '/', starting with a letter or digit"})
		case !store.ValidLabelValue(labels[k]):
			fields = append(fields, FieldError{Pointer: prefix + "/labels/" + escapePointer(k), Detail: "invalid label value: up to 63 letters, digits, '-', '_', '.'"})
		}
	}
	if len(fields) > 64 {
		fields = fields[:64]
	}
	if len(fields) > 0 {
		return &ValidationError{Code: store.CodeInvalid, Message: fmt.Sprintf("%s: %s", fields[0].Pointer, fields[0].Detail), Fields: fields}
	}
	return nil
}

// CreateResource creates a resource; an empty id gets a server-made,
// sortable ID. The data is validated against the collection's schema as
// of the write's commit (putChecked). Errors: store.ErrNotFound
// (collection), store.ErrInvalid or a ValidationError (invalid id, data
// or labels), store.ErrConflict when the ID is taken (or the collection
// kept changing), auth errors (write on the collection's resources).
func (a *App) CreateResource(ctx context.Context, p auth.Principal, collection, id string, data json.RawMessage, labels map[string]string) (store.Resource, error) {
	if err := a.Authorize(p, auth.ActionWrite, stream.CollectionTopic(collection)); err != nil {
		return store.Resource{}, err
	}
	if id == "" {
		id = a.ids.next(a.now())
	} else if !store.ValidName(id) {
		return store.Resource{}, invalidField("/id", "must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	r, _, err := a.putChecked(ctx, a.stamp(collection, id, data, labels), store.Precondition{CreateOnly: true})
	if errors.Is(err, store.ErrPreconditionFailed) {
		return r, store.Errorf(store.CodeConflict, "resource %q already exists in collection %q", id, collection)
	}
	return r, err
}

func (a *App) stamp(collection, id string, data json.RawMessage, labels map[string]string) store.Resource {
	if labels == nil {
		labels = map[string]string{}
	}
	now := a.now().UTC()
	return store.Resource{Collection: collection, ID: id, Data: data, Labels: labels, CreatedAt: now, UpdatedAt: now}
}

// ReplaceResource creates or replaces a resource under cond and reports
// whether it was created. Errors: store.ErrNotFound, store.ErrInvalid or a
// ValidationError, store.ErrPreconditionFailed, store.ErrConflict (the
// collection kept changing), auth errors (write).
func (a *App) ReplaceResource(ctx context.Context, p auth.Principal, collection, id string, data json.RawMessage, labels map[string]string, cond store.Precondition) (store.Resource, bool, error) {
	if err := a.Authorize(p, auth.ActionWrite, stream.ResourceTopic(collection, id)); err != nil {
		return store.Resource{}, false, err
	}
	return a.putChecked(ctx, a.stamp(collection, id, data, labels), cond)
}

// maxPatchAttempts bounds the optimistic retries of PatchResource when
// concurrent writers keep changing the resource.
const maxPatchAttempts = 16

// PatchResource applies a JSON Merge Patch of {"data", "labels"} to a
// resource. With ifMatch == 0 it retries on concurrent writes, so no
// update is lost. Errors: store.ErrNotFound, store.ErrInvalid or a
// ValidationError, store.ErrPreconditionFailed (ifMatch mismatch), and
// store.ErrConflict when retries are exhausted, auth errors (write).
func (a *App) PatchResource(ctx context.Context, p auth.Principal, collection, id string, patch json.RawMessage, ifMatch int64) (store.Resource, error) {
	if err := a.Authorize(p, auth.ActionWrite, stream.ResourceTopic(collection, id)); err != nil {
		return store.Resource{}, err
	}
	var parts struct {
		Data   json.RawMessage `json:"data"`
		Labels json.RawMessage `json:"labels"`
	}
	if err := json.Unmarshal(patch, &parts); err != nil {
		return store.Resource{}, invalidField("", "merge patch must be a JSON object with optional data and labels members")
	}
	if bytes.Equal(bytes.TrimSpace(parts.Data), []byte("null")) {
		return store.Resource{}, invalidField("/data", "data cannot be removed; patch its members instead")
	}
	for attempt := 0; ; attempt++ {
		cur, err := a.store.GetResource(ctx, collection, id)
		if err != nil {
			return store.Resource{}, err
		}
		if ifMatch != 0 && cur.Revision != ifMatch {
			return store.Resource{}, store.Errorf(store.CodePreconditionFailed, "If-Match %d does not match the current revision %d", ifMatch, cur.Revision)
		}
		data, labels, err := mergeResource(cur, "", parts.Data, parts.Labels)
		if err != nil {
			return store.Resource{}, err
		}
		r := a.stamp(collection, id, data, labels)
		r.CreatedAt = cur.CreatedAt
		out, _, err := a.putChecked(ctx, r, store.Precondition{IfMatch: cur.Revision})
		if errors.Is(err, store.ErrPreconditionFailed) && ifMatch == 0 && attempt < maxPatchAttempts {
			continue
		}
		if errors.Is(err, store.ErrPreconditionFailed) && ifMatch == 0 {
			return store.Resource{}, store.Errorf(store.CodeConflict, "resource %q changed concurrently %d times; try again", id, maxPatchAttempts)
		}
		return out, err
	}
}

// GetResource returns a resource. Errors: auth errors (read),
// store.ErrNotFound.
func (a *App) GetResource(ctx context.Context, p auth.Principal, collection, id string) (store.Resource, error) {
	if err := a.Authorize(p, auth.ActionRead, stream.ResourceTopic(collection, id)); err != nil {
		return store.Resource{}, err
	}
	return a.store.GetResource(ctx, collection, id)
}

// GetResourceEncoded is GetResource answering the resource encoded by the
// App's ResourceEncoder, from the resource cache when it holds the
// resource (see ResourceCacheOptions for how current a cached answer is).
// The caller is authorised on every call, hit or miss. Errors: auth
// errors (read), store.ErrNotFound, the store's, an encoding error, and
// an internal error when the App has no ResourceEncoder.
func (a *App) GetResourceEncoded(ctx context.Context, p auth.Principal, collection, id string) (EncodedResource, error) {
	if err := a.Authorize(p, auth.ActionRead, stream.ResourceTopic(collection, id)); err != nil {
		return EncodedResource{}, err
	}
	if a.resEnc == nil {
		return EncodedResource{}, errors.New("app: GetResourceEncoded needs Options.ResourceEncoder")
	}
	k := resKey{collection, id}
	var gen uint64
	if a.rcache != nil {
		res, g, ok := a.rcache.get(k)
		if ok {
			return res, nil
		}
		gen = g
	}
	r, err := a.store.GetResource(ctx, collection, id)
	if err != nil {
		return EncodedResource{}, err
	}
	body, tag, err := a.resEnc.EncodeResource(r)
	if err != nil {
		return EncodedResource{}, fmt.Errorf("encode resource %q of %q: %w", id, collection, err)
	}
	res := EncodedResource{Revision: r.Revision, Body: body, Tag: tag}
	if a.rcache != nil {
		a.rcache.put(k, gen, res)
	}
	return res, nil
}

// ResourceCacheStats returns the resource cache's counters (Enabled is
// false without a cache). It returns no error.
func (a *App) ResourceCacheStats() ResourceCacheStats {
	if a.rcache == nil {
		return ResourceCacheStats{}
	}
	return a.rcache.stats()
}

// DeleteResource deletes a resource under cond. Errors: auth errors
// (write), store.ErrNotFound, store.ErrPreconditionFailed.
func (a *App) DeleteResource(ctx context.Context, p auth.Principal, collection, id string, cond store.Precondition) (store.Resource, error) {
	if err := a.Authorize(p, auth.ActionWrite, stream.ResourceTopic(collection, id)); err != nil {
		return store.Resource{}, err
	}
	r, err := a.store.DeleteResource(ctx, collection, id, cond)
	a.rcache.written(resKey{collection, id}, r.Revision)
	return r, err
}

// ListResources returns one page of resources, examining at most the
// App's MaxScan resources. Errors: auth errors (read), store.ErrNotFound,
// store.ErrInvalid (a bad order field or page position), CodeNeedsIndex
// (the query needs more than the scan budget: the message names the
// fields to index).
func (a *App) ListResources(ctx context.Context, p auth.Principal, opts store.ListOptions) (store.Page, error) {
	if err := a.Authorize(p, auth.ActionRead, stream.CollectionTopic(opts.Collection)); err != nil {
		return store.Page{}, err
	}
	if opts.MaxScan == 0 {
		opts.MaxScan = a.maxScan
	}
	return a.store.ListResources(ctx, opts)
}

func invalidField(pointer, detail string) error {
	msg := detail
	if pointer != "" {
		msg = pointer + ": " + detail
	}
	return &ValidationError{Code: store.CodeInvalid, Message: msg, Fields: []FieldError{{Pointer: pointer, Detail: detail}}}
}

func escapePointer(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		switch r {
		case '~':
			b.WriteString("~0")
		case '/':
			b.WriteString("~1")
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func compact(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}
