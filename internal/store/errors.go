package store

import (
	"errors"
	"fmt"
)

// Code is a stable, transport-independent error class. The HTTP and
// WebSocket layers map each code to a status and a problem type in one table.
type Code string

// The error codes returned by stores and the app layer.
const (
	CodeInvalid            Code = "invalid"
	CodeNotFound           Code = "not-found"
	CodeConflict           Code = "conflict"
	CodePreconditionFailed Code = "precondition-failed"
	CodeCompacted          Code = "resync-required"
	CodeUnavailable        Code = "unavailable"
	// CodeNeedsIndex refuses a list query that would examine more
	// resources than its budget: the message names the fields to index.
	CodeNeedsIndex Code = "needs-index"
	// CodeCollectionChanged: the collection (its schema) or its resources
	// changed since the caller read them; read again and retry.
	CodeCollectionChanged Code = "collection-changed"
)

// Sentinel errors; wrap them (fmt.Errorf("…: %w", ErrNotFound)) or use Errorf.
var (
	ErrInvalid            = &Error{Code: CodeInvalid, Message: "invalid input"}
	ErrNotFound           = &Error{Code: CodeNotFound, Message: "not found"}
	ErrConflict           = &Error{Code: CodeConflict, Message: "conflict"}
	ErrPreconditionFailed = &Error{Code: CodePreconditionFailed, Message: "precondition failed"}
	ErrCompacted          = &Error{Code: CodeCompacted, Message: "the change log no longer holds the requested position"}
	ErrUnavailable        = &Error{Code: CodeUnavailable, Message: "store unavailable"}
	ErrCollectionChanged  = &Error{Code: CodeCollectionChanged, Message: "the collection changed meanwhile; read it again and retry"}
)

// Error is a domain error whose Message is safe to show to clients.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return e.Message }

// Is makes errors.Is(err, ErrNotFound) true for any *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with the given code and a client-safe message.
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of err, or "" when err carries none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ErrorMessage returns the client-safe message of err, or "" when it has none.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return ""
}

// Codes raised above the store (app, auth, transports) share the same table.
const (
	CodeUnprocessable Code = "unprocessable"
	// CodeInvalidValue is a well-formed request member whose value is
	// refused (a webhook URL to a private address, a secret of the wrong
	// form): 422, naming the member.
	CodeInvalidValue    Code = "invalid-value"
	CodeUnauthenticated Code = "unauthenticated"
	CodeForbidden       Code = "forbidden"
	CodeTooManyRequests Code = "too-many-requests"
	CodeTooLarge        Code = "too-large"
)
