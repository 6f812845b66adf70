package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/wire"
)

// TestCheckJSONBodyProblems: every body the gate refuses gets a 400
// invalid-request problem saying what is wrong and where: the byte offset
// of malformed JSON, the pointer of a duplicate member or out-of-range
// number.
func TestCheckJSONBodyProblems(t *testing.T) {
	tests := []struct {
		name, body string
		pointer    string // of errors[0], "" for none
		detail     string // the problem's detail, exactly
	}{
		{"Truncated", `{"data":{"a":`, "", "malformed JSON: unexpected end of input at byte 13"},
		{"TruncatedString", `{"data":"ab`, "", "malformed JSON: unexpected end of input at byte 11"},
		{"MissingColon", `{"data" 1}`, "", "malformed JSON: invalid character '1' after object member name (want ':') at byte 8"},
		{"TrailingData", `{"data":{}} {"data":{}}`, "", "malformed JSON: data after the top-level value at byte 12"},
		{"ByteOrderMark", "\xef\xbb\xbf{}", "", `malformed JSON: invalid character '\ufeff' looking for beginning of value at byte 0`},
		{"InvalidUTF8", "{\"data\":\"\xff\"}", "", "malformed JSON: the request body is not valid UTF-8"},
		{"DuplicateInData", `{"data":{"qty":-5,"qty":5}}`, "/data/qty", `body field /data/qty: duplicate member "qty" at byte 18`},
		{"DuplicateTopLevel", `{"data":{},"data":{"x":1}}`, "/data", `body field /data: duplicate member "data" at byte 11`},
		{"DuplicateEscaped", `{"data":{"a":1,"\u0061":2}}`, "/data/a", `body field /data/a: duplicate member "a" at byte 15`},
		{"NumberOverflow", `{"data":{"n":[1,1e999999]}}`, "/data/n/1", "body field /data/n/1: number 1e999999 is beyond the range of an IEEE 754 double at byte 16"},
		{"NegativeOverflow", `{"data":-1e400}`, "/data", "body field /data: number -1e400 is beyond the range of an IEEE 754 double at byte 8"},
		{"LoneSurrogate", `{"data":"\udc00"}`, "/data", `body field /data: unpaired UTF-16 surrogate \udc00 in string at byte 9`},
		{"TooDeep", `{"data":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, "", "nesting deeper than 10000 levels at byte 10007"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			h := checkJSONBody(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
			req := httptest.NewRequest("PUT", "/v1/collections/c/resources/r", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if reached || rec.Code != 400 {
				t.Fatalf("reached %v, status %d", reached, rec.Code)
			}
			var p api.Problem
			if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
				t.Fatal(err)
			}
			if p.Type != wire.KindInvalid.Type() || p.Detail == nil || *p.Detail != tc.detail {
				t.Fatalf("problem %s, want detail %q", rec.Body.Bytes(), tc.detail)
			}
			if p.Errors == nil || len(*p.Errors) != 1 {
				t.Fatalf("errors: %s", rec.Body.Bytes())
			}
			f := (*p.Errors)[0]
			got := ""
			if f.Pointer != nil {
				got = *f.Pointer
			}
			if f.In != api.Body || got != tc.pointer || f.Detail == "" {
				t.Fatalf("field %+v (pointer %q), want pointer %q", f, got, tc.pointer)
			}
			if tc.pointer != "" && (f.Name == nil || *f.Name != *wire.BodyField(tc.pointer, "").Name) {
				t.Fatalf("field name %v, want %s", f.Name, *wire.BodyField(tc.pointer, "").Name)
			}
		})
	}
	// Accepted bodies pass through: underflow, big integers, deep but
	// within the limit.
	for _, body := range []string{`{"data":{"x":1e-400,"n":123456789012345678901234567890}}`, `{"data":` + strings.Repeat(`{"a":`, 3000) + "1" + strings.Repeat("}", 3001)} {
		reached := false
		h := checkJSONBody(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached = true }))
		req := httptest.NewRequest("POST", "/v1/collections/c/resources", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/merge-patch+json")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if !reached {
			t.Errorf("refused %.60s", body)
		}
	}
}
