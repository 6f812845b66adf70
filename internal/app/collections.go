package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// CollectionSpec is what a collection is created with.
type CollectionSpec struct {
	Name string
	// Schema is a JSON Schema for every resource's data (nil or JSON null:
	// none).
	Schema      json.RawMessage
	Description string
	Indexes     []store.Index
}

// CreateCollectionSpec creates a collection with its schema, description
// and indexes, checking and compiling the schema first (as
// CreateCollection does). Errors: a ValidationError (invalid) for a bad
// name or description, a ValidationError (unprocessable) for an invalid
// or refused schema naming the place under /schema, a ValidationError
// (invalid-value) for a refused index naming it (/indexes/2/fields/0),
// store.ErrConflict when it exists, auth errors (admin on "collections").
func (a *App) CreateCollectionSpec(ctx context.Context, p auth.Principal, spec CollectionSpec) (store.Collection, error) {
	if err := a.Authorize(p, auth.ActionAdmin, collectionsPath()); err != nil {
		return store.Collection{}, err
	}
	if !store.ValidName(spec.Name) {
		return store.Collection{}, invalidField("/name", "must be 1–128 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	schema, cs, err := a.prepareDefinition(spec.Schema, spec.Description, spec.Indexes)
	if err != nil {
		return store.Collection{}, err
	}
	c, err := a.store.CreateCollection(ctx, store.Collection{Name: spec.Name, Schema: schema, Description: spec.Description,
		Indexes: spec.Indexes, CreatedAt: a.now().UTC()})
	if errors.Is(err, store.ErrConflict) {
		return c, store.Errorf(store.CodeConflict, "collection %q already exists", spec.Name)
	}
	if err == nil && cs != nil {
		a.cacheSchema(schemaKey{c.Name, c.Revision}, cs)
	}
	return c, err
}

// prepareDefinition checks a collection's definition and returns its
// schema compacted (nil for none) and compiled. Errors: as
// CreateCollectionSpec's validation errors.
func (a *App) prepareDefinition(schema json.RawMessage, description string, indexes []store.Index) (json.RawMessage, *collectionSchema, error) {
	if !utf8.ValidString(description) || utf8.RuneCountInString(description) > store.MaxDescription {
		return nil, nil, invalidField("/description", fmt.Sprintf("at most %d characters", store.MaxDescription))
	}
	if err := checkIndexes(indexes); err != nil {
		return nil, nil, err
	}
	t := bytes.TrimSpace(schema)
	if len(t) == 0 || bytes.Equal(t, []byte("null")) {
		return nil, nil, nil
	}
	cs, err := newCollectionSchema(t, a.budget)
	if err != nil {
		return nil, nil, err
	}
	return compact(t), cs, nil
}

// checkIndexes is store.CheckIndexes as a 422 naming the member.
func checkIndexes(ix []store.Index) error {
	var ie *store.IndexError
	if err := store.CheckIndexes(ix); errors.As(err, &ie) {
		return &ValidationError{Code: store.CodeInvalidValue, Message: ie.Error(), Fields: []FieldError{{Pointer: ie.Pointer, Detail: ie.Detail}}}
	} else if err != nil {
		return err
	}
	return nil
}

// UpdateOptions tune UpdateCollection.
type UpdateOptions struct {
	// IfMatch, when non-zero, is the collection revision the change
	// applies to (store.ErrPreconditionFailed otherwise).
	IfMatch int64
	// NewWritesOnly skips checking a new schema against the stored
	// resources: only writes after the change are validated by it.
	NewWritesOnly bool
}

// maxUpdateAttempts bounds UpdateCollection's rounds when the collection
// or its resources keep changing between its check and its write.
const maxUpdateAttempts = 8

// UpdateCollection applies a JSON Merge Patch (RFC 7396) of {schema,
// indexes, description} to a collection. A new schema is first checked
// against every stored resource (unless opts.NewWritesOnly), within the
// App's schema-check budget (Options.SchemaCheckTimeout); resources
// written while it runs are checked too before the change commits. The
// change takes a new revision and every subscriber of the collection's
// topic gets a collection.updated event. Errors: auth errors (admin on
// the collection), store.ErrNotFound, store.ErrPreconditionFailed
// (opts.IfMatch), a ValidationError (invalid) for a patch that is not an
// object of those members or a bad description, a ValidationError
// (unprocessable) for an invalid schema, a *SchemaOffendersError listing
// the first stored resources the new schema refuses, a ValidationError
// (invalid-value) for a refused index or when the check did not finish
// within its budget, store.ErrConflict when the collection or its
// resources kept changing, ctx's error.
func (a *App) UpdateCollection(ctx context.Context, p auth.Principal, name string, patch json.RawMessage, opts UpdateOptions) (store.Collection, error) {
	if err := a.Authorize(p, auth.ActionAdmin, collectionPath(name)); err != nil {
		return store.Collection{}, err
	}
	members, err := checkCollectionPatch(patch)
	if err != nil {
		return store.Collection{}, err
	}
	for range maxUpdateAttempts {
		cur, err := a.store.GetCollection(ctx, name)
		if err != nil {
			return store.Collection{}, err
		}
		if opts.IfMatch != 0 && opts.IfMatch != cur.Revision {
			return store.Collection{}, store.Errorf(store.CodePreconditionFailed, "If-Match %d does not match the collection's revision %d", opts.IfMatch, cur.Revision)
		}
		next, err := mergeCollection(cur, patch)
		if err != nil {
			return store.Collection{}, err
		}
		if _, ok := members["schema"]; !ok {
			next.Schema = cur.Schema // as stored, not re-encoded by the merge
		}
		schema, cs, err := a.prepareDefinition(next.Schema, next.Description, next.Indexes)
		if err != nil {
			return store.Collection{}, err
		}
		next.Schema = schema
		var chk *schemaCheck
		if cs != nil && !opts.NewWritesOnly && !bytes.Equal(schema, compact(cur.Schema)) {
			chk = a.newSchemaCheck(ctx, name, cs)
		}
		c, err := a.writeChecked(ctx, next, store.CollectionCondition{IfMatch: cur.Revision}, chk)
		if a.rcache != nil {
			a.rcache.invalidateCollection(name)
		}
		a.forgetCollection(name)
		switch {
		case err == nil:
			if cs != nil {
				a.cacheSchema(schemaKey{c.Name, c.Revision}, cs)
			}
			return c, nil
		case errors.Is(err, store.ErrPreconditionFailed) && opts.IfMatch != 0:
			return store.Collection{}, store.Errorf(store.CodePreconditionFailed, "If-Match %d does not match the collection's revision: it changed meanwhile", opts.IfMatch)
		case errors.Is(err, store.ErrPreconditionFailed):
			continue // the collection changed meanwhile: merge, check and write again
		case errors.Is(err, store.ErrCollectionChanged):
			return store.Collection{}, store.Errorf(store.CodeConflict, "the resources of collection %q kept changing while the new schema was checked; try again", name)
		case errors.Is(err, store.ErrInvalid):
			return store.Collection{}, invalidField("", store.ErrorMessage(err))
		default:
			return store.Collection{}, err
		}
	}
	return store.Collection{}, store.Errorf(store.CodeConflict, "collection %q or its resources changed %d times while the change was checked; try again", name, maxUpdateAttempts)
}

// writeChecked writes next under cond. With chk (a new schema to check
// the stored resources against), it runs the check first, and while the
// store answers that resources were written after the point checked, it
// checks those and writes again, up to maxUpdateAttempts times; it closes
// chk. Errors: UpdateCollection's, chk's.
func (a *App) writeChecked(ctx context.Context, next store.Collection, cond store.CollectionCondition, chk *schemaCheck) (store.Collection, error) {
	if chk == nil {
		return a.store.UpdateCollection(ctx, next, cond)
	}
	defer chk.close()
	var err error
	if cond.CheckedThrough, err = chk.run(); err != nil {
		return store.Collection{}, err
	}
	for i := 1; ; i++ {
		c, err := a.store.UpdateCollection(ctx, next, cond)
		if !errors.Is(err, store.ErrCollectionChanged) || i == maxUpdateAttempts {
			return c, err
		}
		if cond.CheckedThrough, err = chk.more(cond.CheckedThrough); err != nil {
			return store.Collection{}, err
		}
	}
}

// checkCollectionPatch refuses a patch that is not a JSON object of
// schema, indexes and description with values of the right kinds, and
// returns its members. Errors: a ValidationError (invalid) naming the
// member.
func checkCollectionPatch(patch json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(patch, &m); err != nil || m == nil {
		return nil, invalidField("", "a merge patch of a collection is a JSON object with optional schema, indexes and description members")
	}
	for k, v := range m {
		v = bytes.TrimSpace(v)
		null := bytes.Equal(v, []byte("null"))
		switch k {
		case "schema":
			if !null && v[0] != '{' && v[0] != 't' && v[0] != 'f' {
				return nil, invalidField("/schema", "must be a JSON Schema (an object or a boolean) or null")
			}
		case "indexes":
			var ix []indexJSON
			if !null && json.Unmarshal(v, &ix) != nil {
				return nil, invalidField("/indexes", `must be an array of {"fields": [...]} or null`)
			}
		case "description":
			var d string
			if !null && json.Unmarshal(v, &d) != nil {
				return nil, invalidField("/description", "must be a string or null")
			}
		default:
			return nil, invalidField("/"+escapePointer(k), "unknown member: a collection's patch may change schema, indexes and description")
		}
	}
	return m, nil
}

// indexJSON is an index declaration as the API carries it.
type indexJSON struct {
	Fields []string `json:"fields"`
}

// mergeCollection applies patch (checked by checkCollectionPatch) to the
// definition of cur: the document {schema, indexes, description} with
// the members cur has. Errors: a ValidationError when the result is not a
// definition.
func mergeCollection(cur store.Collection, patch json.RawMessage) (store.Collection, error) {
	doc := map[string]any{}
	if cur.Schema != nil {
		doc["schema"] = cur.Schema
	}
	if len(cur.Indexes) > 0 {
		ix := make([]indexJSON, 0, len(cur.Indexes))
		for _, x := range cur.Indexes {
			ix = append(ix, indexJSON{Fields: x.Fields})
		}
		doc["indexes"] = ix
	}
	if cur.Description != "" {
		doc["description"] = cur.Description
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return store.Collection{}, err
	}
	merged, err := MergePatch(b, patch)
	if err != nil {
		return store.Collection{}, err
	}
	var out struct {
		Schema      json.RawMessage `json:"schema"`
		Indexes     []indexJSON     `json:"indexes"`
		Description string          `json:"description"`
	}
	if err := json.Unmarshal(merged, &out); err != nil {
		return store.Collection{}, invalidField("", "the patched collection is not a collection definition")
	}
	next := store.Collection{Name: cur.Name, Schema: out.Schema, Description: out.Description}
	for _, x := range out.Indexes {
		next.Indexes = append(next.Indexes, store.Index{Fields: x.Fields})
	}
	return next, nil
}
