package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// ProblemBase prefixes every problem type URI.
const ProblemBase = "https://tandem.dev/problems/"

// problemKind is one row of the error table.
type problemKind struct {
	status int
	slug   string
	title  string
}

// errorTable is the one mapping from error codes to HTTP statuses and
// problem types. Every transport uses it (WebSocket replies carry the same
// type and status).
var errorTable = map[store.Code]problemKind{
	store.CodeInvalid:            {http.StatusBadRequest, "invalid-request", "The request is invalid"},
	store.CodeUnprocessable:      {http.StatusUnprocessableEntity, "schema-violation", "The data does not match the collection schema"},
	store.CodeNotFound:           {http.StatusNotFound, "not-found", "Not found"},
	store.CodeConflict:           {http.StatusConflict, "conflict", "Conflict"},
	store.CodePreconditionFailed: {http.StatusPreconditionFailed, "precondition-failed", "Precondition failed"},
	store.CodeCompacted:          {http.StatusGone, "resync-required", "Resync required"},
	store.CodeUnavailable:        {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	store.CodeUnauthenticated:    {http.StatusUnauthorized, "unauthenticated", "Authentication required"},
	store.CodeForbidden:          {http.StatusForbidden, "forbidden", "Forbidden"},
	store.CodeTooManyRequests:    {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	store.CodeTooLarge:           {http.StatusRequestEntityTooLarge, "too-large", "Request too large"},
}

// Problem types raised by the HTTP layer itself.
var (
	kindUnsupportedMedia = problemKind{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"}
	kindRouteNotFound    = problemKind{http.StatusNotFound, "not-found", "Not found"}
	kindMethodNotAllowed = problemKind{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"}
	kindInternal         = problemKind{http.StatusInternalServerError, "internal", "Internal server error"}
	kindRequestTimeout   = problemKind{http.StatusRequestTimeout, "request-timeout", "Request timeout"}
	// RFC 6750: no credentials, rejected credentials, missing grant.
	kindUnauthenticated   = errorTable[store.CodeUnauthenticated]
	kindInvalidToken      = problemKind{http.StatusUnauthorized, "invalid-token", "Invalid token"}
	kindInsufficientScope = problemKind{http.StatusForbidden, "insufficient-scope", "Insufficient scope"}
)

// ProblemFor converts any error into a problem object. Errors without a
// code become a generic 500 whose detail never contains internal text.
func ProblemFor(err error) api.Problem {
	switch {
	case errors.Is(err, auth.ErrInsufficientScope):
		return newProblem(kindInsufficientScope, err.Error(), nil)
	case errors.Is(err, auth.ErrInvalidToken):
		return newProblem(kindInvalidToken, err.Error(), nil)
	case errors.Is(err, auth.ErrNoToken):
		return newProblem(kindUnauthenticated, err.Error(), nil)
	}
	code := store.ErrorCode(err)
	kind, ok := errorTable[code]
	if !ok {
		return newProblem(kindInternal, "an internal error occurred; it has been logged", nil)
	}
	var fields []api.ProblemField
	var fe *fieldError
	if errors.As(err, &fe) {
		fields = append(fields, fe.field)
	}
	var ve *app.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fields = append(fields, bodyField(f.Pointer, f.Detail))
		}
	}
	return newProblem(kind, store.ErrorMessage(err), fields)
}

// ProblemType returns the problem type URI for an error code (for
// WebSocket and SSE problems).
func ProblemType(code store.Code) (string, int) {
	k, ok := errorTable[code]
	if !ok {
		k = kindInternal
	}
	return ProblemBase + k.slug, k.status
}

func newProblem(k problemKind, detail string, fields []api.ProblemField) api.Problem {
	p := api.Problem{Type: ProblemBase + k.slug, Title: k.title, Status: k.status}
	if detail != "" {
		p.Detail = &detail
	}
	if len(fields) > 0 {
		p.Errors = &fields
	}
	return p
}

func bodyField(pointer, detail string) api.ProblemField {
	f := api.ProblemField{In: api.Body, Detail: detail}
	if pointer != "" {
		p := pointer
		f.Pointer = &p
		name := dotted(pointer)
		f.Name = &name
	}
	return f
}

func paramField(in api.ProblemFieldIn, name, detail string) api.ProblemField {
	n := name
	return api.ProblemField{In: in, Name: &n, Detail: detail}
}

// dotted turns a JSON pointer into a dotted field path: /data/items/0 → data.items.0.
func dotted(pointer string) string {
	out := make([]byte, 0, len(pointer))
	for i := 0; i < len(pointer); i++ {
		c := pointer[i]
		switch {
		case c == '/' && i == 0:
		case c == '/':
			out = append(out, '.')
		case c == '~' && i+1 < len(pointer) && pointer[i+1] == '1':
			out = append(out, '/')
			i++
		case c == '~' && i+1 < len(pointer) && pointer[i+1] == '0':
			out = append(out, '~')
			i++
		default:
			out = append(out, c)
		}
	}
	return string(out)
}

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p api.Problem) {
	if r != nil && p.Instance == nil {
		inst := r.URL.Path
		p.Instance = &inst
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Del("ETag")
	if c := challenge(p); c != "" {
		w.Header().Set("WWW-Authenticate", c)
	}
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// errorWriter returns the strict server's error handlers: request decoding
// errors are 400 problems, handler errors go through the error table, and
// internal errors are logged but never shown.
func errorWriter(log *slog.Logger) (func(http.ResponseWriter, *http.Request, error), func(http.ResponseWriter, *http.Request, error)) {
	req := func(w http.ResponseWriter, r *http.Request, err error) {
		writeProblem(w, r, newProblem(errorTable[store.CodeInvalid], "the request body could not be decoded", []api.ProblemField{bodyField("", "could not be decoded as JSON of the expected shape")}))
	}
	resp := func(w http.ResponseWriter, r *http.Request, err error) {
		p := ProblemFor(err)
		if p.Status >= 500 {
			log.ErrorContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
		writeProblem(w, r, p)
	}
	return req, resp
}

// challenge is the RFC 6750 WWW-Authenticate value for an authentication
// problem, or "".
func challenge(p api.Problem) string {
	desc := ""
	if p.Detail != nil {
		desc = strings.NewReplacer(`"`, "'", `\`, "/").Replace(*p.Detail)
	}
	switch p.Type {
	case ProblemBase + kindUnauthenticated.slug:
		return `Bearer realm="tandem"`
	case ProblemBase + kindInvalidToken.slug:
		return `Bearer realm="tandem", error="invalid_token", error_description="` + desc + `"`
	case ProblemBase + kindInsufficientScope.slug:
		return `Bearer realm="tandem", error="insufficient_scope", error_description="` + desc + `"`
	}
	return ""
}
