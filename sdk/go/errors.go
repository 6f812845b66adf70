package tandem

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tandemhq/tandem/sdk/go/client"
)

// ProblemBase prefixes every problem type URI the server uses.
const ProblemBase = "https://tandem.dev/problems/"

// Sentinel errors, matched with errors.Is against the errors this package
// returns.
var (
	// ErrResyncRequired: the server can no longer resume from a cursor (its
	// history is gone or belongs to another epoch); reload the state with a
	// snapshot (see Conn.Resync) and continue from there.
	ErrResyncRequired = errors.New("tandem: resync required")
	// ErrNotFound: the collection, resource or route does not exist (404).
	ErrNotFound = errors.New("tandem: not found")
	// ErrConflict: it already exists, or an Idempotency-Key was reused (409).
	ErrConflict = errors.New("tandem: conflict")
	// ErrPreconditionFailed: If-Match or If-None-Match did not hold (412).
	ErrPreconditionFailed = errors.New("tandem: precondition failed")
	// ErrUnauthorized: credentials are missing, invalid or expired (401).
	ErrUnauthorized = errors.New("tandem: unauthorized")
	// ErrForbidden: the credentials lack the needed grant (403).
	ErrForbidden = errors.New("tandem: forbidden")
	// ErrClosed: the Conn or Subscription was closed by its owner.
	ErrClosed = errors.New("tandem: closed")
	// ErrConnectionLost: the connection broke before the server replied, so
	// the outcome of the request is unknown (it is not sent again); or it
	// broke under a server-side subscription, which ends with it.
	ErrConnectionLost = errors.New("tandem: connection lost")
	// ErrDisconnected: the server disconnected the connection (a
	// *DisconnectedError carries the reason and whether the client may
	// reconnect); Conn.Err returns it when the server asked it not to.
	ErrDisconnected = errors.New("tandem: disconnected by the server")
	// ErrUnsubscribedByServer: the server ended the subscription (an
	// unsubscribed frame); no further event of it follows.
	ErrUnsubscribedByServer = errors.New("tandem: unsubscribed by the server")
)

// DisconnectedError is a disconnect frame: the server is closing the
// connection (close code 4003), e.g. because an operator ended it with
// DELETE /v1/connections/{id}. With Reconnect false the Conn ends with it
// (Conn.Err); with Reconnect true the Conn reconnects as after any other
// drop, and Status.Err carries it. It matches ErrDisconnected.
type DisconnectedError struct {
	// Reason is the server's explanation ("" when it gave none).
	Reason string
	// Reconnect is whether the server allows the client to reconnect.
	Reconnect bool
}

// Error implements error.
func (e *DisconnectedError) Error() string {
	s := "tandem: disconnected by the server"
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Reconnect {
		s += " (reconnect allowed)"
	}
	return s
}

// Is matches ErrDisconnected.
func (e *DisconnectedError) Is(target error) bool { return target == ErrDisconnected }

// ProblemError is an RFC 9457 problem returned by the server, over REST or
// in a WebSocket reply or error frame. It matches the sentinel errors above
// by status and type.
type ProblemError struct {
	Problem client.Problem
}

// Error implements error.
func (e *ProblemError) Error() string {
	s := fmt.Sprintf("tandem: %s (%d)", e.Problem.Title, e.Problem.Status)
	if e.Problem.Detail != nil && *e.Problem.Detail != "" {
		s += ": " + *e.Problem.Detail
	}
	return s
}

// Is reports whether the problem is of the kind target names.
func (e *ProblemError) Is(target error) bool {
	return problemIs(e.Problem, target)
}

// Slug is the last segment of the problem type, e.g. "resync-required".
func (e *ProblemError) Slug() string { return slug(e.Problem) }

func slug(p client.Problem) string {
	return strings.TrimPrefix(p.Type, ProblemBase)
}

func problemIs(p client.Problem, target error) bool {
	switch target {
	case ErrResyncRequired:
		return slug(p) == "resync-required"
	case ErrNotFound:
		return p.Status == 404
	case ErrConflict:
		return p.Status == 409
	case ErrPreconditionFailed:
		return p.Status == 412
	case ErrUnauthorized:
		return p.Status == 401
	case ErrForbidden:
		return p.Status == 403
	}
	return false
}

// ResyncRequiredError says a subscription cannot resume from Cursor: the
// server's history no longer covers it (compacted change log, new store or
// channel epoch). Nothing was skipped silently: reload the state (a
// snapshot subscription, see Conn.Resync) and continue from its cursor.
type ResyncRequiredError struct {
	Topic  string
	Labels string
	// Cursor is the cursor the SDK tried to resume from ("" when the
	// subscription was live and the server ended it, e.g. a channel reset).
	Cursor  string
	Problem client.Problem
}

// Error implements error.
func (e *ResyncRequiredError) Error() string {
	s := "tandem: resync required for " + e.Topic
	if e.Problem.Detail != nil && *e.Problem.Detail != "" {
		s += ": " + *e.Problem.Detail
	}
	return s
}

// Is matches ErrResyncRequired.
func (e *ResyncRequiredError) Is(target error) bool { return target == ErrResyncRequired }

// newProblemError returns a *ResyncRequiredError for resync-required
// problems and a *ProblemError otherwise.
func newProblemError(p client.Problem, topic, labels, cursor string) error {
	if slug(p) == "resync-required" {
		return &ResyncRequiredError{Topic: topic, Labels: labels, Cursor: cursor, Problem: p}
	}
	return &ProblemError{Problem: p}
}
