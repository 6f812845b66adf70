package httpapi

import (
	"fmt"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/tandemhq/tandem/internal/specval"
)

func TestQueryParams(t *testing.T) {
	doc, err := specval.LoadOpenAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	fast := newFastRoutes(doc, nil)
	q := newQueryParams(doc, fast)
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("x%02d=1", i)
	}
	tests := []struct {
		name, method, target string
		wantNames            []string // nil: accepted
		wantDetail           string
	}{
		{"NoQuery", "GET", "/v1/collections/orders/resources", nil, ""},
		{"Declared", "GET", "/v1/collections/orders/resources?limit=5&labels=a%3Db", nil, ""},
		{"NotARoute", "GET", "/v1/nope?bogus=1", nil, ""},
		{"Unknown", "GET", "/v1/collections/orders/resources?filtr=x", []string{"filtr"}, `unknown query parameter "filtr"; this operation takes filter, labels, limit, orderBy, pageToken`},
		{"Several", "GET", "/v1/changes?topic=a&zz=1&aa=2", []string{"aa", "zz"}, `unknown query parameters "aa", "zz"; this operation takes filter, labels, limit, since, topic, wait`},
		{"NoneTaken", "GET", "/healthz?x=1", []string{"x"}, "this operation takes no query parameters"},
		{"PerMethod", "DELETE", "/v1/collections/orders/resources/o-1?limit=1", []string{"limit"}, ""},
		{"Bounded", "GET", "/healthz?" + strings.Join(many, "&"), many[:maxUnknownFields], "(and 4 more)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			var m fastMatch
			fast.lookup(r, &m)
			p, bad := q.check(r, &m)
			if slow, slowBad := q.check(r, &fastMatch{}); slowBad != bad || !reflect.DeepEqual(slow, p) {
				t.Fatalf("with the segment match: %v %+v; without: %v %+v", bad, p, slowBad, slow)
			}
			if bad != (tc.wantNames != nil) {
				t.Fatalf("refused = %v, want %v (%+v)", bad, tc.wantNames != nil, p)
			}
			if !bad {
				return
			}
			if p.Status != 400 || p.Errors == nil || len(*p.Errors) != len(tc.wantNames) || !strings.Contains(*p.Detail, tc.wantDetail) {
				t.Fatalf("problem = %+v (detail %q)", p, *p.Detail)
			}
			for i, f := range *p.Errors {
				if want, _, _ := strings.Cut(tc.wantNames[i], "="); f.In != "query" || *f.Name != want {
					t.Fatalf("field %d = %+v, want query %s", i, f, want)
				}
			}
		})
	}
}
