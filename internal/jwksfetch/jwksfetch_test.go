package jwksfetch_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/jwksfetch"
)

var _ auth.JWKSFetcher = (*jwksfetch.Fetcher)(nil)

// TestMain fails if a fetch leaves a connection's goroutines behind (the
// Fetcher keeps no idle connection).
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFetchJWKS(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if got := r.Header.Get("Accept"); !strings.Contains(got, "application/jwk-set+json") {
			t.Errorf("Accept = %q", got)
		}
		_, _ = w.Write([]byte(`{"keys":[]}`))
	})
	mux.HandleFunc("/missing", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(make([]byte, 101)) })
	mux.Handle("/moved", http.RedirectHandler("/ok", http.StatusFound))
	mux.Handle("/loop", http.RedirectHandler("/loop", http.StatusFound))
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	allowAll := func(*url.URL) error { return nil }
	refuse := errors.New("redirect refused by the policy")
	tests := []struct {
		name    string
		path    string
		allow   func(*url.URL) error
		timeout time.Duration
		want    string // error substring; "" means success
	}{
		{name: "ok", path: "/ok", allow: allowAll},
		{name: "not found", path: "/missing", allow: allowAll, want: "status 404 Not Found, want 200 OK"},
		{name: "too large", path: "/big", allow: allowAll, want: "body larger than 100 bytes"},
		{name: "redirect allowed", path: "/moved", allow: allowAll},
		{name: "redirect refused", path: "/moved", allow: func(*url.URL) error { return refuse }, want: refuse.Error()},
		{name: "redirect loop", path: "/loop", allow: allowAll, want: "too many redirects"},
		{name: "deadline", path: "/slow", allow: allowAll, timeout: 50 * time.Millisecond, want: "deadline exceeded"},
	}
	f := jwksfetch.New()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			u, _ := url.Parse(strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1) + tt.path)
			body, err := f.FetchJWKS(ctx, u, 100, tt.allow)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.want == "" && string(body) != `{"keys":[]}`:
				t.Fatalf("body = %q", body)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want one containing %q", err, tt.want)
			case err != nil && (strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), srv.URL[len("http://"):])):
				t.Fatalf("error repeats the URL: %v", err)
			}
		})
	}
}
