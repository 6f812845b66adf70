package auth

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"sync"
	"time"
)

// DefaultJWKSRefresh is the [Config.JWKSRefresh] used when it is zero.
const DefaultJWKSRefresh = 15 * time.Minute

// JWKSFetchTimeout bounds one fetch of [Config.JWKSURL], redirects and
// body included.
const JWKSFetchTimeout = 10 * time.Second

// DefaultJWKSRefetchInterval is the shortest time between two fetches that
// a token with an unknown kid triggers.
const DefaultJWKSRefetchInterval = 10 * time.Second

// checkJWKSURL parses a JWKS URL: https, or http on a loopback host
// (127.0.0.1, ::1, localhost). Errors: unparsable, another scheme, no
// host, plain http elsewhere. Messages show the URL without its password.
func checkJWKSURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL: %w", err)
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("auth: JWKS URL %q: scheme %q not supported; use https", u.Redacted(), u.Scheme)
	}
	if u.Hostname() == "" {
		return nil, fmt.Errorf("auth: JWKS URL %q: no host; want an absolute https:// URL", u.Redacted())
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("auth: JWKS URL %q: plain http is only allowed on a loopback host (127.0.0.1, ::1, localhost); use https", u.Redacted())
	}
	return u, nil
}

func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// JWKSFetcher gets the JWK set document of [Config.JWKSURL]; package
// internal/jwksfetch implements it over HTTP(S). FetchJWKS GETs u and
// returns its body, following redirects only to URLs allow accepts, within
// ctx. Errors: a failed request, a refused redirect, a status other than
// 200, a body longer than limit bytes; they must not repeat u (the
// Authenticator names it, without its password).
type JWKSFetcher interface {
	FetchJWKS(ctx context.Context, u *url.URL, limit int64, allow func(*url.URL) error) ([]byte, error)
}

// remoteJWKS fetches a JWK set from a URL: at startup, every refresh
// interval (see [Authenticator.RunJWKSRefresh]) and, rate-limited, when a
// token names an unknown kid. A fetch that fails keeps the keys in use.
type remoteJWKS struct {
	url      *url.URL
	fetcher  JWKSFetcher
	every    time.Duration // periodic refresh
	minGap   time.Duration // between two unknown-kid refetches
	logger   *slog.Logger
	store    func(map[string]jwk)
	fetchMu  sync.Mutex    // held by refresh
	kids     []string      // of the set in use, sorted; under fetchMu
	mu       sync.Mutex    // guards last and inflight
	last     time.Time     // start of the last unknown-kid refetch
	inflight chan struct{} // closed when the running unknown-kid refetch ends
}

func newRemoteJWKS(u *url.URL, fetcher JWKSFetcher, every time.Duration, logger *slog.Logger, store func(map[string]jwk)) *remoteJWKS {
	return &remoteJWKS{
		url:     u,
		fetcher: fetcher,
		every:   every,
		minGap:  DefaultJWKSRefetchInterval,
		logger:  logger,
		store:   store,
	}
}

// allowRedirect applies the JWKS URL policy to a redirect target.
func allowRedirect(u *url.URL) error {
	_, err := checkJWKSURL(u.String())
	return err
}

// fetch gets and parses the JWK set within JWKSFetchTimeout. Errors: those
// of the fetcher (a failed or timed-out request, a redirect the URL policy
// refuses, a status other than 200, a body larger than MaxJWKSSize) or of
// parseJWKS; all name the URL (without its password).
func (r *remoteJWKS) fetch(ctx context.Context) (map[string]jwk, error) {
	where := r.url.Redacted()
	ctx, cancel := context.WithTimeout(ctx, JWKSFetchTimeout)
	defer cancel()
	data, err := r.fetcher.FetchJWKS(ctx, r.url, MaxJWKSSize, allowRedirect)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL %s: %w", where, err)
	}
	if len(data) > MaxJWKSSize {
		return nil, fmt.Errorf("auth: JWKS URL %s: body larger than %d bytes", where, MaxJWKSSize)
	}
	keys, err := parseJWKS(data)
	if err != nil {
		return nil, fmt.Errorf("auth: JWKS URL %s: %w", where, err)
	}
	return keys, nil
}

// refresh fetches the set and swaps it in, logging the kids when they
// change. Refreshes run one at a time, so an older answer never replaces
// a newer one. Errors: those of fetch, after which the previous keys stay
// in use.
func (r *remoteJWKS) refresh(ctx context.Context) error {
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	keys, err := r.fetch(ctx)
	if err != nil {
		return err
	}
	kids := slices.Sorted(maps.Keys(keys))
	if r.kids != nil && !slices.Equal(kids, r.kids) {
		r.logger.Info("JWKS keys changed", "url", r.url.Redacted(), "kids", kids, "previous", r.kids)
	}
	r.kids = kids
	r.store(keys)
	return nil
}

// run refreshes every r.every until ctx is done, logging failures.
func (r *remoteJWKS) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
			r.logger.Warn("JWKS refresh failed; keeping the previous keys", "err", err)
		}
	}
}

// refetchUnknown refreshes the set because a token named a kid it does not
// hold, at most once per r.minGap: within that gap it returns at once,
// except that callers arriving while such a refetch runs wait for it. It
// reports whether the keys may have changed.
func (r *remoteJWKS) refetchUnknown() bool {
	r.mu.Lock()
	if ch := r.inflight; ch != nil {
		r.mu.Unlock()
		<-ch // bounded by JWKSFetchTimeout
		return true
	}
	if !r.last.IsZero() && time.Since(r.last) < r.minGap {
		r.mu.Unlock()
		return false
	}
	r.last = time.Now()
	ch := make(chan struct{})
	r.inflight = ch
	r.mu.Unlock()

	err := r.refresh(context.Background())
	if err != nil {
		r.logger.Warn("JWKS refetch for an unknown kid failed; keeping the previous keys", "err", err)
	}
	r.mu.Lock()
	r.inflight = nil
	r.mu.Unlock()
	close(ch)
	return err == nil
}
