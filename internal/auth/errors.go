package auth

import "errors"

// Errors returned by [Authenticator.Authenticate] and [Principal.Check].
// Match them with errors.Is; all messages are safe to show to clients.
var (
	// ErrNoToken means no credentials were presented (RFC 6750: answer 401
	// with a bare "WWW-Authenticate: Bearer" challenge, no error code).
	ErrNoToken = errors.New("no token")
	// ErrInvalidToken means the credentials were rejected (RFC 6750:
	// invalid_token). The error is a *TokenError carrying the reason.
	ErrInvalidToken = errors.New("invalid token")
	// ErrInsufficientScope means an authenticated principal lacks the grant
	// (RFC 6750: 403 insufficient_scope).
	ErrInsufficientScope = errors.New("insufficient scope")
)

// Client-safe reasons carried by a [TokenError].
const (
	ReasonMalformed       = "malformed token"
	ReasonTooLarge        = "token too large"
	ReasonUnknownAPIKey   = "unknown API key"
	ReasonExpired         = "token expired"
	ReasonNotYetValid     = "token not valid yet"
	ReasonWrongAudience   = "wrong audience"
	ReasonWrongIssuer     = "wrong issuer"
	ReasonBadSignature    = "bad signature"
	ReasonUnsupportedAlg  = "unsupported algorithm"
	ReasonUnknownKey      = "unknown key id"
	ReasonMissingSubject  = "missing subject"
	ReasonMissingExpiry   = "missing expiry"
	ReasonInvalidScope    = "invalid scope"
	ReasonInvalidClaims   = "invalid claims"
	ReasonJWTNotSupported = "JWT authentication is not configured"
)

// TokenError is the error for rejected credentials. errors.Is(err,
// ErrInvalidToken) holds for it. Reason is short, client-safe text for the
// RFC 6750 error_description (for example "token expired"); the error never
// contains the token or any key.
type TokenError struct {
	Reason string
}

// Error returns "invalid token: <reason>". It returns no error.
func (e *TokenError) Error() string { return "invalid token: " + e.Reason }

// Is reports whether target is ErrInvalidToken. It returns no error.
func (e *TokenError) Is(target error) bool { return target == ErrInvalidToken }

func invalid(reason string) error { return &TokenError{Reason: reason} }
