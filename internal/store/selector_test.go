package store

import "testing"

func TestParseSelector(t *testing.T) {
	tests := []struct {
		in      string
		labels  map[string]string
		match   bool
		wantErr bool
	}{
		{"", map[string]string{"a": "1"}, true, false},
		{"env=prod", map[string]string{"env": "prod"}, true, false},
		{"env==prod", map[string]string{"env": "dev"}, false, false},
		{"env!=prod", map[string]string{}, true, false},
		{"env!=prod,tier=db", map[string]string{"env": "dev", "tier": "db"}, true, false},
		{"canary", map[string]string{"canary": ""}, true, false},
		{"!legacy", map[string]string{"legacy": "x"}, false, false},
		{"region in (eu, us)", map[string]string{"region": "us"}, true, false},
		{"region notin (eu,us)", map[string]string{"region": "us"}, false, false},
		{"region notin (eu,us)", map[string]string{}, true, false},
		{"=x", nil, false, true},
		{"env=(", nil, false, true},
		{"a,,b", nil, false, true},
		{"region in eu", nil, false, true},
		{"bad key=x", nil, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			s, err := ParseSelector(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if err != nil {
				if ErrorCode(err) != CodeInvalid {
					t.Errorf("code = %q", ErrorCode(err))
				}
				return
			}
			if got := s.Matches(tc.labels); got != tc.match {
				t.Errorf("Matches(%v) = %v", tc.labels, got)
			}
		})
	}
}

// FuzzParseSelector: parsing never panics, and the canonical form parses
// back to the same canonical form.
func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{"env=prod,tier!=db", "a in (x,y)", "!k", "k", "a notin (b)", "x==y", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSelector(in)
		if err != nil {
			return
		}
		again, err := ParseSelector(s.String())
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", s.String(), in, err)
		}
		if again.String() != s.String() {
			t.Fatalf("canonical form unstable: %q → %q", s.String(), again.String())
		}
		_ = s.Matches(map[string]string{"env": "prod"})
	})
}
