package store

import (
	"strings"
	"testing"
	"time"
)

func TestParseFilterCanonical(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`data.qty > 2`, `data.qty > 2`},
		{`  data.status=="paid"&&data.qty>=2.5 `, `data.status == "paid" && data.qty >= 2.5`},
		{`data.a == 1 || data.b == 2 && data.c == 3`, `data.a == 1 || data.b == 2 && data.c == 3`},
		{`(data.a == 1 || data.b == 2) && data.c == 3`, `(data.a == 1 || data.b == 2) && data.c == 3`},
		{`((data.a == 1) && (data.b == 2)) && data.c == 3`, `data.a == 1 && data.b == 2 && data.c == 3`},
		{`!!exists(data.x)`, `exists(data.x)`},
		{`!(data.x == 'it\'s')`, `!(data.x == "it's")`},
		{`data["a b"].c in [1, "x", true, null]`, `data["a b"].c in [1, "x", true, null]`},
		{`labels["app.kubernetes.io/name"] == "web"`, `labels["app.kubernetes.io/name"] == "web"`},
		{`labels.env != "prod"`, `labels.env != "prod"`},
		{`startsWith(id, "o-") && contains(data.tags, "red") && endsWith(data.name, "x")`, `startsWith(id, "o-") && contains(data.tags, "red") && endsWith(data.name, "x")`},
		{`createdAt >= "2026-01-02T15:04:05+01:00"`, `createdAt >= "2026-01-02T14:04:05Z"`},
		{`revision > 1e3`, `revision > 1000`},
		{`data.n == -0.5e-3`, `data.n == -0.0005`},
		{`data.s == "\u00e9\ud83d\ude00"`, `data.s == "é😀"`},
		{"   ", ""},
	} {
		f, err := ParseFilter(tc.in)
		if err != nil {
			t.Errorf("ParseFilter(%q): %v", tc.in, err)
			continue
		}
		if got := f.String(); got != tc.want {
			t.Errorf("ParseFilter(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.want == "" {
			continue
		}
		g, err := ParseFilter(f.String())
		if err != nil || g.String() != f.String() {
			t.Errorf("canonical form %q does not parse to itself: %v %q", f, err, g)
		}
	}
}

func TestParseFilterErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`data.qty >`, "position 11: expected a value"},
		{`data.qty = 2`, "position 10: unexpected '='"},
		{`qty > 2`, `position 1: unknown field "qty"`},
		{`data > 2`, "position 6: data needs a member"},
		{`id.x == "a"`, "position 3: id has no members"},
		{`labels.a.b == "x"`, "position 9: labels have no members"},
		{`labels.env == 3`, "position 15: labels.env is a string"},
		{`revision > 1.5`, "position 12: revision is an integer"},
		{`createdAt > "yesterday"`, `position 13: "yesterday" is not an RFC 3339 time`},
		{`data.x < true`, "position 8: < compares numbers, strings and times only"},
		{`(data.x == 1`, "position 13: expected ')' to close the '(' at position 1"},
		{`data.x == 1 data.y == 2`, `position 13: unexpected "data"`},
		{`data.x in [1,]`, "position 14: expected a value"},
		{`data.x in 1`, "position 11: expected '[' after in"},
		{`upper(data.x)`, `position 1: unknown function "upper"`},
		{`startsWith(data.x, 1)`, "position 20: startsWith takes a string"},
		{`startsWith(revision, "1")`, "position 22: startsWith applies to strings"},
		{`data.x == "abc`, "position 11: unterminated string"},
		{`data.x == "\q"`, `position 11: unknown escape \q`},
		{`data.x == 01`, "position 11: malformed number"},
		{`data.x == 1e999`, "position 11: number 1e999 is out of range"},
		{`data.x == 1 & data.y == 2`, "position 13: unexpected '&'"},
		{`data.x == #`, "position 11: unexpected character '#'"},
		{strings.Repeat("(", 40) + "data.x == 1" + strings.Repeat(")", 40), "nested deeper than 32 levels"},
		{strings.Repeat("!", 40) + "data.x == 1", "nested deeper than 32 levels"},
		{strings.Repeat("data.x == 1 && ", 64) + "data.x == 1", "more than 64 terms"},
		{"data.x in [" + strings.Repeat("1,", 300) + "1]", "more than 256 values"},
		{"data" + strings.Repeat(".a", 17) + " == 1", "path deeper than 16 members"},
		{strings.Repeat(" ", MaxFilterLength+1), "the limit is 4096"},
		{"data.x == \"\xff\"", "not valid UTF-8"},
	} {
		_, err := ParseFilter(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseFilter(%.60q) error = %v, want it to contain %q", tc.in, err, tc.want)
			continue
		}
		if ErrorCode(err) != CodeInvalid {
			t.Errorf("ParseFilter(%.60q) error code = %v, want invalid", tc.in, ErrorCode(err))
		}
	}
}

func TestFilterMatches(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	r := &Resource{Collection: "c", ID: "o-17", Revision: 42, CreatedAt: t0, UpdatedAt: t0.Add(time.Hour),
		Labels: map[string]string{"env": "prod", "app.kubernetes.io/name": "web"},
		Data: []byte(`{"status":"paid","qty":3,"price":2.5,"flag":false,"none":null,"tags":["red","big",7],
			"name":"Zoë","nested":{"a":{"b":"deep"}},"a b":{"c":1}}`)}
	for _, tc := range []struct {
		f    string
		want bool
	}{
		{`data.status == "paid"`, true},
		{`data.status != "paid"`, false},
		{`data.qty > 2 && data.qty <= 3 && data.qty != 4`, true},
		{`data.qty == 3.0`, true},
		{`data.qty == "3"`, false},
		{`data.qty != "3"`, true}, // another type is another value
		{`data.qty < "z"`, false}, // no order across types
		{`data.status > "a" && data.status < "q"`, true},
		{`data.name > "Z"`, true}, // byte order
		{`data.price >= 2.5 && data.price < 2.6`, true},
		{`data.flag == false && data.flag != true`, true},
		{`data.none == null && exists(data.none)`, true},
		{`data.missing == null`, false},
		{`data.missing != 1`, true},
		{`!(data.missing == 1)`, true},
		{`data.missing < 1 || data.missing >= 1`, false},
		{`exists(data.missing)`, false},
		{`!exists(data.missing)`, true},
		{`data.nested.a.b == "deep"`, true},
		{`data.nested.a == "deep"`, false},
		{`exists(data.nested.a.b.c)`, false},
		{`data["a b"].c == 1`, true},
		{`data.status in ["new", "paid"]`, true},
		{`data.status in ["new", 3]`, false},
		{`contains(data.tags, "big") && contains(data.tags, 7)`, true},
		{`contains(data.tags, "bi")`, false},
		{`contains(data.name, "o") && startsWith(data.name, "Zo") && endsWith(data.name, "ë")`, true},
		{`startsWith(data.qty, "3")`, false},
		{`data.tags == "red"`, false},
		{`labels.env == "prod" && labels["app.kubernetes.io/name"] == "web"`, true},
		{`labels.tier != "db" && !exists(labels.tier)`, true},
		{`id == "o-17" && startsWith(id, "o-")`, true},
		{`revision == 42 && revision > 41 && revision in [1, 42]`, true},
		{`createdAt == "2026-03-01T12:00:00Z" && updatedAt > "2026-03-01T12:30:00Z"`, true},
		{`updatedAt < "2026-03-01T13:00:00+00:00"`, false},
		{`data.qty > 5 || labels.env == "prod"`, true},
		{`!(data.qty > 5 || labels.env == "prod")`, false},
		{``, true},
	} {
		f, err := ParseFilter(tc.f)
		if err != nil {
			t.Fatalf("ParseFilter(%q): %v", tc.f, err)
		}
		if got := f.Matches(NewDoc(r)); got != tc.want {
			t.Errorf("%q matches = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestFilterConjuncts(t *testing.T) {
	f, err := ParseFilter(`data.status == "paid" && (data.qty > 2 || data.qty < 0) && labels.env == "prod" && !exists(data.x)`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range f.Conjuncts() {
		got = append(got, c.Field.String()+" "+string(c.Op))
	}
	if strings.Join(got, ",") != "data.status ==,labels.env ==" {
		t.Errorf("Conjuncts = %v", got)
	}
	if c := (*Filter)(nil).Conjuncts(); c != nil {
		t.Errorf("nil filter conjuncts = %v", c)
	}
}

func TestParseField(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"data.status", "data.status", ""},
		{`data["x-y"].z`, `data["x-y"].z`, ""},
		{"createdAt", "createdAt", ""},
		{"data.status desc", "", `position 13: unexpected "desc"`},
		{"nope", "", "unknown field"},
	} {
		f, err := ParseField(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseField(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || f.String() != tc.want {
			t.Errorf("ParseField(%q) = %q, %v; want %q", tc.in, f, err, tc.want)
		}
	}
}
