package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// This file holds input validation, encoding and error wrapping shared by
// the Store implementations (store/sqlite, store/postgres), so that both
// accept and refuse exactly the same input with the same messages.

// CheckCollectionName returns a CodeInvalid error for an invalid collection
// name, else nil.
func CheckCollectionName(name string) error {
	if !ValidName(name) {
		return Errorf(CodeInvalid, "invalid collection name %q: use 1-128 letters, digits, '-', '_' or '.', starting with a letter or digit", name)
	}
	return nil
}

// CheckResourceID returns a CodeInvalid error for an empty or invalid
// resource ID, else nil.
func CheckResourceID(id string) error {
	if id == "" {
		return Errorf(CodeInvalid, "resource ID is required")
	}
	if !ValidName(id) {
		return Errorf(CodeInvalid, "invalid resource ID %q: use 1-128 letters, digits, '-', '_' or '.', starting with a letter or digit", id)
	}
	return nil
}

// CollectionNotFound is the CodeNotFound error for a missing collection.
func CollectionNotFound(name string) error {
	return Errorf(CodeNotFound, "collection %q not found", name)
}

// ResourceNotFound is the CodeNotFound error for a missing resource.
func ResourceNotFound(collection, id string) error {
	return Errorf(CodeNotFound, "resource %q not found in collection %q", id, collection)
}

// NormalizeData validates resource data and returns it compacted; empty
// data becomes {}. Errors: CodeInvalid for invalid JSON or a non-object.
func NormalizeData(d json.RawMessage) (string, error) {
	if len(bytes.TrimSpace(d)) == 0 {
		return "{}", nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, d); err != nil {
		return "", Errorf(CodeInvalid, "resource data is not valid JSON")
	}
	if buf.Bytes()[0] != '{' {
		return "", Errorf(CodeInvalid, "resource data must be a JSON object")
	}
	return buf.String(), nil
}

// NormalizeSchema validates a collection schema and returns it compacted,
// or nil for "no schema" (empty or JSON null). Errors: CodeInvalid for
// invalid JSON or a schema that is neither an object nor a boolean.
func NormalizeSchema(d json.RawMessage) (*string, error) {
	t := bytes.TrimSpace(d)
	if len(t) == 0 || string(t) == "null" {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, t); err != nil {
		return nil, Errorf(CodeInvalid, "collection schema is not valid JSON")
	}
	if c := buf.Bytes()[0]; c != '{' && c != 't' && c != 'f' {
		return nil, Errorf(CodeInvalid, "collection schema must be a JSON object or boolean")
	}
	s := buf.String()
	return &s, nil
}

// EncodeLabels validates labels and encodes them as a JSON object. Errors:
// CodeInvalid for an invalid key or value.
func EncodeLabels(l map[string]string) (string, error) {
	for k, v := range l {
		if !ValidLabelKey(k) {
			return "", Errorf(CodeInvalid, "invalid label key %q", k)
		}
		if !ValidLabelValue(v) {
			return "", Errorf(CodeInvalid, "invalid value %q for label %q", v, k)
		}
	}
	if l == nil {
		return "{}", nil
	}
	b, err := json.Marshal(l)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// DecodeLabels decodes labels stored by EncodeLabels ("" is no labels).
// Errors: the stored text is not a JSON object of strings.
func DecodeLabels(s string) (map[string]string, error) {
	m := map[string]string{}
	if s == "" {
		return m, nil
	}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("decode labels: %w", err)
	}
	return m, nil
}

// NewEpoch returns a random store epoch (32 hex digits). Errors: the
// system's random source failed.
func NewEpoch() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// dbError is an unexpected database failure. It matches ErrUnavailable
// (whose message is client-safe) and unwraps to the driver error; its
// Error text is for logs only.
type dbError struct {
	backend, op string
	err         error
}

func (e *dbError) Error() string   { return e.backend + " store: " + e.op + ": " + e.err.Error() }
func (e *dbError) Unwrap() []error { return []error{ErrUnavailable, e.err} }

// WrapDBError leaves domain errors (*Error) alone, reports context errors
// as such and wraps everything else so that it matches ErrUnavailable;
// backend ("sqlite", "postgres") and op prefix the log text. It returns nil
// for a nil err.
func WrapDBError(ctx context.Context, backend, op string, err error) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	if ctx != nil && ctx.Err() != nil {
		return fmt.Errorf("%s store: %s: %w", backend, op, ctx.Err())
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s store: %s: %w", backend, op, err)
	}
	return &dbError{backend: backend, op: op, err: err}
}

// CheckPrecondition evaluates cond for a write to resource id of
// collection whose current state is cur (found says whether it exists).
// Errors: CodeNotFound (missing, with IfMatch or MustExist),
// CodePreconditionFailed (CreateOnly on an existing resource, IfMatch
// mismatch).
func CheckPrecondition(cond Precondition, cur Resource, found bool, collection, id string) error {
	if !found {
		if cond.IfMatch != 0 || cond.MustExist {
			return ResourceNotFound(collection, id)
		}
		return nil
	}
	if cond.CreateOnly {
		return Errorf(CodePreconditionFailed, "resource %q already exists in collection %q", id, collection)
	}
	if cond.IfMatch != 0 && cond.IfMatch != cur.Revision {
		return Errorf(CodePreconditionFailed, "resource %q is at revision %d, not %d", id, cur.Revision, cond.IfMatch)
	}
	return nil
}

// PutInput is a put's input, validated and encoded for storage.
type PutInput struct {
	Collection, ID string
	Data           string // compact JSON object
	Labels         string // EncodeLabels' form
	labels         map[string]string
}

// PreparePut validates and encodes r for PutResource, before any
// transaction. Errors: CodeInvalid (empty or bad ID, data not a JSON
// object, bad labels).
func PreparePut(r Resource) (PutInput, error) {
	if err := CheckResourceID(r.ID); err != nil {
		return PutInput{}, err
	}
	data, err := NormalizeData(r.Data)
	if err != nil {
		return PutInput{}, err
	}
	labels, err := EncodeLabels(r.Labels)
	if err != nil {
		return PutInput{}, err
	}
	l, err := DecodeLabels(labels) // a copy the caller cannot change, never nil
	if err != nil {
		return PutInput{}, err
	}
	return PutInput{Collection: r.Collection, ID: r.ID, Data: data, Labels: labels, labels: l}, nil
}

// PutPlan is what a put stores: the new state, its change type and, for an
// update, the labels the resource had before (for the change log).
type PutPlan struct {
	Resource   Resource
	Type       ChangeType
	PrevLabels *string
	// Prev is the state replaced (nil for a create).
	Prev *Resource
}

// PlanPut returns what in stores at revision rev and time t over the
// current state (cur, found), which passed CheckPrecondition; CreatedAt is
// kept across replaces. Errors: CodeInvalid if cur's labels cannot be
// encoded.
func PlanPut(in PutInput, cur Resource, found bool, rev int64, t time.Time) (PutPlan, error) {
	p := PutPlan{Type: Created, Resource: Resource{Collection: in.Collection, ID: in.ID, Data: json.RawMessage(in.Data),
		Labels: in.labels, Revision: rev, CreatedAt: t, UpdatedAt: t}}
	if found {
		prev, err := EncodeLabels(cur.Labels)
		if err != nil {
			return PutPlan{}, err
		}
		p.Type, p.PrevLabels, p.Resource.CreatedAt = Updated, &prev, cur.CreatedAt
		p.Prev = &cur
	}
	return p, nil
}
