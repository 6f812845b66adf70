package httpapi

import (
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/tandemhq/tandem/gen/api"
)

// TestBindingProblem: a parameter the generated binding code refuses is
// named, with where it was and what is wrong with it.
func TestBindingProblem(t *testing.T) {
	tests := []struct {
		name, target string
		hdr          []string
		err          error
		detail       string
	}{
		{"QueryTwice", "/v1/changes?topic=a&topic=b", nil,
			&api.InvalidParamFormatError{ParamName: "topic", Err: errors.New("multiple values for single value parameter 'topic'")},
			"query topic: may appear only once (got 2 values)"},
		{"HeaderTwice", "/v1/collections/c/resources/r", []string{"If-Match", `"1"`, "If-Match", `"2"`},
			&api.TooManyValuesForParamError{ParamName: "If-Match", Count: 2},
			"header If-Match: may appear only once (got 2 values)"},
		{"QueryUnparsable", "/v1/changes?topic=a&limit=x", nil,
			&api.InvalidParamFormatError{ParamName: "limit", Err: errors.New("strconv.ParseInt: invalid syntax")},
			"query limit: could not be parsed: strconv.ParseInt: invalid syntax"},
		{"PathUnparsable", "/v1/collections/c/resources/r", nil,
			&api.InvalidParamFormatError{ParamName: "id", Err: errors.New("bad")},
			"path id: could not be parsed: bad"},
		{"Required", "/v1/changes", nil, &api.RequiredParamError{ParamName: "topic"}, "query topic: is required"},
		{"Unknown", "/v1/changes", nil, errors.New("x"), "a parameter could not be parsed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				r.Header.Add(tc.hdr[i], tc.hdr[i+1])
			}
			p := bindingProblem(r, tc.err)
			if p.Status != 400 || p.Detail == nil || *p.Detail != tc.detail || p.Errors == nil || len(*p.Errors) != 1 {
				t.Fatalf("problem %+v (detail %v), want %q", p, p.Detail, tc.detail)
			}
		})
	}
}
