package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/broker"
	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/store"
	"github.com/tandemhq/tandem/internal/stream"
)

// TestProblem is the error table: every error a use case returns maps to
// one status and problem type, with its fields.
func TestProblem(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		status int
		slug   string
		detail string
		fields string // fmt of the fields: in name pointer
	}{
		{"Invalid", store.Errorf(store.CodeInvalid, "bad"), 400, "invalid-request", "bad", ""},
		{"Schema", &app.ValidationError{Code: store.CodeUnprocessable, Message: "m", Fields: []app.FieldError{{Pointer: "/data/a~1b", Detail: "d"}}}, 422, "schema-violation", "m", "body data.a/b /data/a~1b"},
		{"NotFound", store.ErrNotFound, 404, "not-found", "not found", ""},
		{"Conflict", store.ErrConflict, 409, "conflict", "conflict", ""},
		{"Precondition", store.ErrPreconditionFailed, 412, "precondition-failed", "precondition failed", ""},
		{"Resync", store.ErrCompacted, 410, "resync-required", "the change log no longer holds the requested position", ""},
		{"Unavailable", store.ErrUnavailable, 503, "unavailable", "store unavailable", ""},
		{"Forbidden", store.Errorf(store.CodeForbidden, "no"), 403, "forbidden", "no", ""},
		{"TooLarge", store.Errorf(store.CodeTooLarge, "big"), 413, "too-large", "big", ""},
		{"PrincipalCap", &quota.Error{Limit: quota.Limit{Name: "n", What: "w", Max: 1}}, 429, "rate-limited", "limit n reached: at most 1 w", ""},
		{"ServerCap", &quota.Error{Limit: quota.Limit{Name: "n", What: "w", Max: 1, Code: store.CodeUnavailable}}, 503, "unavailable", "limit n reached: at most 1 w", ""},
		{"NoToken", fmt.Errorf("%w: sign in", auth.ErrNoToken), 401, "unauthenticated", "", ""},
		{"InvalidToken", &auth.TokenError{Reason: auth.ReasonExpired}, 401, "invalid-token", "", ""},
		{"Scope", fmt.Errorf("%w: not allowed", auth.ErrInsufficientScope), 403, "insufficient-scope", "", ""},
		{"Param", ParamError(api.Header, "If-Match", "bad tag"), 400, "invalid-request", "header If-Match: bad tag", "header If-Match "},
		{"Input", &app.InputError{Name: "labels", Detail: "resource topics only"}, 400, "invalid-request", "labels: resource topics only", "query labels "},
		{"Internal", errors.New("disk on fire at /var/lib"), 500, "internal", "an internal error occurred; it has been logged", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Problem(tc.err)
			if p.Status != tc.status || p.Type != ProblemBase+tc.slug || p.Title == "" {
				t.Fatalf("problem %+v, want %d %s", p, tc.status, tc.slug)
			}
			if tc.detail != "" && (p.Detail == nil || *p.Detail != tc.detail) {
				t.Fatalf("detail %v, want %q", p.Detail, tc.detail)
			}
			if got := fieldsOf(p); got != tc.fields {
				t.Fatalf("fields %q, want %q", got, tc.fields)
			}
			if ty, st := ProblemType(store.ErrorCode(tc.err)); tc.slug != "internal" && store.ErrorCode(tc.err) != "" && (st != p.Status || ty != p.Type) {
				t.Fatalf("ProblemType = %s %d, want %s %d", ty, st, p.Type, p.Status)
			}
		})
	}
}

// TestFrameProblem names an InputError by the frame's member.
func TestFrameProblem(t *testing.T) {
	p := FrameProblem(&app.InputError{Name: "labels", Detail: "resource topics only"})
	if got := fieldsOf(p); p.Status != 400 || got != "body labels /labels" {
		t.Fatalf("problem %+v fields %q", p, got)
	}
}

func fieldsOf(p api.Problem) string {
	if p.Errors == nil {
		return ""
	}
	out := ""
	for i, f := range *p.Errors {
		if i > 0 {
			out += "; "
		}
		name, ptr := "", ""
		if f.Name != nil {
			name = *f.Name
		}
		if f.Pointer != nil {
			ptr = *f.Pointer
		}
		out += fmt.Sprintf("%s %s %s", f.In, name, ptr)
	}
	return out
}

func TestConversions(t *testing.T) {
	ts := time.Date(2026, 12, 2, 10, 0, 0, 0, time.FixedZone("x", 3600))
	r := Resource(store.Resource{Collection: "c", ID: "i", Revision: 3, CreatedAt: ts, UpdatedAt: ts})
	if string(r.Data) != "{}" || r.Labels == nil || r.CreatedAt.Location() != time.UTC {
		t.Fatalf("resource defaults: %+v", r)
	}
	ms := Members([]broker.Member{{ID: "bob", ConnID: "2"}, {ID: "alice", ConnID: "1"}, {ID: "bob", ConnID: "3"}})
	if len(ms) != 2 || ms[0].Id != "alice" || ms[1].Id != "bob" || len(ms[1].Connections) != 2 {
		t.Fatalf("members %+v", ms)
	}
	m := Message(broker.Message{Channel: "ch", Epoch: "e", Offset: 7, Data: json.RawMessage(`1`), Time: ts})
	if m.Publisher != nil || m.Cursor != (stream.Cursor{Kind: stream.KindChannel, Epoch: "e", Pos: 7}).String() {
		t.Fatalf("message %+v", m)
	}
	ev := StreamEvent(stream.Event{Topic: "collections/c/resources", Labels: "a=b", Name: stream.EventCreated, Resource: &store.Resource{ID: "i"}})
	if ev.Labels == nil || *ev.Labels != "a=b" || ev.Resource == nil || ev.Message != nil {
		t.Fatalf("stream event %+v", ev)
	}
}

// TestFramesMatchAsyncAPI encodes every frame the engines send and
// checks it against spec/asyncapi.yaml.
func TestFramesMatchAsyncAPI(t *testing.T) {
	v, err := specval.LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	cur := stream.Cursor{Kind: stream.KindResource, Epoch: "ep", Pos: 4}
	var f Frames
	event, err := f.Event(stream.Event{Topic: "collections/c/resources", Labels: "env=prod", Name: stream.EventUpdated, Cursor: cur,
		Resource: &store.Resource{Collection: "c", ID: "i", Data: json.RawMessage(`{"a":1}`), Revision: 4, CreatedAt: ts, UpdatedAt: ts}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := f.Event(stream.Event{Topic: "channels/ch/messages", Name: stream.EventMessage, Cursor: cur,
		Message: &broker.Message{Channel: "ch", Epoch: "e", Offset: 1, Data: json.RawMessage(`"hi"`), Publisher: "p", Time: ts}})
	if err != nil {
		t.Fatal(err)
	}
	frames := map[string][]byte{
		"event":    event,
		"message":  msg,
		"synced":   f.Synced("collections/c/resources", "", `data.qty > 2`, cur),
		"presence": f.Presence("channels/ch/presence", "join", []broker.Member{{ID: "a", ConnID: "c", Meta: json.RawMessage(`{"n":1}`)}}),
		"reset":    f.Reset("channels/ch/messages", store.Errorf(store.CodeCompacted, "reset")),
		"bookmark": Bookmark("collections/c/resources", "env=prod", `data.qty > 2`, cur),
	}
	for name, b := range frames {
		if err := v.ValidateServerFrame(b); err != nil {
			t.Errorf("%s frame %s violates spec/asyncapi.yaml: %v", name, b, err)
		}
	}
	// Strict mode checks what it encodes.
	checked := 0
	strict := Frames{Validate: func([]byte) error { checked++; return nil }}
	strict.Synced("t", "", "", cur)
	strict.Reset("t", store.ErrCompacted)
	if checked != 2 {
		t.Fatalf("strict frames checked %d frames, want 2", checked)
	}
}

// TestSpecProblemTypes: every problem type a response of spec/openapi.yaml
// declares (x-tandem-problem-types) is one the server has, with that
// response's status; and every kind the server has is declared by some
// response.
func TestSpecProblemTypes(t *testing.T) {
	doc, err := specval.LoadOpenAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	kinds := []Kind{KindInvalid, KindNotFound, KindConflict, KindForbidden, KindRateLimited, KindTooLarge, KindUnavailable,
		KindUnsupportedMedia, KindRouteNotFound, KindMethodNotAllowed, KindInternal, KindRequestTimeout, KindSlowConsumer,
		KindUnauthenticated, KindInvalidToken, KindInsufficientScope, KindHookUnavailable, KindHookDenied}
	for _, k := range errorTable {
		kinds = append(kinds, k)
	}
	statuses := map[string]map[int]bool{} // slug → statuses
	for _, k := range kinds {
		if statuses[k.Slug] == nil {
			statuses[k.Slug] = map[int]bool{}
		}
		statuses[k.Slug][k.Status] = true
	}
	declared := map[string]bool{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for key, ref := range op.Responses.Map() {
				if ref.Value == nil {
					continue
				}
				types, err := specval.ProblemTypes(ref.Value)
				if err != nil {
					t.Errorf("%s %s %s: %v", method, path, key, err)
				}
				for _, slug := range types {
					declared[slug] = true
					st, ok := statuses[slug]
					if !ok {
						t.Errorf("%s %s %s declares problem type %q, which the server does not have", method, path, key, slug)
						continue
					}
					if status, _ := strconv.Atoi(key); !st[status] {
						t.Errorf("%s %s %s declares problem type %q, which the server answers with status %v", method, path, key, slug, st)
					}
				}
			}
		}
	}
	// Kinds that no operation answers over REST: routing problems (no
	// operation matched), WebSocket/SSE-only ones and a hook's refusal
	// (its own status and type).
	notREST := map[string]bool{KindMethodNotAllowed.Slug: true, KindSlowConsumer.Slug: true, KindHookDenied.Slug: true}
	for slug := range statuses {
		if !declared[slug] && !notREST[slug] {
			t.Errorf("problem type %q is declared by no response of spec/openapi.yaml", slug)
		}
	}
}
