package store

import (
	"fmt"
	"sort"
	"strings"
)

// Requirement is one term of a label selector.
type Requirement struct {
	Key string
	// Op is one of "=", "!=", "exists", "!exists", "in", "notin".
	Op     string
	Values []string
}

// Selector is a parsed label selector: every requirement must hold.
// A nil Selector matches everything.
type Selector []Requirement

// ParseSelector parses a Kubernetes-style equality/set selector such as
// `env=prod,tier!=db,region in (eu,us),!legacy,canary`. An empty string
// yields a nil Selector. Errors: ErrInvalid naming the bad term.
func ParseSelector(s string) (Selector, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var sel Selector
	for _, term := range splitTerms(s) {
		term = strings.TrimSpace(term)
		if term == "" {
			return nil, Errorf(CodeInvalid, "label selector %q has an empty term", s)
		}
		r, err := parseTerm(term)
		if err != nil {
			return nil, err
		}
		sel = append(sel, r)
	}
	return sel, nil
}

// splitTerms splits on commas that are not inside parentheses.
func splitTerms(s string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseTerm(t string) (Requirement, error) {
	bad := func(why string) (Requirement, error) {
		return Requirement{}, Errorf(CodeInvalid, "label selector term %q: %s", t, why)
	}
	if strings.HasPrefix(t, "!") {
		k := strings.TrimSpace(t[1:])
		if !ValidLabelKey(k) {
			return bad("invalid label key")
		}
		return Requirement{Key: k, Op: "!exists"}, nil
	}
	for _, op := range []string{"!=", "==", "="} {
		if i := strings.Index(t, op); i >= 0 {
			k, v := strings.TrimSpace(t[:i]), strings.TrimSpace(t[i+len(op):])
			if !ValidLabelKey(k) {
				return bad("invalid label key")
			}
			if !ValidLabelValue(v) {
				return bad("invalid label value")
			}
			o := "="
			if op == "!=" {
				o = "!="
			}
			return Requirement{Key: k, Op: o, Values: []string{v}}, nil
		}
	}
	if f := strings.Fields(t); len(f) >= 2 && (f[1] == "in" || f[1] == "notin") {
		k, op := f[0], f[1]
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(t[len(k):]), op))
		if !ValidLabelKey(k) {
			return bad("invalid label key")
		}
		if !strings.HasPrefix(rest, "(") || !strings.HasSuffix(rest, ")") {
			return bad("set values must be in parentheses")
		}
		var vals []string
		for _, v := range strings.Split(rest[1:len(rest)-1], ",") {
			v = strings.TrimSpace(v)
			if !ValidLabelValue(v) || v == "" {
				return bad("invalid label value in set")
			}
			vals = append(vals, v)
		}
		sort.Strings(vals)
		return Requirement{Key: k, Op: op, Values: vals}, nil
	}
	if ValidLabelKey(t) {
		return Requirement{Key: t, Op: "exists"}, nil
	}
	return bad("expected key, !key, key=value, key!=value, key in (…) or key notin (…)")
}

// Matches reports whether labels satisfy every requirement.
func (s Selector) Matches(labels map[string]string) bool {
	for _, r := range s {
		v, ok := labels[r.Key]
		switch r.Op {
		case "=":
			if !ok || v != r.Values[0] {
				return false
			}
		case "!=":
			if ok && v == r.Values[0] {
				return false
			}
		case "exists":
			if !ok {
				return false
			}
		case "!exists":
			if ok {
				return false
			}
		case "in", "notin":
			found := false
			for _, x := range r.Values {
				if ok && x == v {
					found = true
				}
			}
			if found != (r.Op == "in") {
				return false
			}
		}
	}
	return true
}

// String returns the canonical form: terms sorted, so equal selectors print
// the same and can share one subscription key.
func (s Selector) String() string {
	terms := make([]string, 0, len(s))
	for _, r := range s {
		switch r.Op {
		case "=", "!=":
			terms = append(terms, r.Key+r.Op+r.Values[0])
		case "exists":
			terms = append(terms, r.Key)
		case "!exists":
			terms = append(terms, "!"+r.Key)
		default:
			terms = append(terms, fmt.Sprintf("%s %s (%s)", r.Key, r.Op, strings.Join(r.Values, ",")))
		}
	}
	sort.Strings(terms)
	return strings.Join(terms, ",")
}

// ValidLabelKey reports whether k is a label key: 1–63 characters of
// letters, digits, '-', '_', '.', '/', starting with a letter or digit.
func ValidLabelKey(k string) bool {
	if len(k) == 0 || len(k) > 63 || !alnum(k[0]) {
		return false
	}
	for i := 0; i < len(k); i++ {
		if !alnum(k[i]) && !strings.ContainsRune("-_./", rune(k[i])) {
			return false
		}
	}
	return true
}

// ValidLabelValue reports whether v is a label value: up to 63 characters of
// letters, digits, '-', '_', '.'.
func ValidLabelValue(v string) bool {
	if len(v) > 63 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !alnum(v[i]) && !strings.ContainsRune("-_.", rune(v[i])) {
			return false
		}
	}
	return true
}

// ValidName reports whether s is a valid collection name or resource ID:
// 1–128 characters of letters, digits, '-', '_', '.', starting with a letter
// or digit (so it is always one safe path segment).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 128 || !alnum(s[0]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.' {
			return false
		}
	}
	return true
}

func alnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
