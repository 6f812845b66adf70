package specval_test

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/tandemhq/tandem/internal/specval"
	"github.com/tandemhq/tandem/internal/stream"
	"github.com/tandemhq/tandem/spec"
)

func problemHeader() http.Header {
	return http.Header{"Content-Type": {"application/problem+json"}}
}

func problem(slug string, status int) []byte {
	return []byte(`{"type":"` + specval.ProblemBase + slug + `","title":"t","status":` + strconv.Itoa(status) + `}`)
}

// TestValidateResponseStatuses: a response whose status its operation
// declares only through default breaks the contract, as does a problem
// whose type its response does not list; a hook's refusal may carry any
// type.
func TestValidateResponseStatuses(t *testing.T) {
	v, err := specval.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method, target string
		status               int
		slug                 string
		want                 string // "" for valid, else part of the error
	}{
		{"Declared", "GET", "/v1/collections/orders", 404, "not-found", ""},
		{"DeclaredBadRequest", "GET", "/v1/collections/-x", 400, "invalid-request", ""},
		{"DeclaredTooLarge", "POST", "/v1/collections/orders/resources", 413, "too-large", ""},
		{"DeclaredUnauthenticated", "GET", "/v1/collections", 401, "invalid-token", ""},
		{"DeclaredInternal", "GET", "/v1/collections", 500, "internal", ""},
		{"OnlyDefault", "GET", "/v1/collections/orders", 418, "invalid-request", "declares no 418 response (only default covers it)"},
		{"OnlyDefaultGone", "GET", "/v1/collections", 410, "resync-required", "declares no 410 response"},
		{"WrongType", "GET", "/v1/collections/orders", 404, "conflict", `problem type "https://tandem.dev/problems/conflict" is not among those the response declares`},
		{"WrongTypeTooLarge", "POST", "/v1/collections/orders/resources", 413, "invalid-request", "not among those the response declares (x-tandem-problem-types: too-large)"},
		{"HookOwnType", "POST", "/v1/channels/chat:lobby/messages", 422, "out-of-credit", ""},
		{"HookOwnType403", "GET", "/v1/events?topic=channels/a/messages", 403, "banned", ""},
		{"NotHookWrongType", "POST", "/v1/channels/chat:lobby/messages", 413, "banned", "not among those the response declares"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.target, nil)
			err := v.ValidateResponse(req, tc.status, problemHeader(), problem(tc.slug, tc.status))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("valid response refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted; want an error containing %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestSSEEvents: the SSE event names of /v1/events are declared, among
// them bookmark; an event is checked for its name and its frame.
func TestSSEEvents(t *testing.T) {
	v, err := specval.LoadOpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	frames, err := specval.LoadAsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	names, err := v.SSEEvents()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(names, ","); got != "event,synced,presence,bookmark,error" {
		t.Errorf("SSE events = %s", got)
	}
	cur := stream.Cursor{Kind: stream.KindResource, Epoch: "e", Pos: 1}.String()
	bookmark := []byte(`{"type":"bookmark","topic":"collections/orders/resources","cursor":"` + cur + `"}`)
	for _, tc := range []struct {
		name, event string
		data        []byte
		want        string
	}{
		{"Bookmark", "bookmark", bookmark, ""},
		{"Undeclared", "heartbeat", bookmark, `SSE event "heartbeat" is not declared`},
		{"NameIsNotType", "event", bookmark, `SSE event "event" carries a frame of type "bookmark"`},
		{"BadFrame", "bookmark", []byte(`{"type":"bookmark","topic":"collections/orders/resources"}`), "cursor"},
		{"ClientFrame", "subscribe", []byte(`{"type":"subscribe","ref":"1","topic":"x"}`), "not declared"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := v.ValidateSSEEvent(frames, tc.event, tc.data)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("ValidateSSEEvent = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOneCursorDefinition: both specs define Cursor alike, with the one
// limit the server enforces (stream.MaxCursorLen).
func TestOneCursorDefinition(t *testing.T) {
	var oa, aa struct {
		Components struct {
			Schemas map[string]map[string]any
		}
	}
	if err := yaml.Unmarshal(spec.OpenAPI, &oa); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(spec.AsyncAPI, &aa); err != nil {
		t.Fatal(err)
	}
	o, a := oa.Components.Schemas["Cursor"], aa.Components.Schemas["Cursor"]
	for _, k := range []string{"type", "minLength", "maxLength", "description"} {
		if o[k] != a[k] {
			t.Errorf("Cursor %s: openapi.yaml %v, asyncapi.yaml %v", k, o[k], a[k])
		}
	}
	if o["maxLength"] != stream.MaxCursorLen {
		t.Errorf("Cursor maxLength %v, server limit %d", o["maxLength"], stream.MaxCursorLen)
	}
}
