package store

import (
	"testing"
	"time"
)

// FuzzParseFilter checks that no input panics the parser or the
// evaluator, that every accepted filter stays within the bounds, and that
// its canonical form parses back to itself.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{
		`data.status == "paid" && data.qty > 2`,
		`!(labels.env in ["a", "b"]) || exists(data.x.y)`,
		`startsWith(id, 'o-') && createdAt > "2026-01-01T00:00:00Z"`,
		`data["a b"].c != null && contains(data.tags, 3)`,
		`((data.a == 1) || (data.b == -2.5e3)) && revision >= 10`,
		`data.s == "\u00e9\ud83d\ude00\n"`,
	} {
		f.Add(s)
	}
	r := &Resource{ID: "o-1", Revision: 3, CreatedAt: time.Unix(0, 0).UTC(), UpdatedAt: time.Unix(60, 0).UTC(),
		Labels: map[string]string{"env": "a"},
		Data:   []byte(`{"status":"paid","qty":3,"x":{"y":null},"tags":[1,"a",{"b":2}],"a b":{"c":true},"s":"é"}`)}
	f.Fuzz(func(t *testing.T, s string) {
		flt, err := ParseFilter(s)
		if err != nil {
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		if flt == nil {
			return
		}
		flt.Matches(NewDoc(r))
		again, err := ParseFilter(flt.String())
		if err != nil {
			t.Fatalf("canonical form %q of %q does not parse: %v", flt, s, err)
		}
		if again.String() != flt.String() {
			t.Fatalf("canonical form of %q is unstable: %q then %q", s, flt, again)
		}
		if again.Matches(NewDoc(r)) != flt.Matches(NewDoc(r)) {
			t.Fatalf("%q and its canonical form %q disagree", s, flt)
		}
	})
}

// FuzzParseOrderBy checks that no orderBy panics the parser, that every
// accepted one stays within the bounds and prints to a form that parses to
// itself, and that page-token order values decode without panicking and
// round-trip.
func FuzzParseOrderBy(f *testing.F) {
	for _, s := range []string{"data.score desc, id", "createdAt", `labels.env asc, data["a b"] DESC`, ",", `[{"i":"12"},null,{"s":"x"},{"t":"2026-01-01T00:00:00Z"},{"f":1.5}]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if vs, err := DecodeKeyValues([]byte(s)); err == nil {
			again, err := DecodeKeyValues(EncodeKeyValues(vs))
			if err != nil || len(again) != len(vs) {
				t.Fatalf("order values %q do not round-trip: %v", s, err)
			}
		}
		keys, err := ParseOrderBy(s)
		if err != nil {
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("error %v is not invalid", err)
			}
			return
		}
		if len(keys) > MaxOrderKeys {
			t.Fatalf("%d keys accepted", len(keys))
		}
		again, err := ParseOrderBy(OrderString(keys))
		if err != nil || OrderString(again) != OrderString(keys) {
			t.Fatalf("canonical form %q of %q does not parse to itself: %v", OrderString(keys), s, err)
		}
	})
}
