package app

import "github.com/tandemhq/tandem/internal/store"

// InputError is an invalid request input that is not part of a body: Name
// is the request member it concerns, the same name as the query
// parameter of a REST call and the member of a WebSocket frame, so each
// transport can point at it.
type InputError struct {
	Name   string
	Detail string
}

func (e *InputError) Error() string { return e.Name + ": " + e.Detail }

// Is makes errors.Is(err, store.ErrInvalid) true.
func (e *InputError) Is(target error) bool {
	t, ok := target.(*store.Error)
	return ok && t.Code == store.CodeInvalid
}

// As lets store.ErrorCode and store.ErrorMessage read an InputError.
func (e *InputError) As(target any) bool {
	if t, ok := target.(**store.Error); ok {
		*t = &store.Error{Code: store.CodeInvalid, Message: e.Error()}
		return true
	}
	return false
}
