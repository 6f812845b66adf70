package app

import (
	"bytes"
	"encoding/json"

	"github.com/tandemhq/tandem/internal/store"
)

// MergePatch applies an RFC 7396 JSON Merge Patch to doc and returns the
// result. A patch that is not an object replaces doc entirely. Errors:
// store.ErrInvalid when doc or patch is not valid JSON.
func MergePatch(doc, patch []byte) ([]byte, error) {
	var p any
	if err := decodeNumber(patch, &p); err != nil {
		return nil, store.Errorf(store.CodeInvalid, "merge patch is not valid JSON")
	}
	var d any
	if len(bytes.TrimSpace(doc)) > 0 {
		if err := decodeNumber(doc, &d); err != nil {
			return nil, store.Errorf(store.CodeInvalid, "document is not valid JSON")
		}
	}
	return json.Marshal(mergeValue(d, p))
}

func mergeValue(target, patch any) any {
	pm, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	tm, ok := target.(map[string]any)
	if !ok {
		tm = map[string]any{}
	}
	for k, v := range pm {
		if v == nil {
			delete(tm, k)
			continue
		}
		tm[k] = mergeValue(tm[k], v)
	}
	return tm
}

// decodeNumber decodes JSON keeping numbers exact (json.Number) and
// rejecting trailing data.
func decodeNumber(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return store.ErrInvalid
	}
	if _, err := dec.Token(); err == nil {
		return store.ErrInvalid
	}
	return nil
}

// mergeResource applies the JSON Merge Patches data and labels (either
// may be empty: unchanged) to cur's data and labels, as PATCH does.
// Errors: store.ErrInvalid when a patch is not valid JSON, a
// ValidationError naming prefix+"/labels" when the labels would not map
// strings to strings.
func mergeResource(cur store.Resource, prefix string, data, labels json.RawMessage) (json.RawMessage, map[string]string, error) {
	outData, outLabels := cur.Data, cur.Labels
	if len(data) > 0 {
		var err error
		if outData, err = MergePatch(cur.Data, data); err != nil {
			return nil, nil, err
		}
	}
	if len(labels) > 0 {
		lb, _ := json.Marshal(cur.Labels)
		merged, err := MergePatch(lb, labels)
		if err != nil {
			return nil, nil, err
		}
		outLabels = map[string]string{}
		if !bytes.Equal(merged, []byte("null")) {
			if err := json.Unmarshal(merged, &outLabels); err != nil {
				return nil, nil, invalidField(prefix+"/labels", "labels must map strings to strings")
			}
		}
	}
	return outData, outLabels, nil
}
