package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// Authenticator resolves credentials into principals (auth.Authenticator).
type Authenticator interface {
	Resolve(token string) (auth.Principal, error)
}

var _ Authenticator = (*auth.Authenticator)(nil)

// authenticate resolves the caller of every /v1/ request into an
// auth.Principal stored in the request context: the bearer token or API key
// it presents, else the anonymous principal. Presented credentials that are
// rejected get a 401 invalid_token problem here; whether the principal may
// perform the operation is decided by the OpenAPI security check
// (authorizeOperation) and, for topic streams, by their handlers. A nil
// authenticator lets everyone do everything (auth not configured).
func authenticate(a Authenticator, cookie string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		if a == nil {
			next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), auth.Principal{Kind: auth.KindAnonymous, Grants: auth.AllowAll()})))
			return
		}
		// The cookie is for EventSource (which cannot set headers) and
		// is only read by the streaming GETs, never by mutations.
		c := ""
		if r.Method == http.MethodGet && (r.URL.Path == "/v1/events" || r.URL.Path == "/v1/changes") {
			c = cookie
		}
		tok, err := auth.TokenFromRequest(r, c)
		if err != nil {
			writeProblem(w, r, ProblemFor(err))
			return
		}
		p, err := a.Resolve(tok)
		if err != nil {
			writeProblem(w, r, ProblemFor(err))
			return
		}
		next.ServeHTTP(w, r.WithContext(auth.WithPrincipal(r.Context(), p)))
	})
}

// authorizeOperation is the kin-openapi AuthenticationFunc: it enforces the
// operation's security requirement by checking the request's principal
// for the grant the operation names in x-tandem-grant on the request path
// (without /v1/). Operations with x-tandem-grant-target: topics (SSE and
// long-poll) check each topic in their handler instead. Errors: ErrNoToken
// or ErrInsufficientScope (see auth.Principal.Check), or an internal
// error when the spec lacks x-tandem-grant (a build defect).
func authorizeOperation(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	r := in.RequestValidationInput.Request
	op := in.RequestValidationInput.Route.Operation
	p, ok := auth.FromContext(r.Context())
	if !ok {
		return fmt.Errorf("%w: no principal on the request", auth.ErrNoToken)
	}
	g, _ := op.Extensions["x-tandem-grant"].(string)
	action, err := auth.ParseAction(g)
	if err != nil {
		return fmt.Errorf("operation %s has no valid x-tandem-grant: %w", op.OperationID, err)
	}
	if t, _ := op.Extensions["x-tandem-grant-target"].(string); t == "topics" {
		return nil
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	if !auth.ValidPath(path) {
		// A malformed path (an encoded "../", invalid UTF-8 in a name)
		// matches no grant; it is a bad request, not a missing token.
		return store.Errorf(store.CodeInvalid, "the path %q is not a valid resource path", path)
	}
	return p.Check(action, path)
}

// principalOf returns the request's principal; without one (auth not in
// the chain, as in unit tests) the caller may do everything.
func principalOf(ctx context.Context) auth.Principal {
	if p, ok := auth.FromContext(ctx); ok {
		return p
	}
	return auth.Principal{Kind: auth.KindAnonymous, Grants: auth.AllowAll()}
}
