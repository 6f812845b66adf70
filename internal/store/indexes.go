package store

import (
	"encoding/json"
)

// indexJSON is the stored form of one declared index.
type indexJSON struct {
	Fields []string `json:"fields"`
}

// EncodeIndexes returns the stored form of a collection's indexes (a JSON
// array, "[]" for none).
func EncodeIndexes(ixs []Index) string {
	out := make([]indexJSON, len(ixs))
	for i, ix := range ixs {
		out[i] = indexJSON(ix)
	}
	b, _ := json.Marshal(out)
	return string(b)
}

// DecodeIndexes reads EncodeIndexes' form ("" is none). Errors:
// CodeInvalid for anything else (a store defect).
func DecodeIndexes(s string) ([]Index, error) {
	if s == "" {
		return nil, nil
	}
	var in []indexJSON
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, Errorf(CodeInvalid, "stored indexes are malformed: %v", err)
	}
	var out []Index
	for _, ix := range in {
		out = append(out, Index(ix))
	}
	return out, nil
}

// The bounds of a collection's declared indexes.
const (
	MaxIndexes     = 16
	MaxIndexFields = 4
)

// CheckIndexes validates declared indexes: at most MaxIndexes, each of 1 to
// MaxIndexFields fields that can be indexed (CheckIndexField), no field
// twice in one index and no index twice. Errors: CodeInvalid naming the
// index and field by position (indexes/1/fields/0).
func CheckIndexes(ixs []Index) error {
	if len(ixs) > MaxIndexes {
		return Errorf(CodeInvalid, "indexes: more than %d", MaxIndexes)
	}
	seen := map[string]int{}
	for i, ix := range ixs {
		if len(ix.Fields) == 0 || len(ix.Fields) > MaxIndexFields {
			return Errorf(CodeInvalid, "indexes/%d/fields: an index has 1 to %d fields", i, MaxIndexFields)
		}
		var canon []string
		for j, name := range ix.Fields {
			f, err := ParseField(name)
			if err == nil {
				err = CheckIndexField(f)
			}
			if err != nil {
				return Errorf(CodeInvalid, "indexes/%d/fields/%d: %s", i, j, ErrorMessage(err))
			}
			for _, c := range canon {
				if c == f.String() {
					return Errorf(CodeInvalid, "indexes/%d/fields/%d: %s appears twice", i, j, f)
				}
			}
			canon = append(canon, f.String())
		}
		key := EncodeIndexes([]Index{{Fields: canon}})
		if k, dup := seen[key]; dup {
			return Errorf(CodeInvalid, "indexes/%d: the same index as indexes/%d", i, k)
		}
		seen[key] = i
	}
	return nil
}

// CanonicalIndexes returns ixs with every field in canonical form (after
// CheckIndexes); nil for none.
func CanonicalIndexes(ixs []Index) []Index {
	var out []Index
	for _, ix := range ixs {
		var fs []string
		for _, name := range ix.Fields {
			if f, err := ParseField(name); err == nil {
				name = f.String()
			}
			fs = append(fs, name)
		}
		out = append(out, Index{Fields: fs})
	}
	return out
}
