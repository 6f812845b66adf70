package app

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/tandemhq/tandem/internal/store"
)

// Limits on a collection's JSON Schema, checked when the collection is
// created (and again whenever a stored schema is compiled). Each bounds a
// cost that would otherwise grow without limit: the compiler's time, which
// grows with the number of subschemas and with how deeply they nest, and
// the number of subschema applications that validating one value can set
// off. A schema over any of them is refused with a 422 problem naming the
// offending place under /schema.
const (
	// MaxSchemaBytes is the largest schema document accepted, in bytes.
	MaxSchemaBytes = 256 << 10

	// MaxSchemaDepth bounds the JSON nesting of the schema document: every
	// object or array opens one level, so {"properties":{"a":{}}} is 3 deep
	// and 31 levels of nested "properties" fit. It is checked on the raw
	// bytes, before the document is parsed or compiled.
	MaxSchemaDepth = 64

	// MaxSchemaSubschemas bounds the number of subschemas: objects and
	// booleans under a subschema keyword (properties, $defs, items, allOf,
	// …), including those of any metaschema the schema references. When a
	// $ref points outside the subschema keywords, every object and boolean
	// of the document counts.
	MaxSchemaSubschemas = 1500

	// MaxSchemaDepthSum bounds the sum, over every subschema counted by
	// MaxSchemaSubschemas, of its nesting depth in the document (as
	// MaxSchemaDepth counts it): the compiler's work per subschema grows
	// with its depth, so a schema may be wide or deep, not both at the
	// limit. 1,500 subschemas 16 levels deep on average fit.
	MaxSchemaDepthSum = 24000

	// MaxSchemaExpansion bounds how many subschema applications one value
	// can set off in place, counting every branch of $ref, $dynamicRef,
	// $recursiveRef, allOf, anyOf, oneOf, not, if/then/else,
	// dependentSchemas and dependencies, before the validator descends
	// into a member or an item. The subschema that applies itself is
	// counted too, so {"allOf":[{},{}]} sets off 3.
	MaxSchemaExpansion = 1000

	// MaxSchemaPatternSize bounds the total size of a schema's regular
	// expressions (pattern values and patternProperties names): each
	// distinct pattern counts once, as the larger of its length in bytes
	// and the number of instructions it compiles to with counted
	// repetitions expanded (^[a-z0-9-]{1,64}$ is about 130, \p{L}{1000}
	// about 1,000). Compiling them is linear in this size; matching is
	// linear in it times the string's length, which the validation budget
	// charges.
	MaxSchemaPatternSize = 20000
)

// maxGrowthWork bounds the work of the growth check (subschema visits);
// beyond it the check gives up and leaves the schema to the validation
// budget.
const maxGrowthWork = 100000

// schemaLimitError is the 422 for a schema over a limit, at pointer (a
// JSON pointer into the request body, under /schema).
func schemaLimitError(pointer, detail string) error {
	return &ValidationError{Code: store.CodeUnprocessable, Message: "schema is not accepted: " + detail,
		Fields: []FieldError{{Pointer: pointer, Detail: detail}}}
}

// checkSchemaBytes checks the raw document's size and nesting depth
// without parsing it. It reads only bytes; a document that is not JSON
// passes when it is small and shallow enough, and the parser refuses it
// afterwards. Errors: a ValidationError (unprocessable) naming /schema, or
// the pointer of the value that nests too deep.
func checkSchemaBytes(doc []byte) error {
	if len(doc) > MaxSchemaBytes {
		return schemaLimitError("/schema", fmt.Sprintf("the schema is %d bytes; at most %d are accepted", len(doc), MaxSchemaBytes))
	}
	// Each open container remembers where its current member's key is
	// (objects) or its current index (arrays), so the path of the value
	// that goes too deep can be named.
	type frame struct {
		object     bool
		keyStart   int // offset of the current key's opening quote, -1 before the first key
		keyEnd     int
		index      int
		expectsKey bool
	}
	var stack []frame
	for i := 0; i < len(doc); i++ {
		switch c := doc[i]; c {
		case '"':
			start := i
			for i++; i < len(doc) && doc[i] != '"'; i++ {
				if doc[i] == '\\' {
					i++
				}
			}
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expectsKey {
				stack[n-1].keyStart, stack[n-1].keyEnd, stack[n-1].expectsKey = start, min(i+1, len(doc)), false
			}
		case '{', '[':
			if len(stack) == MaxSchemaDepth {
				ptr := "/schema"
				for _, f := range stack {
					switch {
					case f.object && f.keyStart >= 0:
						ptr += "/" + escapePointer(jsonKey(doc[f.keyStart:f.keyEnd]))
					case !f.object:
						ptr += "/" + strconv.Itoa(f.index)
					}
				}
				return schemaLimitError(ptr, fmt.Sprintf("the schema nests deeper than %d levels of objects and arrays", MaxSchemaDepth))
			}
			stack = append(stack, frame{object: c == '{', keyStart: -1, expectsKey: c == '{'})
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if n := len(stack); n > 0 {
				if stack[n-1].object {
					stack[n-1].expectsKey = true
				} else {
					stack[n-1].index++
				}
			}
		}
	}
	return nil
}

// jsonKey decodes a quoted JSON string; a malformed one is returned
// without its quotes.
func jsonKey(quoted []byte) string {
	var k string
	if json.Unmarshal(quoted, &k) == nil {
		return k
	}
	return strings.Trim(string(quoted), `"`)
}

// Subschema keywords of every draft, by the shape of their value.
var (
	schemaMapKeywords    = []string{"$defs", "definitions", "properties", "patternProperties", "dependentSchemas", "dependencies"}
	schemaArrayKeywords  = []string{"allOf", "anyOf", "oneOf", "prefixItems", "items"}
	schemaSingleKeywords = []string{"not", "if", "then", "else", "items", "additionalItems", "additionalProperties",
		"unevaluatedProperties", "unevaluatedItems", "contains", "propertyNames", "contentSchema"}
)

// schemaCounts is what countSubschemas found.
type schemaCounts struct {
	count, depthSum int
	// at is the pointer (under /schema) of the subschema that went over a
	// limit.
	at string
	// anchors are the pointers (into the document) of the objects with a
	// $dynamicAnchor, which a $dynamicRef can reach even when nothing else
	// refers to them.
	anchors []string
	// patterns are the regular expressions (pattern values and
	// patternProperties names), with their pointers under /schema.
	patterns []foundPattern
}

type foundPattern struct{ pointer, pattern string }

// collectPatterns adds the regular expressions of schema object obj at
// ptr to c.
func (c *schemaCounts) collectPatterns(obj map[string]any, ptr string) {
	if p, ok := obj["pattern"].(string); ok {
		c.patterns = append(c.patterns, foundPattern{"/schema" + ptr + "/pattern", p})
	}
	if m, ok := obj["patternProperties"].(map[string]any); ok {
		for _, p := range sortedKeys(m) {
			c.patterns = append(c.patterns, foundPattern{"/schema" + ptr + "/patternProperties/" + escapePointer(p), p})
		}
	}
}

// countSubschemas counts the subschemas of a parsed document and the sum
// of their depths, and collects the dynamic anchors. It follows the
// subschema keywords; when a $ref, $dynamicRef or $recursiveRef points
// elsewhere (into an unknown keyword, or into enum or const), every object
// and boolean of the document counts, since the compiler compiles
// whatever such a reference reaches, and whatever that refers to. Errors: a ValidationError (unprocessable) naming the
// subschema that went over MaxSchemaSubschemas or MaxSchemaDepthSum.
func countSubschemas(doc any) (schemaCounts, error) {
	var c schemaCounts
	offGrid := false
	var walk func(v any, ptr string, depth int) bool
	// add counts one subschema at ptr; false means a limit is exceeded.
	add := func(ptr string, depth int) bool {
		c.count++
		c.depthSum += depth
		if c.count > MaxSchemaSubschemas || c.depthSum > MaxSchemaDepthSum {
			c.at = "/schema" + ptr
			return false
		}
		return true
	}
	walk = func(v any, ptr string, depth int) bool {
		obj, isObj := v.(map[string]any)
		_, isBool := v.(bool)
		if !isObj && !isBool {
			return true
		}
		if !add(ptr, depth) {
			return false
		}
		if !isObj {
			return true
		}
		if _, ok := obj["$dynamicAnchor"].(string); ok {
			c.anchors = append(c.anchors, ptr)
		}
		c.collectPatterns(obj, ptr)
		for _, k := range []string{"$ref", "$dynamicRef", "$recursiveRef"} {
			if ref, ok := obj[k].(string); ok && !refOnGrid(ref) {
				offGrid = true
			}
		}
		for _, k := range sortedKeys(obj) {
			kp := ptr + "/" + escapePointer(k)
			switch {
			case slices.Contains(schemaMapKeywords, k):
				if m, ok := obj[k].(map[string]any); ok {
					for _, name := range sortedKeys(m) {
						if !walk(m[name], kp+"/"+escapePointer(name), depth+2) {
							return false
						}
					}
				}
			case slices.Contains(schemaArrayKeywords, k) && isArray(obj[k]):
				for i, x := range obj[k].([]any) {
					if !walk(x, kp+"/"+strconv.Itoa(i), depth+2) {
						return false
					}
				}
			case slices.Contains(schemaSingleKeywords, k):
				if !walk(obj[k], kp, depth+1) {
					return false
				}
			}
		}
		return true
	}
	if !walk(doc, "", 1) {
		return c, subschemaLimitError(c)
	}
	if !offGrid {
		return c, nil
	}
	// Some reference leaves the subschema keywords: count everything.
	c = schemaCounts{}
	var all func(v any, ptr string, depth int) bool
	all = func(v any, ptr string, depth int) bool {
		switch x := v.(type) {
		case bool:
			return add(ptr, depth)
		case []any:
			for i, e := range x {
				if !all(e, ptr+"/"+strconv.Itoa(i), depth+1) {
					return false
				}
			}
		case map[string]any:
			if !add(ptr, depth) {
				return false
			}
			if _, ok := x["$dynamicAnchor"].(string); ok {
				c.anchors = append(c.anchors, ptr)
			}
			c.collectPatterns(x, ptr)
			for _, k := range sortedKeys(x) {
				if !all(x[k], ptr+"/"+escapePointer(k), depth+1) {
					return false
				}
			}
		}
		return true
	}
	if !all(doc, "", 1) {
		return c, subschemaLimitError(c)
	}
	return c, nil
}

func subschemaLimitError(c schemaCounts) error {
	if c.count > MaxSchemaSubschemas {
		return schemaLimitError(c.at, fmt.Sprintf("the schema has more than %d subschemas (the first one over is at %s)", MaxSchemaSubschemas, c.at))
	}
	return schemaLimitError(c.at, fmt.Sprintf("the schema's subschemas nest too deeply in total: the sum of their depths passes %d at %s", MaxSchemaDepthSum, c.at))
}

func isArray(v any) bool { _, ok := v.([]any); return ok }

// refOnGrid reports whether a reference reaches only subschema positions:
// it has no fragment, an anchor fragment, or a JSON pointer that follows
// subschema keywords (/$defs/a/properties/b/items/0 …).
func refOnGrid(ref string) bool {
	_, frag, ok := strings.Cut(ref, "#")
	if !ok || !strings.HasPrefix(frag, "/") {
		return true
	}
	toks := strings.Split(frag[1:], "/")
	for i := 0; i < len(toks); i++ {
		k := strings.ReplaceAll(strings.ReplaceAll(toks[i], "~1", "/"), "~0", "~")
		switch {
		case slices.Contains(schemaMapKeywords, k), slices.Contains(schemaArrayKeywords, k) && k != "items":
			i++ // the member name or index
		case k == "items":
			// items/0 (draft 4–2019 tuple) or items itself.
			if i+1 < len(toks) {
				if _, err := strconv.Atoi(toks[i+1]); err == nil {
					i++
				}
			}
		case slices.Contains(schemaSingleKeywords, k):
		default:
			return false
		}
	}
	return true
}
