// Package jwksfetch fetches JSON Web Key Set documents over HTTP(S) for
// internal/auth, which owns the port (auth.JWKSFetcher), the URL policy,
// the parsing and the refresh and rate-limit logic: the packages below app
// know nothing of net/http, so the one HTTP client they need lives here
// and cmd/tandem plugs it in.
package jwksfetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// maxRedirects bounds the redirects one fetch follows.
const maxRedirects = 5

// Fetcher GETs JWK set documents. Its zero value is not usable; use
// [New]. It is safe for concurrent use.
type Fetcher struct {
	tr *http.Transport
}

// New returns a Fetcher whose connections are not kept alive: a fetch
// every few minutes gains nothing from an idle connection, and none is
// left behind when the server stops. It returns no error.
func New() *Fetcher {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableKeepAlives = true
	return &Fetcher{tr: tr}
}

// FetchJWKS GETs u and returns its body. It follows at most five
// redirects, each only to a URL allow accepts, and bounds the call by
// ctx. Errors: the request failed or ctx ended, a redirect allow refused
// (allow's error), a status other than 200, a body longer than limit
// bytes. They never repeat u (nor its password): the caller names it.
func (f *Fetcher) FetchJWKS(ctx context.Context, u *url.URL, limit int64, allow func(*url.URL) error) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, errors.New("invalid request URL")
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	client := &http.Client{
		Transport: f.tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return errors.New("too many redirects")
			}
			return allow(req.URL)
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // which would repeat the URL, password included
		}
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s, want 200 OK", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading body: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("body larger than %d bytes", limit)
	}
	return data, nil
}
