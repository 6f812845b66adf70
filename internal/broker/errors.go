package broker

import "errors"

// Errors returned by brokers.
var (
	// ErrGone: the requested position is outside the retained history or
	// from another epoch; the client must resync.
	ErrGone = errors.New("broker: position no longer in history")
	// ErrUnavailable: the backend cannot be reached.
	ErrUnavailable = errors.New("broker: backend unavailable")
)
