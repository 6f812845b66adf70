package webhook

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/specval"
)

// FuzzHookAnswer feeds arbitrary answers to the decoding of a hook's
// response: it never panics, and what it accepts is what the schema
// allows — data valid JSON, meta a JSON object, a refusal's status one of
// the refusals.
func FuzzHookAnswer(f *testing.F) {
	spec, err := specval.LoadOpenAPI()
	if err != nil {
		f.Fatal(err)
	}
	h := NewHookClient(HookOptions{Validate: spec.ValidateSchema})
	for _, seed := range []string{`{}`, `{"data":{"a":1}}`, `{"data":null}`, `{"problem":{"status":422,"title":"no"}}`, `{"meta":{"n":1},"grants":["read:**"]}`,
		`{"problem":{"status":500}}`, `{"meta":[1]}`, `{"data": nope`, `[]`, `"x"`, `{"grants":[1]}`, `{"unknown":1}`} {
		for kind := range 4 {
			f.Add(seed, kind, 200)
		}
		f.Add(seed, 0, 403)
	}
	kinds := []app.HookKind{app.HookConnect, app.HookSubscribe, app.HookPublish, app.HookRPC}
	f.Fuzz(func(t *testing.T, body string, kind, status int) {
		k := kinds[(kind%4+4)%4]
		var reply app.HookReply
		var err error
		if refusals[status] {
			reply, err = h.refusal("app", status, "application/problem+json", []byte(body))
		} else {
			reply, err = h.answer(k, "app", []byte(body))
		}
		if err != nil {
			return
		}
		if reply.Data != nil && !json.Valid(reply.Data) {
			t.Fatalf("accepted data that is not JSON: %q", reply.Data)
		}
		if reply.Meta != nil && !bytes.HasPrefix(bytes.TrimSpace(reply.Meta), []byte("{")) {
			t.Fatalf("accepted meta that is not an object: %q", reply.Meta)
		}
		if p := reply.Problem; p != nil && p.Status != 0 && !refusals[p.Status] {
			t.Fatalf("accepted a refusal with status %d", p.Status)
		}
		if len(reply.Grants) > 100 {
			t.Fatalf("accepted %d grants", len(reply.Grants))
		}
	})
}
