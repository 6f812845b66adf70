package wire

import (
	"fmt"
	"testing"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// TestBatchProblem: the problem of a failed batch carries the operation's
// status and type, and names the operation.
func TestBatchProblem(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		slug   string
		detail string
		op     int // -1: none
	}{
		{"NotFound", store.OpError(2, store.ResourceNotFound("c", "x")), 404, "not-found", `operation 2: resource "x" not found in collection "c"`, 2},
		{"Precondition", store.OpError(0, store.ErrPreconditionFailed), 412, "precondition-failed", "operation 0: precondition failed", 0},
		{"Forbidden", store.OpError(1, fmt.Errorf("%w: write on logs", auth.ErrInsufficientScope)), 403, "insufficient-scope", "", 1},
		{"TooMany", store.Errorf(store.CodeTooLarge, "too many"), 413, "too-large", "too many", -1},
		{"Validation", store.OpError(3, &app.ValidationError{Code: store.CodeUnprocessable, Message: "/operations/3/data/qty: too small",
			Fields: []app.FieldError{{Pointer: "/operations/3/data/qty", Detail: "too small"}}}), 422, "schema-violation", "operation 3: /operations/3/data/qty: too small", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Problem(tt.err)
			if p.Status != tt.status || p.Type != ProblemBase+tt.slug {
				t.Fatalf("problem = %d %s, want %d %s", p.Status, p.Type, tt.status, tt.slug)
			}
			if tt.detail != "" && (p.Detail == nil || *p.Detail != tt.detail) {
				t.Fatalf("detail = %v, want %q", p.Detail, tt.detail)
			}
			if (p.Operation == nil) != (tt.op < 0) || (p.Operation != nil && *p.Operation != tt.op) {
				t.Fatalf("operation = %v, want %d", p.Operation, tt.op)
			}
			if tt.slug == "schema-violation" && (p.Errors == nil || *(*p.Errors)[0].Pointer != "/operations/3/data/qty") {
				t.Fatalf("errors = %+v", p.Errors)
			}
		})
	}
}

// TestBatchResult: each operation's result has the status of its single
// call; a delete carries no resource.
func TestBatchResult(t *testing.T) {
	r := func(id string, rev int64) store.Resource {
		return store.Resource{Collection: "c", ID: id, Revision: rev}
	}
	out := BatchResult(app.BatchResult{ID: "b", LastRevision: 14, Results: []app.BatchOpResult{
		{Kind: app.BatchCreate, Resource: r("a", 11), Created: true},
		{Kind: app.BatchPut, Resource: r("a", 12)},
		{Kind: app.BatchPatch, Resource: r("a", 13)},
		{Kind: app.BatchDelete, Resource: r("a", 14)},
	}})
	for i, want := range []int{201, 200, 200, 204} {
		got := out.Results[i]
		if int(got.Status) != want || got.Revision != int64(11+i) || (got.Resource == nil) != (want == 204) || (got.Location != nil) != (want == 201) {
			t.Fatalf("result %d = %+v, want status %d", i, got, want)
		}
	}
	if *out.Results[0].Etag != `"11"` || *out.Results[0].Location != "/v1/collections/c/resources/a" {
		t.Fatalf("create result = %+v", out.Results[0])
	}
}
