package auth

import (
	"strings"
	"testing"
)

func FuzzParseGrant(f *testing.F) {
	for _, s := range []string{
		"read:collections/orders/resources", "write:collections/*/resources/*",
		"publish:channels/user.{sub}/messages", "admin:collections", "read:**",
		"read:a/**/b", "read:../x", "read:a//b", "read:{sub}{sub}", "read:a/{su", "x:y",
		"read:a:b", "read:é", "read:*", "read:***", ":", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := ParseGrant(s)
		if err != nil {
			if g != (Grant{}) {
				t.Fatalf("non-zero grant with error: %#v", g)
			}
			return
		}
		if g.String() != s {
			t.Fatalf("String() = %q, want %q", g.String(), s)
		}
		g2, err := ParseGrant(g.String())
		if err != nil || g2 != g {
			t.Fatalf("round trip: %#v %v", g2, err)
		}
		if err := g.Validate(); err != nil {
			t.Fatal(err)
		}
		// A grant never matches a malformed path.
		for _, p := range []string{"", "/", "a//b", "../a", "a/..", "a/*", "a/"} {
			if g.Matches(g.Action, p, "x") {
				t.Fatalf("%s matches malformed path %q", g, p)
			}
		}
	})
}

// refMatch is a straightforward reference matcher: substitute the subject,
// split, compare.
func refMatch(pattern, path, sub string) bool {
	if strings.Contains(pattern, subPlaceholder) {
		if !ValidSegment(sub) {
			return false
		}
		pattern = strings.ReplaceAll(pattern, subPlaceholder, sub)
	}
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	for i, p := range ps {
		if p == "**" {
			return i == len(ps)-1 && len(xs) > i
		}
		if i >= len(xs) || (p != "*" && p != xs[i]) {
			return false
		}
	}
	return len(ps) == len(xs)
}

func FuzzAllows(f *testing.F) {
	seeds := [][3]string{
		{"channels/user.{sub}/messages", "channels/user.alice/messages", "alice"},
		{"channels/{sub}/messages", "channels/a/b/messages", "a/b"},
		{"channels/{sub}", "channels/x", "*"},
		{"channels/{sub}/**", "channels/x/y", "**"},
		{"channels/{sub}/x", "channels/../x", ".."},
		{"collections/*/resources/*", "collections/orders/resources/42", ""},
		{"collections/orders/**", "collections/orders", ""},
		{"**", "collections", ""},
		{"a/{sub}.{sub}", "a/b.b", "b"},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, pattern, path, sub string) {
		g, err := ParseGrant("read:" + pattern)
		hand := Grant{Action: ActionRead, Pattern: pattern}
		got := (Grants{hand}).Allows(ActionRead, path, sub)
		if err != nil {
			if got {
				t.Fatalf("invalid pattern %q matched %q (sub %q)", pattern, path, sub)
			}
			return
		}
		if got && !ValidPath(path) {
			t.Fatalf("%s matched malformed path %q", g, path)
		}
		if got && strings.Contains(pattern, subPlaceholder) && !ValidSegment(sub) {
			t.Fatalf("%s matched %q with invalid subject %q", g, path, sub)
		}
		want := ValidPath(path) && refMatch(pattern, path, sub)
		if got != want {
			t.Fatalf("%s on %q sub %q: got %v, reference %v", g, path, sub, got, want)
		}
		if g.Matches(ActionWrite, path, sub) {
			t.Fatal("matched another action")
		}
	})
}
