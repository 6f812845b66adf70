package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"github.com/tandemhq/tandem/internal/ijson"
)

// FuzzCheckJSONBody: the JSON body gate either passes the body on
// unchanged — valid UTF-8, one I-JSON value and nothing after it — or
// answers 400 with a problem, and never both.
func FuzzCheckJSONBody(f *testing.F) {
	for _, s := range []string{`{"data":{}}`, `{"data":{}} {"x":1}`, "{\"s\":\"\xff\"}", `{"data":`, "  \n", `[1] `, "\xef\xbb\xbf{}", `"x" "y"`, `{}}`, `{"data":{"qty":-5,"qty":5}}`, `{"data":[1e999999]}`} {
		f.Add([]byte(s), "application/json")
	}
	f.Add([]byte(`{"data":{"a":null}}`), "application/merge-patch+json")
	f.Add([]byte("\xff"), "text/plain")
	f.Fuzz(func(t *testing.T, body []byte, ct string) {
		var passed []byte
		reached := false
		h := checkJSONBody(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reached = true
			passed, _ = io.ReadAll(r.Body)
		}))
		req := httptest.NewRequest("POST", "/v1/collections/c/resources", bytes.NewReader(body))
		req.Header.Set("Content-Type", ct)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if !reached {
			if rec.Code != 400 || rec.Header().Get("Content-Type") != "application/problem+json" {
				t.Fatalf("refused with %d %q", rec.Code, rec.Header().Get("Content-Type"))
			}
			if utf8.Valid(body) && ijson.Check(body) == nil {
				t.Fatalf("refused a valid body %q", body)
			}
			return
		}
		if !bytes.Equal(passed, body) {
			t.Fatalf("body changed on the way: %q → %q", body, passed)
		}
		if jsonMediaType(ct) {
			if !utf8.Valid(body) {
				t.Fatalf("passed invalid UTF-8 %q", body)
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			var v json.RawMessage
			if dec.Decode(&v) == nil && len(bytes.TrimSpace(body[dec.InputOffset():])) > 0 {
				t.Fatalf("passed trailing data in %q", body)
			}
			if err := ijson.Check(body); err != nil {
				t.Fatalf("passed %q: %v", body, err)
			}
		}
	})
}
