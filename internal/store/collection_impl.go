package store

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds the collection checks and encodings shared by the Store
// implementations (see impl.go), so that both accept and refuse the same
// descriptions and indexes and write the same change-log entries.

// Bounds of a collection's declaration.
const (
	// MaxDescription is the longest description, in characters.
	MaxDescription = 1024
	// MaxIndexes is how many indexes a collection may declare.
	MaxIndexes = 16
	// MaxIndexFields is how many fields one index may have.
	MaxIndexFields = 4
	// MaxFieldSegments is how many dot-separated segments the path of a
	// data field may have; each is 1-64 of [A-Za-z0-9_-].
	MaxFieldSegments = 8
)

// IndexError is an invalid index declaration. Pointer is the JSON pointer
// of the offending member relative to the collection ("/indexes/2/fields/0").
// It matches ErrInvalid.
type IndexError struct {
	Pointer string
	Detail  string
}

func (e *IndexError) Error() string { return e.Pointer + ": " + e.Detail }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *IndexError) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == CodeInvalid
}

// As lets ErrorCode and ErrorMessage read an IndexError.
func (e *IndexError) As(target any) bool {
	if t, ok := target.(**Error); ok {
		*t = &Error{Code: CodeInvalid, Message: e.Error()}
		return true
	}
	return false
}

// CheckIndexes validates a collection's index declarations: at most
// MaxIndexes indexes (none is fine), each of 1-MaxIndexFields distinct
// fields, each field one of id, revision, createdAt, updatedAt,
// labels.<label key> or data.<path> (dot-separated segments of
// [A-Za-z0-9_-]{1,64}, at most MaxFieldSegments), no index declared
// twice. Errors: an *IndexError naming the first offending member.
func CheckIndexes(ix []Index) error {
	if len(ix) > MaxIndexes {
		return &IndexError{Pointer: "/indexes", Detail: fmt.Sprintf("at most %d indexes (got %d)", MaxIndexes, len(ix))}
	}
	for i, x := range ix {
		at := fmt.Sprintf("/indexes/%d", i)
		if len(x.Fields) == 0 || len(x.Fields) > MaxIndexFields {
			return &IndexError{Pointer: at + "/fields", Detail: fmt.Sprintf("an index has 1 to %d fields (got %d)", MaxIndexFields, len(x.Fields))}
		}
		for j, f := range x.Fields {
			if detail := checkIndexField(f); detail != "" {
				return &IndexError{Pointer: fmt.Sprintf("%s/fields/%d", at, j), Detail: detail}
			}
			if k := slices.Index(x.Fields[:j], f); k >= 0 {
				return &IndexError{Pointer: fmt.Sprintf("%s/fields/%d", at, j), Detail: fmt.Sprintf("field %q is already the index's field %d", f, k)}
			}
		}
		for k := range i {
			if slices.Equal(ix[k].Fields, x.Fields) {
				return &IndexError{Pointer: at, Detail: fmt.Sprintf("the same index as /indexes/%d", k)}
			}
		}
	}
	return nil
}

// checkIndexField returns why f is not an indexable field ("" when it is).
func checkIndexField(f string) string {
	const want = "use id, revision, createdAt, updatedAt, labels.<label key> or data.<path> (dot-separated segments of 1-64 letters, digits, '_' or '-', at most 8)"
	switch f {
	case "id", "revision", "createdAt", "updatedAt":
		return ""
	}
	if k, ok := strings.CutPrefix(f, "labels."); ok {
		if !ValidLabelKey(k) {
			return fmt.Sprintf("%.80q: invalid label key; %s", f, want)
		}
		return ""
	}
	p, ok := strings.CutPrefix(f, "data.")
	if !ok {
		return fmt.Sprintf("%.80q is not an indexable field: %s", f, want)
	}
	segs := strings.Split(p, ".")
	if len(segs) > MaxFieldSegments {
		return fmt.Sprintf("%.80q has %d path segments: %s", f, len(segs), want)
	}
	for _, s := range segs {
		if !validSegment(s) {
			return fmt.Sprintf("%.80q: invalid path segment %.80q; %s", f, s, want)
		}
	}
	return ""
}

func validSegment(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckDescription returns a CodeInvalid error for a description longer
// than MaxDescription characters or not valid UTF-8, else nil.
func CheckDescription(d string) error {
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > MaxDescription {
		return Errorf(CodeInvalid, "a collection description is valid UTF-8 of at most %d characters", MaxDescription)
	}
	return nil
}

// indexJSON is an index as stored (collections.indexes) and in the change log.
type indexJSON struct {
	Fields []string `json:"fields"`
}

// EncodeIndexes encodes indexes as stored: a JSON array of
// {"fields": [...]} ("[]" for none).
func EncodeIndexes(ix []Index) string {
	out := make([]indexJSON, 0, len(ix))
	for _, x := range ix {
		out = append(out, indexJSON{Fields: x.Fields})
	}
	b, _ := json.Marshal(out) // strings only: cannot fail
	return string(b)
}

// DecodeIndexes decodes EncodeIndexes' form ("" and "[]" are none, nil).
// Errors: the stored text is not such an array.
func DecodeIndexes(s string) ([]Index, error) {
	if s == "" {
		return nil, nil
	}
	var in []indexJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("decode indexes: %w", err)
	}
	if len(in) == 0 {
		return nil, nil
	}
	out := make([]Index, len(in))
	for i, x := range in {
		out[i] = Index{Fields: x.Fields}
	}
	return out, nil
}

// CollectionInput is a collection's definition, validated and encoded for
// storage.
type CollectionInput struct {
	Name        string
	Schema      *string // compact JSON, nil for none
	Description string
	Indexes     string // EncodeIndexes' form
	indexes     []Index
}

// PrepareCollection validates and encodes c's definition for
// CreateCollection and UpdateCollection, before any transaction. Errors:
// CodeInvalid (bad name, schema, description or indexes; an *IndexError
// for the indexes).
func PrepareCollection(c Collection) (CollectionInput, error) {
	if err := CheckCollectionName(c.Name); err != nil {
		return CollectionInput{}, err
	}
	schema, err := NormalizeSchema(c.Schema)
	if err != nil {
		return CollectionInput{}, err
	}
	if err := CheckDescription(c.Description); err != nil {
		return CollectionInput{}, err
	}
	if err := CheckIndexes(c.Indexes); err != nil {
		return CollectionInput{}, err
	}
	enc := EncodeIndexes(c.Indexes)
	ix, _ := DecodeIndexes(enc) // a copy the caller cannot change
	return CollectionInput{Name: c.Name, Schema: schema, Description: c.Description, Indexes: enc, indexes: ix}, nil
}

// Collection returns the collection in defines, at revision rev, created at
// created and last changed at updated.
func (in CollectionInput) Collection(rev int64, created, updated time.Time) Collection {
	c := Collection{Name: in.Name, Description: in.Description, Indexes: in.indexes, Revision: rev, CreatedAt: created, UpdatedAt: updated}
	if in.Schema != nil {
		c.Schema = json.RawMessage(*in.Schema)
	}
	return c
}

// CheckCollectionRevision returns ErrCollectionChanged (with a message
// naming the collection) when want is non-zero and differs from the
// collection's current revision got, else nil.
func CheckCollectionRevision(want, got int64, name string) error {
	if want != 0 && want != got {
		return Errorf(CodeCollectionChanged, "collection %q changed (revision %d, not %d) after the data was checked against its schema; check it again", name, got, want)
	}
	return nil
}

// collectionJSON is a collection's definition in the change log (the data
// of a CollectionUpdated change).
type collectionJSON struct {
	Name        string          `json:"name"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Description string          `json:"description"`
	Indexes     []indexJSON     `json:"indexes"`
	Revision    int64           `json:"revision"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
}

// EncodeCollectionChange encodes c as the data of its CollectionUpdated
// change.
func EncodeCollectionChange(c Collection) string {
	j := collectionJSON{Name: c.Name, Schema: c.Schema, Description: c.Description, Indexes: []indexJSON{},
		Revision: c.Revision, CreatedAt: c.CreatedAt.UTC(), UpdatedAt: c.UpdatedAt.UTC()}
	for _, x := range c.Indexes {
		j.Indexes = append(j.Indexes, indexJSON{Fields: x.Fields})
	}
	b, _ := json.Marshal(j) // a compact schema and strings: cannot fail
	return string(b)
}

// DecodeCollectionChange decodes EncodeCollectionChange's form. Errors:
// the stored text is not such an object.
func DecodeCollectionChange(s string) (Collection, error) {
	var j collectionJSON
	if err := json.Unmarshal([]byte(s), &j); err != nil {
		return Collection{}, fmt.Errorf("decode collection change: %w", err)
	}
	c := Collection{Name: j.Name, Description: j.Description, Revision: j.Revision,
		CreatedAt: j.CreatedAt.UTC(), UpdatedAt: j.UpdatedAt.UTC()}
	if len(j.Schema) > 0 && string(j.Schema) != "null" {
		c.Schema = j.Schema
	}
	for _, x := range j.Indexes {
		c.Indexes = append(c.Indexes, Index{Fields: x.Fields})
	}
	return c, nil
}

// CollectionChange is the change-log entry of an update of c (at c.Revision).
func CollectionChange(c Collection) Change {
	cc := c
	return Change{Revision: c.Revision, Type: CollectionUpdated, Collection: &cc,
		Resource: Resource{Collection: c.Name, Labels: map[string]string{}, Revision: c.Revision, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}}
}

// CheckCollectionCondition evaluates cond for an update of collection cur,
// given the store's compaction point (Changes' ErrCompacted below it) and
// whether a resource of the collection was created or updated after
// cond.CheckedThrough. Errors: CodePreconditionFailed (IfMatch),
// CodeCollectionChanged (CheckedThrough).
func CheckCollectionCondition(cond CollectionCondition, cur Collection, compacted int64, changed bool) error {
	if cond.IfMatch != 0 && cond.IfMatch != cur.Revision {
		return Errorf(CodePreconditionFailed, "collection %q is at revision %d, not %d", cur.Name, cur.Revision, cond.IfMatch)
	}
	if cond.CheckedThrough == 0 {
		return nil
	}
	if changed || cond.CheckedThrough < compacted {
		return Errorf(CodeCollectionChanged, "resources of collection %q changed after revision %d, through which they were checked against the new schema; check them again", cur.Name, cond.CheckedThrough)
	}
	return nil
}
