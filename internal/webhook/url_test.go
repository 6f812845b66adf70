package webhook

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// fakeResolver answers from a map (names in lower case, without the
// trailing dot); a name it lacks does not exist.
type fakeResolver map[string][]string

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := f[strings.TrimSuffix(strings.ToLower(host), ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

// testResolver keeps CheckURL's tests off the network.
var testResolver = fakeResolver{
	"example.com":     {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
	"rebind.example":  {"93.184.215.14", "10.0.0.1"},
	"metadata.google": {"169.254.169.254"},
	"localhost":       {"127.0.0.1", "::1"},
	"foo.localhost":   {"127.0.0.1"},
}

func newTestSender(allowPrivate bool) *Sender {
	s := NewSender(Options{AllowPrivate: allowPrivate})
	s.resolver = testResolver
	return s
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		url string
		// want is a fragment of the error without and with AllowPrivate
		// ("" for nil).
		want, wantAllow string
	}{
		{"https://93.184.215.14/x", "", ""},
		{"http://93.184.215.14:8080/hooks?t=1", "", ""},
		{"https://[2606:4700::1111]/x", "", ""},
		{"https://example.com/hooks", "", ""},
		{"HTTPS://Example.COM/hooks", "", ""},
		{"ftp://93.184.215.14/x", `scheme must be http or https, not "ftp"`, `not "ftp"`},
		{"/relative/path", "must be absolute", "must be absolute"},
		{"http:opaque", "must be absolute", "must be absolute"},
		{"https://user:pass@93.184.215.14/x", "user info", "user info"},
		{"https://user@93.184.215.14/x", "user info", "user info"},
		{"https://93.184.215.14/x#frag", "fragment", "fragment"},
		{"https://93.184.215.14/x#", "fragment", "fragment"},
		{"https:///x", "must have a host", "must have a host"},
		{"https://93.184.215.14:0/x", "port 0", "port 0"},
		{"https://93.184.215.14:65536/x", "port 65536", "port 65536"},
		{"https://93.184.215.14:65535/x", "", ""},
		{"https://93.184.215.14/%zz", "not valid", "not valid"},
		{"https://93.184.215.14/" + strings.Repeat("a", MaxURLLength), "longer than 2048", "longer than 2048"},
		{"http://127.0.0.1/x", "127.0.0.1 is a loopback address", ""},
		{"http://127.0.0.1:9/x", "loopback", ""},
		{"http://[::1]/x", "loopback", ""},
		{"http://10.1.2.3/x", "10.1.2.3 is a private address", ""},
		{"http://169.254.169.254/latest/meta-data/", "cloud metadata", ""},
		{"http://[::ffff:127.0.0.1]/x", "loopback", ""},
		{"http://[fe80::1]/x", "link-local", ""},
		{"http://[fe80::1%25eth0]/x", "link-local", ""},
		{"http://0.0.0.0/x", "unspecified", ""},
		{"http://localhost:8080/x", "loopback name", ""},
		{"http://LocalHost./x", "loopback name", ""},
		{"http://foo.localhost/x", "loopback name", ""},
		{"https://rebind.example/x", "resolves to 10.0.0.1, a private address", ""},
		{"https://metadata.google/x", "cloud metadata", ""},
		{"https://nx.example/x", "url host nx.example does not resolve", "does not resolve"},
	}
	ctx := context.Background()
	strict, lax := newTestSender(false), newTestSender(true)
	for _, tt := range tests {
		name := tt.url
		if len(name) > 60 {
			name = name[:60]
		}
		t.Run(name, func(t *testing.T) {
			check := func(s *Sender, want string) {
				t.Helper()
				err := s.CheckURL(ctx, tt.url)
				switch {
				case want == "" && err != nil:
					t.Fatalf("CheckURL (AllowPrivate %v) = %v, want nil", s.allowPrivate, err)
				case want != "" && err == nil:
					t.Fatalf("CheckURL (AllowPrivate %v) = nil, want %q", s.allowPrivate, want)
				case want != "" && !strings.Contains(err.Error(), want):
					t.Fatalf("CheckURL (AllowPrivate %v) = %q, want it to contain %q", s.allowPrivate, err, want)
				}
			}
			check(strict, tt.want)
			check(lax, tt.wantAllow)
		})
	}
}

// TestCheckURLHint checks that a private refusal tells the operator the
// way out.
func TestCheckURLHint(t *testing.T) {
	err := newTestSender(false).CheckURL(context.Background(), "http://10.1.2.3/x")
	if err == nil || !strings.Contains(err.Error(), "--webhook-allow-private") {
		t.Fatalf("CheckURL = %v, want the --webhook-allow-private hint", err)
	}
}
