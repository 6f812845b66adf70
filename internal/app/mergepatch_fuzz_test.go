package app

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzMergePatchSemantics checks RFC 7396 member by member: a null member
// removes the key, an object member merges recursively, any other member
// replaces the value, and keys the patch does not mention keep their value.
func FuzzMergePatchSemantics(f *testing.F) {
	f.Add([]byte(`{"a":{"b":1,"c":[1]},"d":"x"}`), []byte(`{"a":{"b":null,"c":{"e":1}},"f":null}`))
	f.Add([]byte(`[1]`), []byte(`{"x":[1,{"y":null}]}`))
	f.Add([]byte(`{"n":12345678901234567890}`), []byte(`{"m":1e400}`))
	f.Add([]byte(`{}`), []byte(`null`))
	f.Add([]byte(``), []byte(`{"a":{"b":{"c":null}}}`))
	f.Fuzz(func(t *testing.T, doc, patch []byte) {
		out, err := MergePatch(doc, patch)
		if err != nil {
			return
		}
		var d, p, r any
		if len(doc) > 0 && json.Unmarshal(doc, &d) != nil {
			return // MergePatch keeps exact numbers; only compare what encoding/json reads
		}
		if json.Unmarshal(patch, &p) != nil || json.Unmarshal(out, &r) != nil {
			return
		}
		checkMerge(t, "", d, p, r)
	})
}

func checkMerge(t *testing.T, at string, doc, patch, result any) {
	t.Helper()
	pm, ok := patch.(map[string]any)
	if !ok {
		if !reflect.DeepEqual(result, patch) {
			t.Fatalf("%s: non-object patch %v gave %v", at, patch, result)
		}
		return
	}
	rm, ok := result.(map[string]any)
	if !ok {
		t.Fatalf("%s: object patch gave non-object %v", at, result)
	}
	dm, _ := doc.(map[string]any)
	for k, pv := range pm {
		rv, present := rm[k]
		switch {
		case pv == nil:
			if present {
				t.Fatalf("%s/%s: null in the patch, yet %v in the result", at, k, rv)
			}
		case !present:
			t.Fatalf("%s/%s: patched member missing from the result", at, k)
		default:
			checkMerge(t, at+"/"+k, dm[k], pv, rv)
		}
	}
	for k, dv := range dm {
		if _, patched := pm[k]; patched {
			continue
		}
		if !reflect.DeepEqual(rm[k], dv) {
			t.Fatalf("%s/%s: untouched member changed from %v to %v", at, k, dv, rm[k])
		}
	}
	for k := range rm {
		_, inDoc := dm[k]
		_, inPatch := pm[k]
		if !inDoc && !inPatch {
			t.Fatalf("%s/%s: member from nowhere in the result", at, k)
		}
	}
}
