// Package auth authenticates callers and authorises their requests. It is pure
// logic with no HTTP handlers, shared by the REST, WebSocket, SSE and
// long-poll layers.
//
// A caller is a [Principal]: a subject plus a set of [Grants]. A grant is
// "action:pattern" where the action is read, write, publish, admin or call
// (RPC methods, on rpc/{method}) and the
// pattern is a slash-separated REST path (topic) in which "*" matches exactly
// one segment, "**" (last segment only) matches one or more remaining
// segments and "{sub}" is replaced by the principal's subject:
//
//	read:collections/orders/**
//	write:collections/*/resources/*
//	publish:channels/user.{sub}/messages
//	admin:collections
//
// Principals come from an [Authenticator], which accepts static API keys and
// JWT bearer tokens (HS256 with a shared secret, or RS256/EdDSA with keys
// from a JWKS file or URL, decoded by github.com/go-jose/go-jose/v4; a URL
// is fetched through a [JWKSFetcher] (internal/jwksfetch: this package
// knows no HTTP) and refreshed for key rotation). Errors are typed so that the HTTP layer can answer per
// RFC 6750: [ErrNoToken] (401 without an error code), [ErrInvalidToken]
// (401 invalid_token, with a client-safe [TokenError.Reason]) and
// [ErrInsufficientScope] (403 insufficient_scope).
//
// Secrets (API keys, the HS256 secret) never appear in errors, in String or
// GoString output, in JSON or in slog output: every type holding one
// implements [slog.LogValuer] and redacts it.
package auth
