package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/tandemhq/tandem/internal/accesslog"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/wire"
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
	everyone := auth.Principal{Kind: auth.KindAnonymous, Grants: auth.AllowAll()} // read-only, shared
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		if a == nil {
			next.ServeHTTP(w, withCaller(r, everyone))
			return
		}
		// The cookie is for EventSource (which cannot set headers) and
		// is only read by the streaming GETs, never by mutations.
		c := ""
		if r.Method == http.MethodGet && (r.URL.Path == "/v1/events" || r.URL.Path == "/v1/changes") {
			c = cookie
		}
		tok, err := bearer(r, c)
		if err != nil {
			writeProblem(w, r, wire.Problem(err))
			return
		}
		p, err := a.Resolve(tok)
		if err != nil {
			writeProblem(w, r, wire.Problem(err))
			return
		}
		next.ServeHTTP(w, withCaller(r, p))
	})
}

// withCaller is r with the caller on its context: its principal and its
// address (remoteOf), in the one copy of the request authenticate makes.
func withCaller(r *http.Request, p auth.Principal) *http.Request {
	accesslog.From(r.Context()).SetSubject(p.Subject)
	return r.WithContext(context.WithValue(auth.WithPrincipal(r.Context(), p), remoteKey{}, r.RemoteAddr))
}

// bearer returns the credential r presents (see auth.TokenFrom); cookie
// names the cookie that may carry it ("" for none). Errors:
// auth.ErrInvalidToken (not a bearer Authorization header).
func bearer(r *http.Request, cookie string) (string, error) {
	var fromCookie string
	if cookie != "" {
		if c, err := r.Cookie(cookie); err == nil {
			fromCookie = c.Value
		}
	}
	return auth.TokenFrom(r.Header.Get("Authorization"), r.Header.Get("X-API-Key"), fromCookie)
}

// authorizeOperation returns the kin-openapi AuthenticationFunc: it runs
// app's authorisation (app.App.Authorize) for the grant the operation
// names in x-tandem-grant on the request path (without /v1/), before the
// request body is validated — the use case checks the same again.
// Operations with x-tandem-grant-target: topics (SSE and long-poll) are
// authorised per topic by app, and those with x-tandem-grant-target:
// operations (a batch) per operation. Errors: ErrNoToken or ErrInsufficientScope
// (see auth.Principal.Check), or an internal error when the spec lacks
// x-tandem-grant (a build defect).
func authorizeOperation(a *app.App) openapi3filter.AuthenticationFunc {
	return func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
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
		if t, _ := op.Extensions["x-tandem-grant-target"].(string); t == "topics" || t == "operations" {
			return nil
		}
		path := strings.TrimPrefix(r.URL.Path, "/v1/")
		if !auth.ValidPath(path) {
			// A malformed path (an encoded "../", invalid UTF-8 in a name)
			// matches no grant; it is a bad request, not a missing token.
			return store.Errorf(store.CodeInvalid, "the path %q is not a valid resource path", path)
		}
		return a.Authorize(p, action, path)
	}
}

// principalOf returns the request's principal; without one (auth not in
// the chain, as in unit tests) the caller may do everything.
func principalOf(ctx context.Context) auth.Principal {
	if p, ok := auth.FromContext(ctx); ok {
		return p
	}
	return auth.Principal{Kind: auth.KindAnonymous, Grants: auth.AllowAll()}
}
