package gosdk_test

import (
	"encoding/json"
	"errors"
	"testing"

	tandem "github.com/tandemhq/tandem/sdk/go"
)

// TestUpdateCollection: the typed helper changes a collection (merge
// patch, If-Match, new-writes-only, offenders in the problem), and a
// Mirror keeps its resources and exposes the new definition.
func TestUpdateCollection(t *testing.T) {
	srv := StartServer(t)
	c := newClient(t, srv.URL)
	ctx := testContext(t)
	coll, err := c.CreateCollection(ctx, "orders", json.RawMessage(`{"type":"object"}`))
	if err != nil {
		t.Fatal(err)
	}
	put(t, c, "orders", "o-1", map[string]any{"qty": 0})
	m, err := connect(t, c).Mirror(ctx, "orders", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WaitSynced(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.Collection(); ok {
		t.Fatal("a definition before any collection.updated")
	}
	tight := map[string]any{"schema": map[string]any{"properties": map[string]any{"qty": map[string]any{"minimum": 1}}}}
	_, err = c.UpdateCollection(ctx, "orders", tight, nil)
	var pe *tandem.ProblemError
	if !errors.As(err, &pe) || pe.Problem.Status != 422 || pe.Problem.Offenders == nil || (*pe.Problem.Offenders)[0].Id != "o-1" {
		t.Fatalf("UpdateCollection over an offender = %v", err)
	}
	if _, err := c.UpdateCollection(ctx, "orders", tight, &tandem.UpdateCollectionOptions{IfMatch: coll.Revision + 100, NewWritesOnly: true}); !errors.Is(err, tandem.ErrPreconditionFailed) {
		t.Fatalf("stale IfMatch = %v", err)
	}
	got, err := c.UpdateCollection(ctx, "orders", json.RawMessage(`{"description":"d"}`), &tandem.UpdateCollectionOptions{IfMatch: coll.Revision})
	if err != nil || got.Description == nil || *got.Description != "d" {
		t.Fatalf("UpdateCollection = %+v, %v", got, err)
	}
	eventually(t, "the mirror to see the change", func() bool {
		d, ok := m.Collection()
		return ok && d.Revision == got.Revision
	})
	if m.Len() != 1 {
		t.Fatalf("the mirror has %d resources after collection.updated, want 1", m.Len())
	}
}
