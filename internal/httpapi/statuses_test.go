package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/specval"
)

// TestEveryOperationDeclaresItsStatuses: each status the middleware can
// answer for an operation is declared by that operation itself, not only
// through default (the runtime check, specval.Declared, catches the
// statuses the handlers answer in every end-to-end test). The rules:
//   - 400: validation (every operation refuses unknown query parameters)
//     and, for operations without a body, refuseBody;
//   - 500: recoverer and the unknown-error row of the error table;
//   - 401: authenticate, for operations with security;
//   - 403: authorizeOperation, for operations with x-tandem-grant;
//   - 429 and 503: rateLimit, and the store or broker being unavailable,
//     for /v1/ operations;
//   - 408, 413, 415: readDeadline, limitBody and the validator's media
//     type check, for operations with a request body;
//   - 409 with Idempotency-Key, 412 with If-Match, 410 with a cursor
//     (since, Last-Event-ID), 404 with a collection, webhook or
//     connection in the path (the handlers' errors; the end-to-end tests
//     check the rest at runtime).
func TestEveryOperationDeclaresItsStatuses(t *testing.T) {
	doc, err := specval.LoadOpenAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			n++
			want := []int{http.StatusBadRequest, http.StatusInternalServerError}
			security := doc.Security
			if op.Security != nil {
				security = *op.Security
			}
			if len(security) > 0 {
				want = append(want, http.StatusUnauthorized)
			}
			if _, ok := op.Extensions["x-tandem-grant"]; ok {
				want = append(want, http.StatusForbidden)
			}
			if strings.HasPrefix(path, "/v1/") {
				want = append(want, http.StatusTooManyRequests, http.StatusServiceUnavailable)
			}
			if op.RequestBody != nil {
				want = append(want, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
			}
			for _, p := range append(item.Parameters, op.Parameters...) {
				switch p.Value.Name {
				case "Idempotency-Key": // a key reused for another request
					want = append(want, http.StatusConflict)
				case "If-Match": // a precondition that does not hold
					want = append(want, http.StatusPreconditionFailed)
				case "since", "Last-Event-ID": // a cursor outside the history
					want = append(want, http.StatusGone)
				}
			}
			for _, name := range []string{"{collection}", "{webhook}", "{connection}"} {
				if strings.Contains(path, name) { // it may not exist
					want = append(want, http.StatusNotFound)
				}
			}
			for _, status := range want {
				if specval.Declared(op, status) == nil {
					t.Errorf("%s %s (%s) can answer %d but declares it only through default", method, path, op.OperationID, status)
				}
			}
			// Every declared problem response says which problem types it
			// carries, unless a hook may answer it with its own.
			for key, ref := range op.Responses.Map() {
				if key == "default" || key[0] < '4' || ref.Value == nil || ref.Value.Content["application/problem+json"] == nil {
					continue
				}
				types, err := specval.ProblemTypes(ref.Value)
				if err != nil {
					t.Errorf("%s: response %s: %v", op.OperationID, key, err)
				}
				status, _ := strconv.Atoi(key)
				if types == nil && !specval.HookStatus(op, status) && !strings.Contains(ref.Ref, "HookDenied") {
					t.Errorf("%s: problem response %s (%s) lists no %s", op.OperationID, key, ref.Ref, specval.ProblemTypesExtension)
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d operations in the spec", n)
	}
}
