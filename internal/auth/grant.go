package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
)

// Action is what a grant permits.
type Action string

// The actions. They are independent: admin does not imply read, write or
// publish.
const (
	// ActionRead permits GET and subscribe.
	ActionRead Action = "read"
	// ActionWrite permits resource mutations.
	ActionWrite Action = "write"
	// ActionPublish permits publishing channel messages.
	ActionPublish Action = "publish"
	// ActionAdmin permits managing collections and configuration.
	ActionAdmin Action = "admin"
	// ActionCall permits calling RPC methods (on rpc/{method}).
	ActionCall Action = "call"
)

// Actions lists every valid action.
var Actions = []Action{ActionRead, ActionWrite, ActionPublish, ActionAdmin, ActionCall}

// ParseAction returns the action named s (case-sensitive). Errors:
// ErrInvalidGrant for an unknown action.
func ParseAction(s string) (Action, error) {
	a := Action(s)
	if !a.Valid() {
		return "", fmt.Errorf("%w: unknown action %s (want read, write, publish, admin or call)", ErrInvalidGrant, quote(s))
	}
	return a, nil
}

// Valid reports whether a is one of [Actions]. It returns no error.
func (a Action) Valid() bool {
	switch a {
	case ActionRead, ActionWrite, ActionPublish, ActionAdmin, ActionCall:
		return true
	}
	return false
}

// String returns the action's name. It returns no error.
func (a Action) String() string { return string(a) }

// Limits on grant patterns and paths.
const (
	// MaxPatternLen is the longest accepted grant pattern, in bytes.
	MaxPatternLen = 1024
	// MaxPathLen is the longest path [Grants.Allows] will match, in bytes.
	MaxPathLen = 2048
	// MaxSegmentLen is the longest path segment (and subject) in bytes.
	MaxSegmentLen = 256
)

// subPlaceholder is the only supported placeholder in a pattern segment.
const subPlaceholder = "{sub}"

// ErrInvalidGrant is matched (errors.Is) by every error about a malformed
// grant, action, pattern or scope.
var ErrInvalidGrant = errors.New("invalid grant")

// Grant permits one action on every path its pattern matches. Create grants
// with [ParseGrant]; Grant is comparable and a parsed grant equals the result
// of parsing its String form. A Grant built by hand with an invalid pattern
// never matches anything.
type Grant struct {
	Action  Action
	Pattern string
}

// ParseGrant parses "action:pattern". Errors: ErrInvalidGrant (wrapped, with
// a message naming the problem: missing ':', unknown action, empty pattern
// or segment, '**' not last, '*' mixed with other text, '.' or '..'
// segment, an unknown or unbalanced placeholder, a forbidden character or a
// pattern that is too long).
func ParseGrant(s string) (Grant, error) {
	act, pat, ok := strings.Cut(s, ":")
	if !ok {
		return Grant{}, fmt.Errorf("%w %s: want action:pattern", ErrInvalidGrant, quote(s))
	}
	a, err := ParseAction(act)
	if err != nil {
		return Grant{}, fmt.Errorf("%w %s: unknown action %s (want read, write, publish, admin or call)", ErrInvalidGrant, quote(s), quote(act))
	}
	if err := checkPattern(pat); err != nil {
		return Grant{}, fmt.Errorf("%w %s: %s", ErrInvalidGrant, quote(s), err.Error())
	}
	return Grant{Action: a, Pattern: pat}, nil
}

// MustParseGrant is like [ParseGrant] but panics on error; for tests and
// static tables.
func MustParseGrant(s string) Grant {
	g, err := ParseGrant(s)
	if err != nil {
		panic(err)
	}
	return g
}

// String returns "action:pattern", which [ParseGrant] accepts. It returns no
// error.
func (g Grant) String() string { return string(g.Action) + ":" + g.Pattern }

// MarshalText implements encoding.TextMarshaler ("action:pattern"). It
// returns no error.
func (g Grant) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler via [ParseGrant].
// Errors: as ParseGrant.
func (g *Grant) UnmarshalText(b []byte) error {
	p, err := ParseGrant(string(b))
	if err != nil {
		return err
	}
	*g = p
	return nil
}

// Validate checks a grant that may have been built by hand. Errors: as
// [ParseGrant].
func (g Grant) Validate() error {
	_, err := ParseGrant(g.String())
	return err
}

// Matches reports whether g permits action on path for a principal with the
// given subject. It is false for a malformed path (see [ValidPath]) and, for
// a pattern using {sub}, for a subject that is not a valid single segment
// (see [ValidSegment]): a subject can never widen a grant. It returns no
// error.
func (g Grant) Matches(action Action, path, subject string) bool {
	return g.Action == action && action.Valid() && ValidPath(path) && matchPattern(g.Pattern, path, subject)
}

// Grants is a set of grants; a request is allowed if any grant allows it.
type Grants []Grant

// ParseScope parses a space-separated list of grants, such as a JWT "scope"
// claim; runs of spaces are ignored and an empty scope yields no grants.
// Errors: ErrInvalidGrant (wrapped) naming the first malformed grant.
func ParseScope(scope string) (Grants, error) {
	return ParseGrants(strings.Fields(scope))
}

// ParseGrants parses each string with [ParseGrant]. Errors: ErrInvalidGrant
// (wrapped) naming the first malformed grant.
func ParseGrants(ss []string) (Grants, error) {
	if len(ss) == 0 {
		return nil, nil
	}
	gs := make(Grants, 0, len(ss))
	for _, s := range ss {
		g, err := ParseGrant(s)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g)
	}
	return gs, nil
}

// Allows reports whether any grant permits action on path for a principal
// with the given subject (see [Grant.Matches]). It returns no error.
func (gs Grants) Allows(action Action, path string, subject string) bool {
	if !action.Valid() || !ValidPath(path) {
		return false
	}
	for _, g := range gs {
		if g.Action == action && matchPattern(g.Pattern, path, subject) {
			return true
		}
	}
	return false
}

// String returns the grants space-separated, the form [ParseScope] accepts.
// It returns no error.
func (gs Grants) String() string {
	var b strings.Builder
	for i, g := range gs {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(g.String())
	}
	return b.String()
}

// LogValue implements slog.LogValuer (the space-separated grants). It
// returns no error.
func (gs Grants) LogValue() slog.Value { return slog.StringValue(gs.String()) }

// Validate checks grants that may have been built by hand. Errors: as
// [ParseGrant], for the first invalid grant.
func (gs Grants) Validate() error {
	for _, g := range gs {
		if err := g.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// AllowAll returns grants permitting every action on every path (used for
// the anonymous principal when auth is disabled). It returns no error.
func AllowAll() Grants {
	gs := make(Grants, len(Actions))
	for i, a := range Actions {
		gs[i] = Grant{Action: a, Pattern: "**"}
	}
	return gs
}

// ValidSegment reports whether s can be one path segment, and therefore a
// subject usable for {sub}: 1 to MaxSegmentLen printable ASCII bytes, not
// "." or "..", and none of the characters / \ * { } % ? # or whitespace. It
// returns no error.
func ValidSegment(s string) bool {
	if len(s) == 0 || len(s) > MaxSegmentLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !segmentByte(s[i]) {
			return false
		}
	}
	return true
}

func segmentByte(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	switch c {
	case '/', '\\', '*', '{', '}', '%', '?', '#':
		return false
	}
	return true
}

// ValidPath reports whether path is a concrete topic/REST path such as
// "collections/orders/resources/42": at most MaxPathLen bytes of
// slash-separated [ValidSegment]s, with no leading or trailing slash and no
// wildcards. It returns no error.
func ValidPath(path string) bool {
	if len(path) == 0 || len(path) > MaxPathLen {
		return false
	}
	for {
		seg, rest, more := strings.Cut(path, "/")
		if !ValidSegment(seg) {
			return false
		}
		if !more {
			return true
		}
		path = rest
	}
}

// checkPattern explains why pat is not a valid pattern, or returns nil.
func checkPattern(pat string) error {
	if pat == "" {
		return errors.New("empty pattern")
	}
	if len(pat) > MaxPatternLen {
		return fmt.Errorf("pattern longer than %d bytes", MaxPatternLen)
	}
	for i := 0; ; i++ {
		seg, rest, more := strings.Cut(pat, "/")
		if err := checkPatternSegment(seg, !more); err != nil {
			return fmt.Errorf("segment %d: %s", i+1, err.Error())
		}
		if !more {
			return nil
		}
		pat = rest
	}
}

func checkPatternSegment(seg string, last bool) error {
	switch seg {
	case "":
		return errors.New("empty segment")
	case "*":
		return nil
	case "**":
		if !last {
			return errors.New("'**' is only allowed as the last segment")
		}
		return nil
	case ".", "..":
		return fmt.Errorf("%q segment is not allowed", seg)
	}
	lit := 0
	for s := seg; s != ""; {
		c := s[0]
		switch {
		case c == '{':
			if !strings.HasPrefix(s, subPlaceholder) {
				ph, _, ok := strings.Cut(s, "}")
				if !ok {
					return errors.New("unbalanced '{'")
				}
				return fmt.Errorf("unknown placeholder %s (only {sub} is supported)", quote(ph+"}"))
			}
			s = s[len(subPlaceholder):]
			continue
		case c == '}':
			return errors.New("unbalanced '}'")
		case c == '*':
			return errors.New("'*' and '**' must be a whole segment")
		case !segmentByte(c):
			return fmt.Errorf("character %q is not allowed", c)
		}
		lit++
		s = s[1:]
	}
	if lit > MaxSegmentLen {
		return fmt.Errorf("segment longer than %d bytes", MaxSegmentLen)
	}
	return nil
}

// matchPattern reports whether pat matches the (already validated) path.
// Any malformed pattern segment fails to match.
func matchPattern(pat, path, sub string) bool {
	if pat == "" {
		return false
	}
	subOK := ValidSegment(sub)
	for {
		pseg, prest, pmore := strings.Cut(pat, "/")
		if pseg == "**" {
			// One or more remaining segments; path is non-empty here.
			return !pmore
		}
		seg, rest, more := strings.Cut(path, "/")
		if !matchSegment(pseg, seg, sub, subOK) {
			return false
		}
		if !pmore || !more {
			return pmore == more
		}
		pat, path = prest, rest
	}
}

// matchSegment matches one pattern segment against one valid path segment.
func matchSegment(pseg, seg, sub string, subOK bool) bool {
	if pseg == "*" {
		return true
	}
	for pseg != "" {
		i := strings.IndexAny(pseg, "{}*")
		if i < 0 {
			return seg == pseg
		}
		if !strings.HasPrefix(seg, pseg[:i]) {
			return false
		}
		seg, pseg = seg[i:], pseg[i:]
		if !subOK || !strings.HasPrefix(pseg, subPlaceholder) || !strings.HasPrefix(seg, sub) {
			return false
		}
		seg, pseg = seg[len(sub):], pseg[len(subPlaceholder):]
	}
	return seg == ""
}

// quote quotes s for an error message, truncating long input.
func quote(s string) string {
	const max = 80
	if len(s) > max {
		return fmt.Sprintf("%q…", s[:max])
	}
	return fmt.Sprintf("%q", s)
}
