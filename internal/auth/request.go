package auth

import (
	"context"
	"strings"
)

// Subprotocol prefix carrying a bearer token in Sec-WebSocket-Protocol, for
// browsers that cannot set headers on a WebSocket: the client offers
// ["tandem.v1", "bearer.<token>"] and the server selects "tandem.v1".
const SubprotocolBearerPrefix = "bearer."

// ReasonBadScheme is the TokenError reason for an Authorization header that
// is not "Bearer <token>".
const ReasonBadScheme = "unsupported authorization scheme; use Bearer"

// TokenFrom returns the credential a request presents, given its
// Authorization and X-API-Key header values and the value of the token
// cookie (meant for EventSource, which cannot set headers; "" when the
// request may not use it): "Bearer <token>", else the API key, else the
// cookie. It returns "" when none is present. Errors: a *TokenError
// (matching ErrInvalidToken) for an Authorization header that is not a
// bearer token.
func TokenFrom(authorization, apiKey, cookie string) (string, error) {
	if authorization != "" {
		scheme, tok, ok := strings.Cut(authorization, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", invalid(ReasonBadScheme)
		}
		return strings.TrimSpace(tok), nil
	}
	if apiKey != "" {
		return strings.TrimSpace(apiKey), nil
	}
	return cookie, nil
}

// TokenFromSubprotocols returns the token offered as "bearer.<token>" in a
// WebSocket handshake's subprotocol list, or "". It returns no error.
func TokenFromSubprotocols(protocols []string) string {
	for _, p := range protocols {
		if t, ok := strings.CutPrefix(p, SubprotocolBearerPrefix); ok {
			return t
		}
	}
	return ""
}

type principalKey struct{}

// WithPrincipal returns ctx carrying p. It returns no error.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal stored by WithPrincipal. It returns no
// error; ok is false when ctx carries none.
func FromContext(ctx context.Context) (p Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Scope identifies the principal for per-caller state (idempotency keys,
// rate limits): "<kind>:<subject>", or "" for anonymous callers. It
// returns no error.
func (p Principal) Scope() string {
	if p.Kind == KindAnonymous || p.Kind == "" || p.Subject == "" {
		return ""
	}
	return p.Kind + ":" + p.Subject
}
