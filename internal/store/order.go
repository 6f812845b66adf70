package store

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// MaxOrderKeys bounds the keys of an orderBy.
const MaxOrderKeys = 4

// OrderKey is one key of a list order: a field of the filter language,
// ascending unless Desc.
//
// The order of one field's values: a missing field first, then null,
// false, true, numbers (by value), strings (byte order), then arrays and
// objects (in an order of the store's own, the same on every read).
// Descending reverses it. Resources that tie are ordered by ID.
type OrderKey struct {
	Field Field
	Desc  bool
}

// ParseOrderBy parses an orderBy such as "data.score desc, id": up to
// MaxOrderKeys comma-separated fields, each optionally followed by asc or
// desc, each field at most once. An empty string yields nil (ID order).
// Keys after id are refused (IDs are unique, so they would never apply).
// Errors: CodeInvalid naming the key and position.
func ParseOrderBy(s string) ([]OrderKey, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	if len(s) > MaxFilterLength {
		return nil, Errorf(CodeInvalid, "is %d bytes long; the limit is %d", len(s), MaxFilterLength)
	}
	var keys []OrderKey
	pos := 0
	for _, part := range strings.Split(s, ",") {
		start := pos
		pos += len(part) + 1
		lead := len(part) - len(strings.TrimLeft(part, " \t"))
		text := strings.TrimSpace(part)
		if text == "" {
			return nil, Errorf(CodeInvalid, "position %d: empty key; write fields separated by commas, e.g. \"data.score desc, id\"", start+1)
		}
		k := OrderKey{}
		if i := strings.LastIndexAny(text, " \t"); i > 0 {
			switch dir := strings.ToLower(text[i+1:]); dir {
			case "asc", "desc":
				k.Desc = dir == "desc"
				text = strings.TrimSpace(text[:i])
			}
		}
		f, err := ParseField(text)
		if err != nil {
			msg := ErrorMessage(err)
			if p, rest, ok := strings.Cut(strings.TrimPrefix(msg, "position "), ": "); ok {
				if n, e := strconv.Atoi(p); e == nil {
					msg = fmt.Sprintf("position %d: %s", start+lead+n, rest)
				}
			}
			return nil, Errorf(CodeInvalid, "%s (order keys are fields followed by asc or desc)", msg)
		}
		for _, o := range keys {
			if o.Field.Equal(f) {
				return nil, Errorf(CodeInvalid, "position %d: %s appears twice", start+lead+1, f)
			}
			if o.Field.Root == RootID {
				return nil, Errorf(CodeInvalid, "position %d: nothing can follow id: IDs are unique", start+lead+1)
			}
		}
		k.Field = f
		keys = append(keys, k)
		if len(keys) > MaxOrderKeys {
			return nil, Errorf(CodeInvalid, "position %d: more than %d keys", start+lead+1, MaxOrderKeys)
		}
	}
	return keys, nil
}

// OrderString returns the canonical form of an order ("" for ID order).
func OrderString(keys []OrderKey) string {
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.Field.String()
		if k.Desc {
			parts[i] += " desc"
		}
	}
	return strings.Join(parts, ", ")
}

// EncodeKeyValues encodes the order values of a page's last item (as
// Page.LastValues holds them) so that DecodeKeyValues restores them with
// their types, for a page token.
func EncodeKeyValues(vs []any) json.RawMessage {
	out := make([]any, len(vs))
	for i, v := range vs {
		switch t := v.(type) {
		case nil:
			out[i] = nil
		case int64:
			out[i] = map[string]string{"i": strconv.FormatInt(t, 10)}
		case float64:
			out[i] = map[string]float64{"f": t}
		case string:
			out[i] = map[string]string{"s": t}
		case time.Time:
			out[i] = map[string]string{"t": t.UTC().Format(time.RFC3339Nano)}
		default:
			out[i] = map[string]string{"s": fmt.Sprint(t)}
		}
	}
	b, _ := json.Marshal(out)
	return b
}

// DecodeKeyValues reverses EncodeKeyValues. Errors: CodeInvalid for
// anything EncodeKeyValues does not produce.
func DecodeKeyValues(b []byte) ([]any, error) {
	var raw []map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil || len(raw) > 3*MaxOrderKeys {
		return nil, Errorf(CodeInvalid, "malformed order values")
	}
	out := make([]any, len(raw))
	for i, m := range raw {
		if m == nil {
			continue
		}
		if len(m) != 1 {
			return nil, Errorf(CodeInvalid, "malformed order values")
		}
		for k, v := range m {
			var s string
			var f float64
			var err error
			switch k {
			case "i":
				if err = json.Unmarshal(v, &s); err == nil {
					out[i], err = strconv.ParseInt(s, 10, 64)
				}
			case "f":
				if err = json.Unmarshal(v, &f); err == nil && (math.IsNaN(f) || math.IsInf(f, 0)) {
					err = fmt.Errorf("not finite")
				}
				out[i] = f
			case "s":
				err = json.Unmarshal(v, &s)
				out[i] = s
			case "t":
				if err = json.Unmarshal(v, &s); err == nil {
					out[i], err = time.Parse(time.RFC3339Nano, s)
				}
			default:
				err = fmt.Errorf("unknown type")
			}
			if err != nil {
				return nil, Errorf(CodeInvalid, "malformed order values")
			}
		}
	}
	return out, nil
}
