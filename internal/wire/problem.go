package wire

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/store"
)

// ProblemBase prefixes every problem type URI.
const ProblemBase = specval.ProblemBase

// Kind is one problem type: its HTTP status, URI slug and title.
type Kind struct {
	Status int
	Slug   string
	Title  string
}

// errorTable is the one mapping from error codes to HTTP statuses and
// problem types. Every transport uses it (WebSocket replies and SSE error
// events carry the same type and status as REST).
var errorTable = map[store.Code]Kind{
	store.CodeInvalid:            {http.StatusBadRequest, "invalid-request", "The request is invalid"},
	store.CodeUnprocessable:      {http.StatusUnprocessableEntity, "schema-violation", "The data does not match the collection schema"},
	store.CodeInvalidValue:       {http.StatusUnprocessableEntity, "invalid-value", "A value is not acceptable"},
	store.CodeNotFound:           {http.StatusNotFound, "not-found", "Not found"},
	store.CodeConflict:           {http.StatusConflict, "conflict", "Conflict"},
	store.CodePreconditionFailed: {http.StatusPreconditionFailed, "precondition-failed", "Precondition failed"},
	store.CodeCompacted:          {http.StatusGone, "resync-required", "Resync required"},
	store.CodeUnavailable:        {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	store.CodeUnauthenticated:    {http.StatusUnauthorized, "unauthenticated", "Authentication required"},
	store.CodeForbidden:          {http.StatusForbidden, "forbidden", "Forbidden"},
	store.CodeTooManyRequests:    {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	store.CodeTooLarge:           {http.StatusRequestEntityTooLarge, "too-large", "Request too large"},
	store.CodeNeedsIndex:         {http.StatusUnprocessableEntity, "needs-index", "The query needs an index"},
	// Retried by app until it gives up with a conflict; defence only.
	store.CodeCollectionChanged: {http.StatusConflict, "conflict", "Conflict"},
}

// Problem types raised by the transports themselves, and the three of
// RFC 6750 (no credentials, rejected credentials, missing grant).
var (
	KindInvalid           = errorTable[store.CodeInvalid]
	KindNotFound          = errorTable[store.CodeNotFound]
	KindConflict          = errorTable[store.CodeConflict]
	KindForbidden         = errorTable[store.CodeForbidden]
	KindRateLimited       = errorTable[store.CodeTooManyRequests]
	KindTooLarge          = errorTable[store.CodeTooLarge]
	KindUnavailable       = errorTable[store.CodeUnavailable]
	KindUnsupportedMedia  = Kind{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type"}
	KindRouteNotFound     = Kind{http.StatusNotFound, "not-found", "Not found"}
	KindMethodNotAllowed  = Kind{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed"}
	KindInternal          = Kind{http.StatusInternalServerError, "internal", "Internal server error"}
	KindRequestTimeout    = Kind{http.StatusRequestTimeout, "request-timeout", "Request timeout"}
	KindSlowConsumer      = Kind{http.StatusTooManyRequests, "slow-consumer", "Slow consumer"}
	KindUnauthenticated   = errorTable[store.CodeUnauthenticated]
	KindInvalidToken      = Kind{http.StatusUnauthorized, "invalid-token", "Invalid token"}
	KindInsufficientScope = Kind{http.StatusForbidden, "insufficient-scope", "Insufficient scope"}
	KindHookUnavailable   = Kind{http.StatusServiceUnavailable, "hook-unavailable", "Application hook unavailable"}
	KindHookDenied        = Kind{http.StatusForbidden, "denied", "Denied by the application"}
)

// Type is the problem type URI of k.
func (k Kind) Type() string { return ProblemBase + k.Slug }

// Problem converts any error into the problem object of a REST response:
// an app.InputError names a query parameter. Errors without a code become
// a generic 500 whose detail never contains internal text.
func Problem(err error) api.Problem { return problem(err, api.Query) }

// FrameProblem is Problem for a WebSocket reply: an app.InputError names
// the member of the client's frame.
func FrameProblem(err error) api.Problem { return problem(err, api.Body) }

func problem(err error, inputs api.ProblemFieldIn) api.Problem {
	p := kindProblem(err, inputs)
	var be *store.BatchOpError
	if errors.As(err, &be) {
		i := be.Index
		p.Operation = &i
	}
	return p
}

// kindProblem is problem without the operation of a batch.
func kindProblem(err error, inputs api.ProblemFieldIn) api.Problem {
	switch {
	case errors.Is(err, auth.ErrInsufficientScope):
		return NewProblem(KindInsufficientScope, err.Error(), nil)
	case errors.Is(err, auth.ErrInvalidToken):
		return NewProblem(KindInvalidToken, err.Error(), nil)
	case errors.Is(err, auth.ErrNoToken):
		return NewProblem(KindUnauthenticated, err.Error(), nil)
	}
	var (
		denied *app.HookDeniedError
		failed *app.HookFailedError
	)
	switch {
	case errors.As(err, &denied):
		return hookProblem(denied)
	case errors.As(err, &failed):
		return NewProblem(KindHookUnavailable, failed.Error(), nil)
	}
	code := store.ErrorCode(err)
	kind, ok := errorTable[code]
	if !ok {
		return NewProblem(KindInternal, "an internal error occurred; it has been logged", nil)
	}
	var fields []api.ProblemField
	var pe *paramError
	if errors.As(err, &pe) {
		fields = append(fields, pe.field)
	}
	var ie *app.InputError
	if errors.As(err, &ie) {
		if inputs == api.Body {
			fields = append(fields, BodyField("/"+ie.Name, ie.Detail))
		} else {
			fields = append(fields, ParamField(inputs, ie.Name, ie.Detail))
		}
	}
	var ve *app.ValidationError
	if errors.As(err, &ve) {
		for _, f := range ve.Fields {
			fields = append(fields, BodyField(f.Pointer, f.Detail))
		}
	}
	var oe *app.SchemaOffendersError
	if errors.As(err, &oe) {
		return offendersProblem(kind, oe)
	}
	return NewProblem(kind, store.ErrorMessage(err), fields)
}

// offendersProblem is the 422 of a new schema that stored resources do not
// match: the body's /schema is at fault, and offenders lists them.
func offendersProblem(k Kind, e *app.SchemaOffendersError) api.Problem {
	p := NewProblem(k, e.Error(), []api.ProblemField{BodyField("/schema", "stored resources do not match the new schema (see offenders)")})
	list := make([]api.SchemaOffender, 0, len(e.Offenders))
	for _, o := range e.Offenders {
		list = append(list, api.SchemaOffender{Id: o.ID, Pointer: o.Pointer, Detail: o.Detail})
	}
	p.Offenders = &list
	return p
}

// hookProblem is the problem an application's hook refused a request
// with: its status, and its type and title or the defaults.
func hookProblem(e *app.HookDeniedError) api.Problem {
	hp := e.Problem
	k := KindHookDenied
	k.Status = hp.Status
	p := NewProblem(k, hp.Detail, nil)
	if hp.Type != "" {
		p.Type = hp.Type
	}
	if hp.Title != "" {
		p.Title = hp.Title
	}
	if hp.Detail == "" {
		d := e.Error()
		p.Detail = &d
	}
	return p
}

// InvalidFrame is the problem of a client frame that failed decoding or
// validation (a *specval.FrameError names every invalid member; any other
// error says only that the frame is invalid).
func InvalidFrame(err error) api.Problem {
	var fe *specval.FrameError
	if !errors.As(err, &fe) {
		return Problem(store.ErrInvalid)
	}
	fields := make([]api.ProblemField, 0, len(fe.Fields))
	for _, f := range fe.Fields {
		ptr := f.Pointer
		fields = append(fields, api.ProblemField{In: api.Body, Pointer: &ptr, Name: &ptr, Detail: f.Detail})
	}
	return NewProblem(KindInvalid, fe.Error(), fields)
}

// ProblemType returns the problem type URI and status for an error code.
func ProblemType(code store.Code) (string, int) {
	k, ok := errorTable[code]
	if !ok {
		k = KindInternal
	}
	return k.Type(), k.Status
}

// NewProblem is a problem of kind k.
func NewProblem(k Kind, detail string, fields []api.ProblemField) api.Problem {
	p := api.Problem{Type: k.Type(), Title: k.Title, Status: k.Status}
	if detail != "" {
		p.Detail = &detail
	}
	if len(fields) > 0 {
		p.Errors = &fields
	}
	return p
}

// BodyField names a member of the request body by JSON pointer ("" for
// the body as a whole).
func BodyField(pointer, detail string) api.ProblemField {
	f := api.ProblemField{In: api.Body, Detail: detail}
	if pointer != "" {
		p := pointer
		f.Pointer = &p
		name := dotted(pointer)
		f.Name = &name
	}
	return f
}

// ParamField names a parameter or header.
func ParamField(in api.ProblemFieldIn, name, detail string) api.ProblemField {
	n := name
	return api.ProblemField{In: in, Name: &n, Detail: detail}
}

// ParamError is an invalid-request error naming one parameter or header;
// Problem renders it with its field.
func ParamError(in api.ProblemFieldIn, name, detail string) error {
	msg := detail
	if name != "" {
		msg = fmt.Sprintf("%s %s: %s", in, name, detail)
	}
	return &paramError{msg: msg, field: ParamField(in, name, detail)}
}

type paramError struct {
	msg   string
	field api.ProblemField
}

func (e *paramError) Error() string { return e.msg }

func (e *paramError) As(target any) bool {
	if t, ok := target.(**store.Error); ok {
		*t = &store.Error{Code: store.CodeInvalid, Message: e.msg}
		return true
	}
	return false
}

// dotted turns a JSON pointer into a dotted field path: /data/items/0 → data.items.0.
func dotted(pointer string) string {
	out := make([]byte, 0, len(pointer))
	for i := 0; i < len(pointer); i++ {
		c := pointer[i]
		switch {
		case c == '/' && i == 0:
		case c == '/':
			out = append(out, '.')
		case c == '~' && i+1 < len(pointer) && pointer[i+1] == '1':
			out = append(out, '/')
			i++
		case c == '~' && i+1 < len(pointer) && pointer[i+1] == '0':
			out = append(out, '~')
			i++
		default:
			out = append(out, c)
		}
	}
	return string(out)
}
