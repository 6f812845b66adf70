package specval

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"gopkg.in/yaml.v3"

	"github.com/tandemhq/tandem/internal/schemaerr"
	"github.com/tandemhq/tandem/spec"
)

// FieldError names one invalid member of a frame by JSON pointer.
type FieldError struct {
	Pointer string
	Detail  string
}

// FrameError is returned for a frame that does not match its AsyncAPI
// payload schema; Fields names every violation.
type FrameError struct {
	Type   string
	Fields []FieldError
}

func (e *FrameError) Error() string {
	if len(e.Fields) == 0 {
		return fmt.Sprintf("%s frame is invalid", e.Type)
	}
	f := e.Fields[0]
	msg := fmt.Sprintf("%s frame: %s: %s", e.Type, pointerOrRoot(f.Pointer), f.Detail)
	if len(e.Fields) > 1 {
		msg += fmt.Sprintf(" (and %d more)", len(e.Fields)-1)
	}
	return msg
}

func pointerOrRoot(p string) string {
	if p == "" {
		return "(frame)"
	}
	return p
}

// AsyncAPI validates WebSocket frames against the payload schemas of
// spec/asyncapi.yaml. Which frames a client may send and which the server
// sends is read from the document's operations (send = client frames).
type AsyncAPI struct {
	client map[string]*jsonschema.Schema
	server map[string]*jsonschema.Schema
}

// LoadAsyncAPI compiles the embedded AsyncAPI document. Errors: the
// document is malformed (a build defect).
func LoadAsyncAPI() (*AsyncAPI, error) {
	var doc any
	if err := yaml.Unmarshal(spec.AsyncAPI, &doc); err != nil {
		return nil, fmt.Errorf("asyncapi.yaml: %w", err)
	}
	doc = normalize(doc)
	// Round-trip through JSON so numbers have the types the compiler expects.
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, err
	}
	jdoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	const loc = "tandem:///asyncapi.json"
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	if err := c.AddResource(loc, jdoc); err != nil {
		return nil, err
	}
	root, _ := doc.(map[string]any)
	v := &AsyncAPI{client: map[string]*jsonschema.Schema{}, server: map[string]*jsonschema.Schema{}}
	ops, _ := root["operations"].(map[string]any)
	for name, o := range ops {
		op, _ := o.(map[string]any)
		target := v.server
		if op["action"] == "send" {
			target = v.client
		}
		for _, ref := range messageRefs(op["messages"]) {
			if err := v.add(c, root, loc, ref, target); err != nil {
				return nil, fmt.Errorf("operation %s: %w", name, err)
			}
		}
		if rep, ok := op["reply"].(map[string]any); ok {
			for _, ref := range messageRefs(rep["messages"]) {
				if err := v.add(c, root, loc, ref, v.server); err != nil {
					return nil, fmt.Errorf("operation %s reply: %w", name, err)
				}
			}
		}
	}
	return v, nil
}

func messageRefs(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, m := range list {
		if mm, ok := m.(map[string]any); ok {
			if r, ok := mm["$ref"].(string); ok {
				out = append(out, r)
			}
		}
	}
	return out
}

// add resolves a channel message ref to its payload schema and compiles it
// under the message's name (the frame's "type").
func (v *AsyncAPI) add(c *jsonschema.Compiler, root map[string]any, loc, ref string, target map[string]*jsonschema.Schema) error {
	msg, err := resolve(root, ref)
	if err != nil {
		return err
	}
	if r, ok := msg["$ref"].(string); ok {
		if msg, err = resolve(root, r); err != nil {
			return err
		}
	}
	name, _ := msg["name"].(string)
	payload, _ := msg["payload"].(map[string]any)
	pref, _ := payload["$ref"].(string)
	if name == "" || pref == "" {
		return fmt.Errorf("message %s needs a name and a payload $ref", ref)
	}
	s, err := c.Compile(loc + pref)
	if err != nil {
		return fmt.Errorf("compile %s: %w", pref, err)
	}
	target[name] = s
	return nil
}

func resolve(root map[string]any, ref string) (map[string]any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("unsupported $ref %q", ref)
	}
	var cur any = root
	for _, seg := range strings.Split(ref[2:], "/") {
		seg = strings.NewReplacer("~1", "/", "~0", "~").Replace(seg)
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("$ref %q does not resolve", ref)
		}
		cur = m[seg]
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("$ref %q does not resolve to an object", ref)
	}
	return m, nil
}

// normalize converts yaml.v3 output into JSON-compatible values.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
		return x
	case map[any]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[fmt.Sprint(k)] = normalize(e)
		}
		return m
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
		return x
	}
	return v
}

// ClientTypes lists the frame types a client may send.
func (v *AsyncAPI) ClientTypes() []string { return keys(v.client) }

// ServerTypes lists the frame types the server sends.
func (v *AsyncAPI) ServerTypes() []string { return keys(v.server) }

func keys(m map[string]*jsonschema.Schema) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ValidateClientFrame checks a frame a client sent and returns its type.
// Errors: a *FrameError naming the offending members (an unknown or missing
// type is reported at /type).
func (v *AsyncAPI) ValidateClientFrame(b []byte) (string, error) {
	return validateFrame(v.client, b)
}

// ValidateServerFrame checks a frame the server sends. Errors: a *FrameError.
func (v *AsyncAPI) ValidateServerFrame(b []byte) error {
	_, err := validateFrame(v.server, b)
	return err
}

func validateFrame(schemas map[string]*jsonschema.Schema, b []byte) (string, error) {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return "", &FrameError{Type: "unknown", Fields: []FieldError{{Detail: "not a JSON document"}}}
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		return "", &FrameError{Type: "unknown", Fields: []FieldError{{Detail: "a frame must be a JSON object"}}}
	}
	typ, _ := obj["type"].(string)
	s, ok := schemas[typ]
	if !ok {
		return typ, &FrameError{Type: orUnknown(typ), Fields: []FieldError{{Pointer: "/type", Detail: "must be one of " + strings.Join(keys(schemas), ", ")}}}
	}
	if err := s.Validate(inst); err != nil {
		return typ, &FrameError{Type: typ, Fields: schemaFields(err)}
	}
	return typ, nil
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// schemaFields flattens a jsonschema validation error into field errors,
// naming a missing or unexpected member itself.
func schemaFields(err error) []FieldError {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []FieldError{{Detail: "does not match the schema"}}
	}
	var out []FieldError
	for _, f := range schemaerr.Fields(ve, schemaerr.AtMember) {
		out = append(out, FieldError{Pointer: f.Pointer, Detail: f.Detail})
	}
	if len(out) == 0 {
		out = []FieldError{{Detail: "does not match the schema"}}
	}
	return out
}
