package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/accesslog"
	"github.com/tandemhq/tandem/internal/wire"
)

// writeProblem writes p as application/problem+json.
func writeProblem(w http.ResponseWriter, r *http.Request, p api.Problem) {
	if r != nil && p.Instance == nil {
		inst := r.URL.Path
		p.Instance = &inst
	}
	if r != nil && p.RequestId == nil {
		if id := accesslog.RequestID(r.Context()); id != "" {
			p.RequestId = &id
		}
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
		writeProblem(w, r, wire.NewProblem(wire.KindInvalid, "the request body could not be decoded", []api.ProblemField{wire.BodyField("", "could not be decoded as JSON of the expected shape")}))
	}
	resp := func(w http.ResponseWriter, r *http.Request, err error) {
		p := wire.Problem(err)
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
	case wire.KindUnauthenticated.Type():
		return `Bearer realm="tandem"`
	case wire.KindInvalidToken.Type():
		return `Bearer realm="tandem", error="invalid_token", error_description="` + desc + `"`
	case wire.KindInsufficientScope.Type():
		return `Bearer realm="tandem", error="insufficient_scope", error_description="` + desc + `"`
	}
	return ""
}
