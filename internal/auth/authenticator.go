package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync/atomic"
	"time"
)

// MinHS256SecretLen is the shortest accepted HS256 secret, in bytes
// (RFC 7518 §3.2: at least the hash size).
const MinHS256SecretLen = 32

// DefaultLeeway is a sensible [Config.Leeway] for clock skew.
const DefaultLeeway = 30 * time.Second

// MaxLeeway is the largest accepted [Config.Leeway].
const MaxLeeway = 5 * time.Minute

// MaxTokenLen is the longest token Authenticate will look at, in bytes.
const MaxTokenLen = 8 << 10

// Config configures an [Authenticator]. Auth is enabled when at least one
// of APIKeys, HS256Secret, JWKSFile or JWKSURL is set. Config holds secrets: String,
// GoString, LogValue and MarshalJSON redact them.
type Config struct {
	// APIKeys are static server-to-server credentials.
	APIKeys []APIKey
	// HS256Secret enables HS256 JWTs; at least MinHS256SecretLen bytes.
	HS256Secret []byte
	// JWKSFile is a JSON Web Key Set file whose RSA (RS256) and Ed25519
	// (EdDSA) keys verify JWTs, chosen by the token's "kid" header.
	JWKSFile string
	// JWKSURL is fetched for a JSON Web Key Set like JWKSFile (which it
	// excludes): https, or http on a loopback host. It is fetched by New,
	// every JWKSRefresh by [Authenticator.RunJWKSRefresh], and when a token
	// names an unknown kid (at most once per DefaultJWKSRefetchInterval);
	// each fetch that succeeds replaces the whole set, one that fails keeps
	// it.
	JWKSURL string
	// JWKSFetcher fetches JWKSURL (required with it); cmd/tandem passes
	// internal/jwksfetch's, which speaks HTTP so that this package need not.
	JWKSFetcher JWKSFetcher
	// JWKSRefresh is the JWKSURL refresh interval; 0 means
	// DefaultJWKSRefresh.
	JWKSRefresh time.Duration
	// Audience, if set, must appear in a JWT's "aud" claim.
	Audience string
	// Issuer, if set, must equal a JWT's "iss" claim.
	Issuer string
	// Leeway is the clock skew tolerated for "exp" and "nbf" (0 means none;
	// see DefaultLeeway). At most MaxLeeway.
	Leeway time.Duration
	// AnonymousGrants are the grants of callers presenting no credentials
	// when auth is enabled. When auth is disabled they are ignored and
	// anonymous callers may do everything.
	AnonymousGrants Grants
	// Now returns the current time; nil means time.Now. For tests.
	Now func() time.Time
	// Logger receives warnings about failed JWKSURL refreshes; nil
	// discards them.
	Logger *slog.Logger
}

// String describes c with secrets redacted. It returns no error.
func (c Config) String() string {
	return fmt.Sprintf("auth.Config{APIKeys:%v HS256Secret:%s JWKSFile:%q JWKSURL:%q JWKSRefresh:%s Audience:%q Issuer:%q Leeway:%s AnonymousGrants:%q}",
		c.APIKeys, redactedBytes(c.HS256Secret), c.JWKSFile, redactedURL(c.JWKSURL), c.JWKSRefresh, c.Audience, c.Issuer, c.Leeway, c.AnonymousGrants.String())
}

// GoString is String, so that %#v does not print secrets. It returns no
// error.
func (c Config) GoString() string { return c.String() }

// LogValue implements slog.LogValuer with secrets redacted. It returns no
// error.
func (c Config) LogValue() slog.Value {
	keys := make([]string, len(c.APIKeys))
	for i, k := range c.APIKeys {
		keys[i] = k.Name
	}
	return slog.GroupValue(
		slog.Any("api_keys", keys),
		slog.String("hs256_secret", redactedBytes(c.HS256Secret)),
		slog.String("jwks_file", c.JWKSFile),
		slog.String("jwks_url", redactedURL(c.JWKSURL)),
		slog.Duration("jwks_refresh", c.JWKSRefresh),
		slog.String("audience", c.Audience),
		slog.String("issuer", c.Issuer),
		slog.Duration("leeway", c.Leeway),
		slog.String("anonymous_grants", c.AnonymousGrants.String()),
	)
}

// MarshalJSON encodes c with secrets redacted (so it does not round-trip).
// It returns no error.
func (c Config) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		APIKeys         []APIKey `json:"api_keys"`
		HS256Secret     string   `json:"hs256_secret"`
		JWKSFile        string   `json:"jwks_file"`
		JWKSURL         string   `json:"jwks_url"`
		JWKSRefresh     string   `json:"jwks_refresh"`
		Audience        string   `json:"audience"`
		Issuer          string   `json:"issuer"`
		Leeway          string   `json:"leeway"`
		AnonymousGrants Grants   `json:"anonymous_grants"`
	}{c.APIKeys, redactedBytes(c.HS256Secret), c.JWKSFile, redactedURL(c.JWKSURL), c.JWKSRefresh.String(), c.Audience, c.Issuer, c.Leeway.String(), c.AnonymousGrants})
}

// redactedURL is raw without the password of its userinfo ("" stays "").
func redactedURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redacted
	}
	return u.Redacted()
}

func redactedBytes(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return redacted
}

// Authenticator turns credentials into a [Principal]. It is safe for
// concurrent use.
type Authenticator struct {
	keys      *keyring
	hs256     []byte
	jwksFile  string
	remote    *remoteJWKS // nil without Config.JWKSURL
	jwks      atomic.Pointer[map[string]jwk]
	audience  string
	issuer    string
	leeway    time.Duration
	anonymous Grants
	now       func() time.Time
	enabled   bool
}

// New validates cfg and builds an Authenticator, loading the JWKS file or
// fetching the JWKS URL if one is configured (New starts no goroutine; see
// [Authenticator.RunJWKSRefresh]). Errors (never containing a secret):
// invalid API keys (bad or duplicate name, key shorter than MinAPIKeyLen,
// duplicate key, invalid grants), an HS256 secret shorter than
// MinHS256SecretLen, an unreadable or invalid JWKS file, both a JWKS file
// and a JWKS URL, a JWKS URL without a JWKSFetcher or neither https nor http on a loopback
// host, a first fetch of it that fails (see [Authenticator.ReloadJWKS]), a
// negative JWKSRefresh, a negative or too large leeway, invalid anonymous
// grants.
func New(cfg Config) (*Authenticator, error) {
	kr, err := newKeyring(cfg.APIKeys)
	if err != nil {
		return nil, err
	}
	if len(cfg.HS256Secret) > 0 && len(cfg.HS256Secret) < MinHS256SecretLen {
		return nil, fmt.Errorf("auth: HS256 secret must be at least %d bytes", MinHS256SecretLen)
	}
	if cfg.Leeway < 0 || cfg.Leeway > MaxLeeway {
		return nil, fmt.Errorf("auth: leeway %s out of range [0, %s]", cfg.Leeway, MaxLeeway)
	}
	if err := cfg.AnonymousGrants.Validate(); err != nil {
		return nil, fmt.Errorf("auth: anonymous grants: %w", err)
	}
	if cfg.JWKSFile != "" && cfg.JWKSURL != "" {
		return nil, errors.New("auth: a JWKS file and a JWKS URL cannot be combined; configure one of them")
	}
	if cfg.JWKSRefresh < 0 {
		return nil, fmt.Errorf("auth: JWKS refresh interval %s is negative", cfg.JWKSRefresh)
	}
	a := &Authenticator{
		keys:      kr,
		jwksFile:  cfg.JWKSFile,
		audience:  cfg.Audience,
		issuer:    cfg.Issuer,
		leeway:    cfg.Leeway,
		anonymous: append(Grants(nil), cfg.AnonymousGrants...),
		now:       cfg.Now,
	}
	if a.now == nil {
		a.now = time.Now
	}
	if len(cfg.HS256Secret) > 0 {
		a.hs256 = append([]byte(nil), cfg.HS256Secret...)
	}
	if cfg.JWKSURL != "" {
		u, err := checkJWKSURL(cfg.JWKSURL)
		if err != nil {
			return nil, err
		}
		every := cfg.JWKSRefresh
		if every == 0 {
			every = DefaultJWKSRefresh
		}
		logger := cfg.Logger
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		if cfg.JWKSFetcher == nil {
			return nil, errors.New("auth: a JWKS URL needs a JWKSFetcher")
		}
		a.remote = newRemoteJWKS(u, cfg.JWKSFetcher, every, logger, func(keys map[string]jwk) { a.jwks.Store(&keys) })
	}
	if cfg.JWKSFile != "" || a.remote != nil {
		if err := a.ReloadJWKS(); err != nil {
			return nil, err
		}
	}
	a.enabled = len(cfg.APIKeys) > 0 || a.hs256 != nil || cfg.JWKSFile != "" || a.remote != nil
	if !a.enabled {
		a.anonymous = AllowAll()
	}
	return a, nil
}

// Enabled reports whether any credentials are configured. When false, every
// caller is the anonymous principal and may do everything. It returns no
// error.
func (a *Authenticator) Enabled() bool { return a.enabled }

// Anonymous returns the principal for callers without credentials: Kind
// KindAnonymous, empty Subject, Config.AnonymousGrants (or [AllowAll] when
// auth is disabled). It returns no error.
func (a *Authenticator) Anonymous() Principal {
	// Shared, clipped: an append by a holder copies, and nothing writes
	// grants in place, so every anonymous connection need not hold a copy.
	return Principal{Kind: KindAnonymous, Grants: slices.Clip(a.anonymous)}
}

// ReloadJWKS re-reads the configured JWKS file or fetches the JWKS URL now
// (for key rotation) and swaps the new set in atomically; on error the
// previous keys stay in use. Errors: an unreadable or invalid file; for
// the URL a failed or timed-out request, a status other than 200, a body
// larger than MaxJWKSSize or an invalid set; nil if neither is configured.
func (a *Authenticator) ReloadJWKS() error {
	if a.remote != nil {
		return a.remote.refresh(context.Background()) // bounded by JWKSFetchTimeout
	}
	if a.jwksFile == "" {
		return nil
	}
	keys, err := loadJWKSFile(a.jwksFile)
	if err != nil {
		return err
	}
	a.jwks.Store(&keys)
	return nil
}

// RunJWKSRefresh fetches the JWKS URL every Config.JWKSRefresh until ctx
// is done, then returns. A fetch that fails is logged as a warning and
// keeps the previous keys; one that succeeds replaces them atomically, so
// a kid the provider adds is accepted and one it drops is refused from
// then on. Without a JWKS URL it returns at once. It returns no error.
func (a *Authenticator) RunJWKSRefresh(ctx context.Context) {
	if a.remote == nil {
		return
	}
	a.remote.run(ctx)
}

// Authenticate verifies a credential: a configured API key or a JWT. When
// auth is disabled it returns the anonymous principal for any token.
// Errors: ErrNoToken for an empty token (when enabled); otherwise a
// *TokenError matching ErrInvalidToken whose Reason is client-safe, such as
// ReasonUnknownAPIKey, ReasonMalformed, ReasonExpired, ReasonNotYetValid,
// ReasonWrongAudience, ReasonWrongIssuer, ReasonBadSignature,
// ReasonUnsupportedAlg, ReasonUnknownKey, ReasonMissingSubject,
// ReasonMissingExpiry, ReasonInvalidScope, ReasonInvalidClaims,
// ReasonTooLarge or ReasonJWTNotSupported (a JWT when only API keys are
// configured).
func (a *Authenticator) Authenticate(token string) (Principal, error) {
	if !a.enabled {
		return a.Anonymous(), nil
	}
	if token == "" {
		return Principal{}, ErrNoToken
	}
	if len(token) > MaxTokenLen {
		return Principal{}, invalid(ReasonTooLarge)
	}
	if k, ok := a.keys.lookup(token); ok {
		return Principal{Subject: k.Name, Grants: append(Grants(nil), k.Grants...), Kind: KindAPIKey}, nil
	}
	if !looksLikeJWT(token) {
		return Principal{}, invalid(ReasonUnknownAPIKey)
	}
	return a.verifyJWT(token)
}

// Resolve is Authenticate, except that an empty token yields the anonymous
// principal instead of ErrNoToken (use [Principal.Check] to turn a denial
// into ErrNoToken or ErrInsufficientScope). Errors: as Authenticate, except
// ErrNoToken.
func (a *Authenticator) Resolve(token string) (Principal, error) {
	if token == "" {
		return a.Anonymous(), nil
	}
	return a.Authenticate(token)
}

// String describes a without secrets. It returns no error.
func (a *Authenticator) String() string {
	n := 0
	if m := a.jwks.Load(); m != nil {
		n = len(*m)
	}
	return fmt.Sprintf("auth.Authenticator{enabled:%t api_keys:%d hs256:%t jwks_keys:%d}", a.enabled, len(a.keys.keys), a.hs256 != nil, n)
}

// GoString is String, so that %#v does not print secrets. It returns no
// error.
func (a *Authenticator) GoString() string { return a.String() }

// LogValue implements slog.LogValuer without secrets. It returns no error.
func (a *Authenticator) LogValue() slog.Value { return slog.StringValue(a.String()) }

// errUnknownKey and errUnsupportedAlg are returned by the key function.
var (
	errUnknownKey     = errors.New(ReasonUnknownKey)
	errUnsupportedAlg = errors.New(ReasonUnsupportedAlg)
)
