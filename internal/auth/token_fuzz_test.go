package auth

import (
	"testing"
	"time"
)

// FuzzAuthenticate: no token string — mutated JWTs, API keys, garbage —
// ever yields a principal other than the ones legitimately issued, and
// rejected credentials never panic.
func FuzzAuthenticate(f *testing.F) {
	secret := []byte("fuzz-secret-0123456789-abcdefghijklmnop")
	issued := map[string]string{} // subject → grants of a legitimate credential
	key := APIKey{Name: "svc", Key: "0123456789abcdef-key", Grants: Grants{MustParseGrant("admin:**")}}
	issued[key.Name] = key.Grants.String()
	a, err := New(Config{HS256Secret: secret, APIKeys: []APIKey{key}, Leeway: time.Second})
	if err != nil {
		f.Fatal(err)
	}
	for _, tc := range []struct {
		sub    string
		grants []string
	}{
		{"alice", []string{"read:**"}},
		{"bob", []string{"publish:channels/user.{sub}/messages", "read:collections/*/resources"}},
		{"carol", nil},
	} {
		tok, err := Mint(secret, tc.sub, tc.grants, time.Hour, "", "")
		if err != nil {
			f.Fatal(err)
		}
		gs, _ := ParseGrants(tc.grants)
		issued[tc.sub] = gs.String()
		f.Add(tok)
	}
	f.Add(key.Key)
	f.Add("")
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJtYWxsb3J5Iiwic2NvcGUiOiJhZG1pbjoqKiJ9.")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := a.Resolve(tok)
		if err != nil {
			return
		}
		if tok == "" {
			if p.Kind != KindAnonymous || len(p.Grants) != 0 {
				t.Fatalf("no token gave %+v", p)
			}
			return
		}
		want, ok := issued[p.Subject]
		if !ok || p.Grants.String() != want {
			t.Fatalf("token %q authenticated as %q with %q, which was never issued", tok, p.Subject, p.Grants.String())
		}
		// The same token through the header parser gives the same principal.
		if got, err := TokenFrom("Bearer "+tok, "", ""); err == nil && got == tok {
			if p2, err := a.Resolve(got); err != nil || p2.Subject != p.Subject {
				t.Fatalf("header round trip: %+v %v", p2, err)
			}
		}
	})
}
