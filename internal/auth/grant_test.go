package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParseGrant(t *testing.T) {
	tests := []struct {
		in      string
		want    Grant
		wantErr string // substring of the error; "" means success
	}{
		{in: "read:collections/orders/resources", want: Grant{ActionRead, "collections/orders/resources"}},
		{in: "write:collections/*/resources/*", want: Grant{ActionWrite, "collections/*/resources/*"}},
		{in: "publish:channels/user.{sub}/messages", want: Grant{ActionPublish, "channels/user.{sub}/messages"}},
		{in: "read:channels/{sub}.{sub}/**", want: Grant{ActionRead, "channels/{sub}.{sub}/**"}},
		{in: "admin:collections", want: Grant{ActionAdmin, "collections"}},
		{in: "read:**", want: Grant{ActionRead, "**"}},
		{in: "read:a:b/c", want: Grant{ActionRead, "a:b/c"}},
		{in: "read:room.1/x-y_z@w", want: Grant{ActionRead, "room.1/x-y_z@w"}},

		{in: "", wantErr: "want action:pattern"},
		{in: "read", wantErr: "want action:pattern"},
		{in: "delete:collections", wantErr: `unknown action "delete"`},
		{in: "Read:collections", wantErr: "unknown action"},
		{in: ":collections", wantErr: "unknown action"},
		{in: "read:", wantErr: "empty pattern"},
		{in: "read:/collections", wantErr: "segment 1: empty segment"},
		{in: "read:collections/", wantErr: "segment 2: empty segment"},
		{in: "read:collections//x", wantErr: "empty segment"},
		{in: "read:**/x", wantErr: "'**' is only allowed as the last segment"},
		{in: "read:a/**/b", wantErr: "'**' is only allowed as the last segment"},
		{in: "read:a/***", wantErr: "must be a whole segment"},
		{in: "read:a/b*", wantErr: "must be a whole segment"},
		{in: "read:../x", wantErr: `".." segment`},
		{in: "read:channels/../collections", wantErr: `".." segment`},
		{in: "read:./x", wantErr: `"." segment`},
		{in: "read:a/{user}", wantErr: `unknown placeholder "{user}"`},
		{in: "read:a/{sub", wantErr: "unbalanced '{'"},
		{in: "read:a/sub}", wantErr: "unbalanced '}'"},
		{in: "read:a/{{sub}}", wantErr: "unknown placeholder"},
		{in: "read:a b", wantErr: "not allowed"},
		{in: "read:a\\b", wantErr: "not allowed"},
		{in: "read:a%2Fb", wantErr: "not allowed"},
		{in: "read:a?b", wantErr: "not allowed"},
		{in: "read:a\x00", wantErr: "not allowed"},
		{in: "read:é", wantErr: "not allowed"},
		{in: "read:" + strings.Repeat("a", MaxSegmentLen+1), wantErr: "segment longer"},
		{in: "read:" + strings.Repeat("a/", MaxPatternLen), wantErr: "pattern longer"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			g, err := ParseGrant(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseGrant(%q) = %v, want error containing %q", tt.in, g, tt.wantErr)
				}
				if !errors.Is(err, ErrInvalidGrant) {
					t.Errorf("error %v does not match ErrInvalidGrant", err)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseGrant(%q): %v", tt.in, err)
			}
			if g != tt.want {
				t.Fatalf("ParseGrant(%q) = %#v, want %#v", tt.in, g, tt.want)
			}
			if g.String() != tt.in {
				t.Errorf("String() = %q, want %q", g.String(), tt.in)
			}
		})
	}
}

func TestParseScope(t *testing.T) {
	gs, err := ParseScope("  read:collections/**   write:collections/orders/resources/* ")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := gs.String(), "read:collections/** write:collections/orders/resources/*"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if gs, err := ParseScope(""); err != nil || len(gs) != 0 {
		t.Fatalf("empty scope: %v %v", gs, err)
	}
	if _, err := ParseScope("read:a openid"); !errors.Is(err, ErrInvalidGrant) || !strings.Contains(err.Error(), `"openid"`) {
		t.Fatalf("want ErrInvalidGrant naming openid, got %v", err)
	}
}

func TestGrantTextRoundTrip(t *testing.T) {
	var g Grant
	if err := g.UnmarshalText([]byte("publish:channels/*/messages")); err != nil {
		t.Fatal(err)
	}
	b, _ := g.MarshalText()
	if string(b) != "publish:channels/*/messages" {
		t.Fatalf("got %s", b)
	}
	if err := g.UnmarshalText([]byte("publish:channels//messages")); err == nil {
		t.Fatal("want error")
	}
}

func TestAllows(t *testing.T) {
	tests := []struct {
		grant   string
		action  Action
		path    string
		subject string
		want    bool
	}{
		// literals and wildcards
		{"read:collections/orders/resources", ActionRead, "collections/orders/resources", "", true},
		{"read:collections/orders/resources", ActionWrite, "collections/orders/resources", "", false},
		{"read:collections/orders/resources", ActionRead, "collections/orders/resources/42", "", false},
		{"read:collections/orders/resources", ActionRead, "collections/orders", "", false},
		{"read:collections/orders/resources", ActionRead, "collections/Orders/resources", "", false},
		{"write:collections/*/resources/*", ActionWrite, "collections/orders/resources/42", "", true},
		{"write:collections/*/resources/*", ActionWrite, "collections/orders/resources", "", false},
		{"write:collections/*/resources/*", ActionWrite, "collections/orders/resources/42/x", "", false},
		{"read:collections/orders/**", ActionRead, "collections/orders/resources", "", true},
		{"read:collections/orders/**", ActionRead, "collections/orders/resources/42", "", true},
		{"read:collections/orders/**", ActionRead, "collections/orders", "", false},
		{"read:collections/orders/**", ActionRead, "collections/ordersx/resources", "", false},
		{"read:**", ActionRead, "collections", "", true},
		{"read:**", ActionRead, "channels/room.1/presence", "", true},
		{"admin:collections", ActionAdmin, "collections", "", true},
		{"admin:collections", ActionAdmin, "collections/orders", "", false},
		{"publish:channels/*/messages", ActionPublish, "channels/room.1/messages", "", true},
		{"publish:channels/*/messages", ActionPublish, "channels/room.1/presence", "", false},
		{"read:channels/*/*", ActionRead, "channels/room.1/presence", "", true},
		// admin does not imply other actions
		{"admin:**", ActionRead, "collections", "", false},
		// unknown action never matches
		{"read:**", Action("READ"), "collections", "", false},

		// {sub}
		{"read:channels/user.{sub}/messages", ActionRead, "channels/user.alice/messages", "alice", true},
		{"read:channels/user.{sub}/messages", ActionRead, "channels/user.bob/messages", "alice", false},
		{"read:channels/user.{sub}/messages", ActionRead, "channels/user./messages", "", false},
		{"read:channels/user.{sub}/messages", ActionRead, "channels/user.alice/messages", "", false},
		{"read:channels/{sub}/**", ActionRead, "channels/alice/messages", "alice", true},
		{"read:channels/{sub}.{sub}/x", ActionRead, "channels/al.al/x", "al", true},
		{"read:channels/{sub}.{sub}/x", ActionRead, "channels/al.bo/x", "al", false},
		{"read:channels/{sub}-x/y", ActionRead, "channels/alice-x/y", "alice", true},
		{"read:channels/{sub}-x/y", ActionRead, "channels/alice-xx/y", "alice", false},
		{"read:channels/{sub}/messages", ActionRead, "channels/auth0|123/messages", "auth0|123", true},
		{"read:channels/{sub}/messages", ActionRead, "channels/a@b.c/messages", "a@b.c", true},

		// subject injection: never widens a grant
		{"read:channels/{sub}/messages", ActionRead, "channels/a/b/messages", "a/b", false},
		{"read:channels/{sub}/messages", ActionRead, "channels/a/messages", "a/b", false},
		{"read:channels/user.{sub}/messages", ActionRead, "channels/user.a/b/messages", "a/b", false},
		{"read:channels/{sub}", ActionRead, "channels/x", "*", false},
		{"read:channels/{sub}", ActionRead, "channels/*", "*", false},
		{"read:channels/{sub}", ActionRead, "channels/x/y", "**", false},
		{"read:channels/{sub}", ActionRead, "channels/**", "**", false},
		{"read:channels/{sub}/messages", ActionRead, "collections/messages", "..", false},
		{"read:channels/{sub}/messages", ActionRead, "channels/../messages", "..", false},
		{"read:channels/{sub}/x", ActionRead, "channels/./x", ".", false},
		{"read:channels/{sub}/x", ActionRead, "channels/{sub}/x", "{sub}", false},
		{"read:channels/{sub}/x", ActionRead, "channels/a b/x", "a b", false},
		{"read:channels/{sub}/x", ActionRead, "channels/%2F/x", "%2F", false},
		{"read:channels/{sub}/x", ActionRead, "channels//x", "", false},
		{"read:channels/x{sub}", ActionRead, "channels/x", "", false},

		// path traversal and malformed paths never match
		{"read:channels/**", ActionRead, "channels/../collections/x", "", false},
		{"read:channels/**", ActionRead, "channels/./x", "", false},
		{"read:channels/**", ActionRead, "channels//x", "", false},
		{"read:channels/**", ActionRead, "channels/x/", "", false},
		{"read:channels/**", ActionRead, "/channels/x", "", false},
		{"read:**", ActionRead, "", "", false},
		{"read:channels/*", ActionRead, "channels/*", "", false},
		{"read:channels/*", ActionRead, "channels/**", "", false},
		{"read:**", ActionRead, "channels/a\\b", "", false},
		{"read:**", ActionRead, "channels/a\nb", "", false},
		{"read:**", ActionRead, "channels/" + strings.Repeat("a", MaxSegmentLen+1), "", false},
	}
	for _, tt := range tests {
		g := MustParseGrant(tt.grant)
		if got := (Grants{g}).Allows(tt.action, tt.path, tt.subject); got != tt.want {
			t.Errorf("%s Allows(%s, %q, sub=%q) = %v, want %v", tt.grant, tt.action, tt.path, tt.subject, got, tt.want)
		}
		if got := g.Matches(tt.action, tt.path, tt.subject); got != tt.want {
			t.Errorf("%s Matches(%s, %q, sub=%q) = %v, want %v", tt.grant, tt.action, tt.path, tt.subject, got, tt.want)
		}
	}
}

func TestHandBuiltInvalidGrantNeverMatches(t *testing.T) {
	for _, pat := range []string{"", "**/x", "a//b", "../x", "a/{user}", "a/b*", "a/{sub"} {
		g := Grant{Action: ActionRead, Pattern: pat}
		if g.Validate() == nil {
			t.Errorf("%q: Validate accepted it", pat)
		}
		for _, path := range []string{"a", "a/b", "x", "a/x", "a/b/x", "a/alice"} {
			if g.Matches(ActionRead, path, "alice") {
				t.Errorf("invalid pattern %q matched %q", pat, path)
			}
		}
	}
}

func TestAllowAll(t *testing.T) {
	gs := AllowAll()
	for _, a := range Actions {
		for _, p := range []string{"collections", "collections/x/resources/1", "channels/c/presence"} {
			if !gs.Allows(a, p, "") {
				t.Errorf("AllowAll denies %s %s", a, p)
			}
		}
	}
	if gs.Allows(ActionRead, "a//b", "") {
		t.Error("AllowAll allows a malformed path")
	}
}

func TestPrincipal(t *testing.T) {
	p := Principal{Subject: "alice", Kind: KindJWT, Grants: Grants{MustParseGrant("read:channels/user.{sub}/**")}}
	if !p.Can(ActionRead, "channels/user.alice/messages") || p.Can(ActionRead, "channels/user.bob/messages") {
		t.Fatal("Can")
	}
	if err := p.Check(ActionRead, "channels/user.alice/messages"); err != nil {
		t.Fatal(err)
	}
	if err := p.Check(ActionWrite, "channels/user.alice/messages"); !errors.Is(err, ErrInsufficientScope) {
		t.Fatalf("want ErrInsufficientScope, got %v", err)
	}
	anon := Principal{Kind: KindAnonymous}
	if err := anon.Check(ActionRead, "collections"); !errors.Is(err, ErrNoToken) {
		t.Fatalf("want ErrNoToken, got %v", err)
	}
}
