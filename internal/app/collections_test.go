package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/store/sqlite"
)

// hookStore runs a function once before the first UpdateCollection or
// PutResource that reaches it, to land a write in a use case's window.
type hookStore struct {
	store.Store
	beforeUpdate, beforePut func()
	updateOnce, putOnce     sync.Once
	// beforeEachUpdate runs before every UpdateCollection.
	beforeEachUpdate func()
}

func (h *hookStore) UpdateCollection(ctx context.Context, c store.Collection, cond store.CollectionCondition) (store.Collection, error) {
	if h.beforeUpdate != nil {
		h.updateOnce.Do(h.beforeUpdate)
	}
	if h.beforeEachUpdate != nil {
		h.beforeEachUpdate()
	}
	return h.Store.UpdateCollection(ctx, c, cond)
}

func (h *hookStore) PutResource(ctx context.Context, r store.Resource, cond store.Precondition) (store.Resource, bool, error) {
	if h.beforePut != nil {
		h.putOnce.Do(h.beforePut)
	}
	return h.Store.PutResource(ctx, r, cond)
}

// newCollectionApp is an App on a fresh SQLite store (behind a hookStore)
// with collection c created with schema.
func newCollectionApp(t *testing.T, opts Options, schema string) (*App, *hookStore) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "app.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	hs := &hookStore{Store: st}
	a := New(hs, opts)
	if _, err := a.CreateCollectionSpec(t.Context(), everyone, CollectionSpec{Name: "c", Schema: json.RawMessage(schema),
		Description: "d", Indexes: []store.Index{{Fields: []string{"data.a"}}}}); err != nil {
		t.Fatal(err)
	}
	return a, hs
}

func (a *App) mustPut(t *testing.T, id, data string) store.Resource {
	t.Helper()
	r, _, err := a.ReplaceResource(t.Context(), everyone, "c", id, json.RawMessage(data), nil, store.Precondition{})
	if err != nil {
		t.Fatalf("put %s: %v", id, err)
	}
	return r
}

func TestUpdateCollectionMerge(t *testing.T) {
	const base = `{"type":"object","properties":{"a":{"type":"string"}}}`
	tests := []struct {
		name, patch string
		want        func(c store.Collection) string // "" when c is right
	}{
		{"MergesIntoSchema", `{"schema":{"required":["a"]}}`, func(c store.Collection) string {
			var s map[string]any
			_ = json.Unmarshal(c.Schema, &s)
			if s["type"] != "object" || s["properties"] == nil || s["required"] == nil || c.Description != "d" || len(c.Indexes) != 1 {
				return "schema keywords or other members lost"
			}
			return ""
		}},
		{"RemovesKeyword", `{"schema":{"properties":null}}`, func(c store.Collection) string {
			return cond(string(c.Schema) == `{"type":"object"}`, "properties kept")
		}},
		{"RemovesSchema", `{"schema":null}`, func(c store.Collection) string { return cond(c.Schema == nil, "schema kept") }},
		{"KeepsSchemaBytes", `{"description":"new"}`, func(c store.Collection) string {
			return cond(string(c.Schema) == base && c.Description == "new", "schema re-encoded or description not set")
		}},
		{"ReplacesIndexes", `{"indexes":[{"fields":["labels.env","createdAt"]}]}`, func(c store.Collection) string {
			return cond(reflect.DeepEqual(c.Indexes, []store.Index{{Fields: []string{"labels.env", "createdAt"}}}), "indexes not replaced")
		}},
		{"RemovesIndexesAndDescription", `{"indexes":null,"description":null}`, func(c store.Collection) string {
			return cond(c.Indexes == nil && c.Description == "", "kept")
		}},
		{"EmptyIndexes", `{"indexes":[]}`, func(c store.Collection) string { return cond(c.Indexes == nil, "kept") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newCollectionApp(t, Options{}, base)
			c, err := a.UpdateCollection(t.Context(), everyone, "c", json.RawMessage(tc.patch), UpdateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if msg := tc.want(c); msg != "" {
				t.Fatalf("%s: %+v (schema %s)", msg, c, c.Schema)
			}
			got, err := a.GetCollection(t.Context(), everyone, "c")
			if err != nil || !reflect.DeepEqual(got, c) {
				t.Fatalf("GetCollection = %+v, %v; want %+v", got, err, c)
			}
		})
	}
}

func cond(ok bool, msg string) string {
	if ok {
		return ""
	}
	return msg
}

func TestUpdateCollectionRefuses(t *testing.T) {
	tests := []struct {
		name, patch string
		code        store.Code
		pointer     string
	}{
		{"NotAnObject", `[1]`, store.CodeInvalid, ""},
		{"Null", `null`, store.CodeInvalid, ""},
		{"UnknownMember", `{"colour":1}`, store.CodeInvalid, "/colour"},
		{"SchemaNotASchema", `{"schema":12}`, store.CodeInvalid, "/schema"},
		{"InvalidSchema", `{"schema":{"type":12}}`, store.CodeUnprocessable, "/schema"},
		{"LongDescription", fmt.Sprintf(`{"description":%q}`, strings.Repeat("x", 1025)), store.CodeInvalid, "/description"},
		{"BadIndexField", `{"indexes":[{"fields":["id"]},{"fields":["data.a","data.b c"]}]}`, store.CodeInvalidValue, "/indexes/1/fields/1"},
		{"DuplicateIndex", `{"indexes":[{"fields":["id"]},{"fields":["id"]}]}`, store.CodeInvalidValue, "/indexes/1"},
		{"TooManyFields", `{"indexes":[{"fields":["id","revision","createdAt","updatedAt","labels.x"]}]}`, store.CodeInvalidValue, "/indexes/0/fields"},
		{"TooManyIndexes", `{"indexes":[` + strings.Repeat(`{"fields":["id"]},`, 16) + `{"fields":["id"]}]}`, store.CodeInvalidValue, "/indexes"},
		{"DeepPath", `{"indexes":[{"fields":["data.a.b.c.d.e.f.g.h.i"]}]}`, store.CodeInvalidValue, "/indexes/0/fields/0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := newCollectionApp(t, Options{}, `{"type":"object"}`)
			before, _ := a.GetCollection(t.Context(), everyone, "c")
			_, err := a.UpdateCollection(t.Context(), everyone, "c", json.RawMessage(tc.patch), UpdateOptions{})
			var ve *ValidationError
			if store.ErrorCode(err) != tc.code || !errors.As(err, &ve) || ve.Fields[0].Pointer != tc.pointer {
				t.Fatalf("UpdateCollection = %v (code %q), want %q naming %q", err, store.ErrorCode(err), tc.code, tc.pointer)
			}
			if after, _ := a.GetCollection(t.Context(), everyone, "c"); !reflect.DeepEqual(after, before) {
				t.Fatalf("a refused patch changed the collection: %+v", after)
			}
		})
	}
}

func TestUpdateCollectionConditions(t *testing.T) {
	a, _ := newCollectionApp(t, Options{}, `{"type":"object"}`)
	c, _ := a.GetCollection(t.Context(), everyone, "c")
	writer := principal(auth.KindJWT, "w", "read:**", "write:**")
	tests := []struct {
		name string
		p    auth.Principal
		coll string
		opts UpdateOptions
		want error
	}{
		{"NotAdmin", writer, "c", UpdateOptions{}, auth.ErrInsufficientScope},
		{"AdminElsewhere", principal(auth.KindJWT, "o", "admin:collections/other"), "c", UpdateOptions{}, auth.ErrInsufficientScope},
		{"NotFound", everyone, "nope", UpdateOptions{}, store.ErrNotFound},
		{"StaleIfMatch", everyone, "c", UpdateOptions{IfMatch: c.Revision + 1}, store.ErrPreconditionFailed},
		{"IfMatch", principal(auth.KindJWT, "o", "admin:collections/c"), "c", UpdateOptions{IfMatch: c.Revision}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.UpdateCollection(t.Context(), tc.p, tc.coll, json.RawMessage(`{"description":"x"}`), tc.opts)
			if (tc.want == nil && err != nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("UpdateCollection = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestUpdateCollectionChecksStoredResources(t *testing.T) {
	a, _ := newCollectionApp(t, Options{}, `{"type":"object"}`)
	for i := range 40 { // more than one page
		a.mustPut(t, fmt.Sprintf("ok-%02d", i), `{"n":1}`)
	}
	a.mustPut(t, "bad-1", `{"n":"one"}`)
	a.mustPut(t, "bad-2", `{}`)
	tight := json.RawMessage(`{"schema":{"required":["n"],"properties":{"n":{"type":"integer"}}}}`)
	_, err := a.UpdateCollection(t.Context(), everyone, "c", tight, UpdateOptions{})
	var oe *SchemaOffendersError
	if !errors.As(err, &oe) || store.ErrorCode(err) != store.CodeUnprocessable {
		t.Fatalf("UpdateCollection = %v, want the offenders", err)
	}
	want := []SchemaOffender{{ID: "bad-1", Pointer: "/data/n"}, {ID: "bad-2", Pointer: "/data"}}
	if len(oe.Offenders) != 2 {
		t.Fatalf("offenders = %+v, want %+v", oe.Offenders, want)
	}
	for i, o := range oe.Offenders {
		if o.ID != want[i].ID || o.Pointer != want[i].Pointer || o.Detail == "" {
			t.Fatalf("offender %d = %+v, want %+v with a detail", i, o, want[i])
		}
	}
	if _, err := a.UpdateCollection(t.Context(), everyone, "c", tight, UpdateOptions{NewWritesOnly: true}); err != nil {
		t.Fatal(err)
	}
	_, _, err = a.ReplaceResource(t.Context(), everyone, "c", "new", json.RawMessage(`{"n":"x"}`), nil, store.Precondition{})
	if store.ErrorCode(err) != store.CodeUnprocessable {
		t.Fatalf("a write the new schema refuses = %v", err)
	}
}

func TestUpdateCollectionBudget(t *testing.T) {
	a, _ := newCollectionApp(t, Options{SchemaCheckTimeout: 1}, `{"type":"object"}`)
	a.mustPut(t, "r", `{}`)
	_, err := a.UpdateCollection(t.Context(), everyone, "c", json.RawMessage(`{"schema":{"required":["n"]}}`), UpdateOptions{})
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Code != store.CodeInvalidValue || ve.Fields[0].Pointer != "/schema" || !strings.Contains(ve.Message, "validate=new-writes-only") {
		t.Fatalf("UpdateCollection past its budget = %v, want invalid-value at /schema suggesting new-writes-only", err)
	}
	if _, err := a.UpdateCollection(t.Context(), everyone, "c", json.RawMessage(`{"schema":{"required":["n"]}}`), UpdateOptions{NewWritesOnly: true}); err != nil {
		t.Fatalf("new-writes-only needs no check: %v", err)
	}
}

// TestUpdateCollectionRace: a write validated against the old schema that
// commits between the check and the change is checked too: it is an
// offender, not a resource that slipped through.
func TestUpdateCollectionRace(t *testing.T) {
	a, hs := newCollectionApp(t, Options{}, `{"type":"object"}`)
	a.mustPut(t, "ok", `{"n":1}`)
	hs.beforeUpdate = func() { a.mustPut(t, "late", `{"n":"late"}`) }
	_, err := a.UpdateCollection(t.Context(), everyone, "c", json.RawMessage(`{"schema":{"properties":{"n":{"type":"integer"}}}}`), UpdateOptions{})
	var oe *SchemaOffendersError
	if !errors.As(err, &oe) || len(oe.Offenders) != 1 || oe.Offenders[0].ID != "late" {
		t.Fatalf("UpdateCollection = %v, want the late write as the offender", err)
	}
	// A late write the new schema accepts does not stop the change.
	a2, hs2 := newCollectionApp(t, Options{}, `{"type":"object"}`)
	hs2.beforeUpdate = func() { a2.mustPut(t, "late", `{"n":2}`) }
	c, err := a2.UpdateCollection(t.Context(), everyone, "c", json.RawMessage(`{"schema":{"properties":{"n":{"type":"integer"}}}}`), UpdateOptions{})
	if err != nil || c.Schema == nil {
		t.Fatalf("UpdateCollection = %+v, %v", c, err)
	}
}

// TestUpdateCollectionKeepsChanging: when every attempt to commit finds a
// resource written after the check, the change gives up with a conflict
// (and changes nothing).
func TestUpdateCollectionKeepsChanging(t *testing.T) {
	a, hs := newCollectionApp(t, Options{}, `{"type":"object"}`)
	n := 0
	hs.beforeEachUpdate = func() { n++; a.mustPut(t, fmt.Sprintf("w%d", n), `{"n":1}`) }
	_, err := a.UpdateCollection(t.Context(), everyone, "c", json.RawMessage(`{"schema":{"required":["n"]}}`), UpdateOptions{})
	if !errors.Is(err, store.ErrConflict) || n != maxUpdateAttempts {
		t.Fatalf("UpdateCollection = %v after %d attempts, want a conflict after %d", err, n, maxUpdateAttempts)
	}
	if c, _ := a.GetCollection(t.Context(), everyone, "c"); string(c.Schema) != `{"type":"object"}` {
		t.Fatalf("the collection changed: %s", c.Schema)
	}
}

// TestWriteRevalidatedOnSchemaChange: a write validated against a schema
// that changes before it commits is validated again against the new one.
func TestWriteRevalidatedOnSchemaChange(t *testing.T) {
	tight := json.RawMessage(`{"schema":{"required":["n"]}}`)
	tests := []struct {
		name  string
		write func(a *App) error
	}{
		{"Create", func(a *App) error {
			_, err := a.CreateResource(context.Background(), everyone, "c", "x", json.RawMessage(`{}`), nil)
			return err
		}},
		{"Replace", func(a *App) error {
			_, _, err := a.ReplaceResource(context.Background(), everyone, "c", "x", json.RawMessage(`{}`), nil, store.Precondition{})
			return err
		}},
		{"Patch", func(a *App) error {
			_, err := a.PatchResource(context.Background(), everyone, "c", "p", json.RawMessage(`{"data":{"m":1}}`), 0)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, hs := newCollectionApp(t, Options{}, `{"type":"object"}`)
			a.mustPut(t, "p", `{}`)
			hs.beforePut = func() {
				if _, err := a.UpdateCollection(context.Background(), everyone, "c", tight, UpdateOptions{NewWritesOnly: true}); err != nil {
					t.Error(err)
				}
			}
			err := tc.write(a)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Code != store.CodeUnprocessable {
				t.Fatalf("write = %v, want it refused by the schema that won", err)
			}
		})
	}
}

// TestCachedCollectionNeverValidatesAWrite: writes validate against a
// cached collection, but a schema changed meanwhile — here by another App
// on the same store, as another node would — is never bypassed: the store
// refuses the write bound to the old revision and it is validated again
// against the new schema; a collection deleted elsewhere is not found.
func TestCachedCollectionNeverValidatesAWrite(t *testing.T) {
	a, hs := newCollectionApp(t, Options{}, `{"type":"object"}`)
	other := New(hs.Store, Options{})
	a.mustPut(t, "first", `{"n":1}`) // caches c
	if _, err := other.UpdateCollection(t.Context(), everyone, "c", json.RawMessage(`{"schema":{"required":["n"]}}`), UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := a.CreateResource(t.Context(), everyone, "c", "bad", json.RawMessage(`{}`), nil)
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("create against the changed schema = %v, want a validation error", err)
	}
	if _, err := a.CreateResource(t.Context(), everyone, "c", "good", json.RawMessage(`{"n":2}`), nil); err != nil {
		t.Fatalf("create that the new schema accepts: %v", err)
	}
	if err := other.DeleteCollection(t.Context(), everyone, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateResource(t.Context(), everyone, "c", "gone", json.RawMessage(`{"n":3}`), nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("create in a collection deleted elsewhere = %v, want not found", err)
	}
}
