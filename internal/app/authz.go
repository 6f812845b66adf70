package app

import (
	"fmt"

	"github.com/tandemhq/tandem/internal/auth"
)

// Authorize checks that p may perform action on path (a topic, or a REST
// path without /v1/, such as "collections/c/resources/id") now. It is the
// one authorisation check: every use case calls it, and the REST edge
// calls it before validating a request body so that an unauthorised caller
// learns nothing from the validation. Errors: auth.ErrInvalidToken (the
// credentials expired), auth.ErrNoToken (anonymous and not allowed: 401),
// auth.ErrInsufficientScope (403).
func (a *App) Authorize(p auth.Principal, action auth.Action, path string) error {
	if p.Expired(a.now()) {
		return &auth.TokenError{Reason: auth.ReasonExpired}
	}
	return p.Check(action, path)
}

// CheckRefresh checks that next may replace cur as a connection's
// principal (a token refresh over an open connection): an authenticated
// connection keeps its subject. Errors: auth.ErrInsufficientScope.
func (a *App) CheckRefresh(cur, next auth.Principal) error {
	if !cur.Anonymous() && next.Subject != cur.Subject {
		return fmt.Errorf("%w: a refreshed token must keep the subject %q", auth.ErrInsufficientScope, cur.Subject)
	}
	return nil
}

// MemberID is who p is on a connection: its subject, or connID for an
// anonymous principal (the presence member and the publisher of its
// messages). It returns no error.
func MemberID(p auth.Principal, connID string) string {
	if !p.Anonymous() && p.Subject != "" {
		return p.Subject
	}
	return connID
}

func collectionsPath() string        { return "collections" }
func collectionPath(c string) string { return "collections/" + c }
