package auth

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"time"
)

// Principal kinds.
const (
	KindAPIKey    = "api-key"
	KindJWT       = "jwt"
	KindAnonymous = "anonymous"
)

// Principal is an authenticated (or anonymous) caller. It holds no secrets.
type Principal struct {
	// Subject identifies the caller: the JWT "sub" claim, the API key's
	// name, or "" for anonymous callers. It replaces {sub} in grants.
	Subject string
	// Grants are what the caller may do.
	Grants Grants
	// ExpiresAt is when the credentials expire; zero means never (API keys
	// and anonymous callers).
	ExpiresAt time.Time
	// Kind is KindAPIKey, KindJWT or KindAnonymous.
	Kind string
	// Claims are a JWT's verified claims (the payload as sent; nil for
	// API keys and anonymous callers), for the application's hooks.
	Claims json.RawMessage
}

// Can reports whether p may perform action on path (see [Grants.Allows]). It
// returns no error.
func (p Principal) Can(action Action, path string) bool {
	return p.Grants.Allows(action, path, p.Subject)
}

// Check is Can as an error, ready for RFC 6750: nil if allowed; otherwise an
// error matching ErrNoToken for an anonymous principal (answer 401 and ask
// for credentials) or ErrInsufficientScope for an authenticated one (answer
// 403 insufficient_scope). The message names the action and path.
func (p Principal) Check(action Action, path string) error {
	if p.Can(action, path) {
		return nil
	}
	if p.Kind == KindAnonymous || p.Kind == "" {
		return fmt.Errorf("%w: authentication required to %s %s", ErrNoToken, action, quote(path))
	}
	return fmt.Errorf("%w: not allowed to %s %s", ErrInsufficientScope, action, quote(path))
}

// Expired reports whether p's credentials have expired at now (never, for a
// zero ExpiresAt). It returns no error.
func (p Principal) Expired(now time.Time) bool {
	return !p.ExpiresAt.IsZero() && !now.Before(p.ExpiresAt)
}

// Anonymous reports whether p is the anonymous principal. It returns no
// error.
func (p Principal) Anonymous() bool { return p.Kind == KindAnonymous }

// LogValue implements slog.LogValuer. It returns no error.
func (p Principal) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("kind", p.Kind),
		slog.String("subject", p.Subject),
		slog.String("grants", p.Grants.String()),
	}
	if !p.ExpiresAt.IsZero() {
		attrs = append(attrs, slog.Time("expires_at", p.ExpiresAt))
	}
	return slog.GroupValue(attrs...)
}
