package store

import (
	"strings"
	"testing"
)

// FuzzSelectorCanonical: a selector and its canonical form (the one used as
// a subscription key) select exactly the same label sets, so subscribers
// that wrote one selector two ways share one correct stream.
func FuzzSelectorCanonical(f *testing.F) {
	for _, s := range [][2]string{
		{"env=prod,tier!=db", "env=prod,tier=web"},
		{"region in (eu, us),!legacy", "region=us"},
		{"region notin (eu),canary", "canary=,region=ap"},
		{"a==b,a!=c", "a=b"},
		{" k , !j ", "k=1,j=2"},
		{"x in (a,b,a)", "x=a"},
		{"a=", "a="},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, selector, labelText string) {
		sel, err := ParseSelector(selector)
		if err != nil {
			if ErrorCode(err) != CodeInvalid {
				t.Fatalf("error %v is not ErrInvalid", err)
			}
			return
		}
		canon, err := ParseSelector(sel.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", sel.String(), selector, err)
		}
		labels := map[string]string{}
		for _, kv := range strings.Split(labelText, ",") {
			k, v, _ := strings.Cut(kv, "=")
			labels[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		if sel.Matches(labels) != canon.Matches(labels) {
			t.Fatalf("%q and its canonical form %q disagree on %v", selector, sel.String(), labels)
		}
		for _, r := range sel {
			if !ValidLabelKey(r.Key) {
				t.Fatalf("accepted invalid key %q", r.Key)
			}
			for _, v := range r.Values {
				if !ValidLabelValue(v) {
					t.Fatalf("accepted invalid value %q", v)
				}
			}
		}
	})
}
