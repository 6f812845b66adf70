package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenClaims are the claims Tandem reads from a JWT.
type tokenClaims struct {
	jwt.RegisteredClaims
	Scope json.RawMessage `json:"scope,omitempty"`
	Scp   json.RawMessage `json:"scp,omitempty"`
}

// looksLikeJWT reports whether token has the three dot-separated parts of a
// JWS compact serialisation.
func looksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2
}

func (a *Authenticator) verifyJWT(token string) (Principal, error) {
	jwks := a.jwks.Load()
	if a.hs256 == nil && jwks == nil {
		return Principal{}, invalid(ReasonJWTNotSupported)
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{AlgHS256, AlgRS256, AlgEdDSA}),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(a.leeway),
		jwt.WithTimeFunc(a.now),
		jwt.WithStrictDecoding(),
	}
	if a.audience != "" {
		opts = append(opts, jwt.WithAudience(a.audience))
	}
	if a.issuer != "" {
		opts = append(opts, jwt.WithIssuer(a.issuer))
	}
	keyFunc := func(t *jwt.Token) (any, error) {
		// The key is chosen by alg and kid together, and every JWKS key is
		// bound to one algorithm, so an HS256 token can never be checked
		// against a public key (alg confusion) and "none" is never allowed.
		alg, _ := t.Header["alg"].(string)
		switch alg {
		case AlgHS256:
			if a.hs256 == nil {
				return nil, errUnsupportedAlg
			}
			return a.hs256, nil
		case AlgRS256, AlgEdDSA:
			if jwks == nil {
				return nil, errUnsupportedAlg
			}
			kid, _ := t.Header["kid"].(string)
			k, ok := (*jwks)[kid]
			if !ok && a.remote != nil && a.remote.refetchUnknown() {
				// The provider may have rotated its keys (rate-limited).
				k, ok = (*a.jwks.Load())[kid]
			}
			if !ok {
				return nil, errUnknownKey
			}
			if k.alg != alg {
				return nil, errUnsupportedAlg
			}
			return k.key, nil
		}
		return nil, errUnsupportedAlg
	}
	var claims tokenClaims
	_, err := jwt.NewParser(opts...).ParseWithClaims(token, &claims, keyFunc)
	if err != nil {
		return Principal{}, invalid(jwtReason(err))
	}
	if claims.Subject == "" {
		return Principal{}, invalid(ReasonMissingSubject)
	}
	grants, err := tokenGrants(claims.Scope, claims.Scp)
	if err != nil {
		return Principal{}, invalid(ReasonInvalidScope)
	}
	p := Principal{Subject: claims.Subject, Grants: grants, Kind: KindJWT, Claims: jwtPayload(token)}
	if claims.ExpiresAt != nil {
		p.ExpiresAt = claims.ExpiresAt.Time
	}
	return p, nil
}

// jwtReason maps a golang-jwt error to a client-safe reason.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, errUnsupportedAlg):
		return ReasonUnsupportedAlg
	case errors.Is(err, errUnknownKey):
		return ReasonUnknownKey
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ReasonMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		// Also returned for an alg outside WithValidMethods ("none").
		if strings.Contains(err.Error(), "signing method") {
			return ReasonUnsupportedAlg
		}
		return ReasonBadSignature
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		// e.g. an unregistered alg, or a key of the wrong type.
		return ReasonUnsupportedAlg
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && strings.Contains(err.Error(), "exp"):
		return ReasonMissingExpiry
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return ReasonNotYetValid
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return ReasonWrongAudience
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return ReasonWrongIssuer
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		// aud or iss required by configuration but absent.
		if strings.Contains(err.Error(), "aud") {
			return ReasonWrongAudience
		}
		if strings.Contains(err.Error(), "iss") {
			return ReasonWrongIssuer
		}
	}
	return ReasonInvalidClaims
}

// tokenGrants reads grants from the "scope" claim (a space-separated string
// or an array of strings) and the "scp" claim (array or string). Entries
// that are not Tandem grants at all (no known action before ':', such as
// the OIDC scopes "openid" or "email") are ignored so that tokens from
// ordinary identity providers work; an entry with a Tandem action and a
// malformed pattern is an error.
func tokenGrants(claims ...json.RawMessage) (Grants, error) {
	var gs Grants
	for _, raw := range claims {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var entries []string
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			entries = strings.Fields(s)
		} else if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, errors.New("scope claim is neither a string nor an array of strings")
		}
		for _, e := range entries {
			act, _, ok := strings.Cut(e, ":")
			if !ok || !Action(act).Valid() {
				continue
			}
			g, err := ParseGrant(e)
			if err != nil {
				return nil, err
			}
			gs = append(gs, g)
		}
	}
	return gs, nil
}

// mintClaims are the claims written by Mint.
type mintClaims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope,omitempty"`
}

// Mint issues an HS256 JWT for the `tandem token` dev subcommand, with
// "sub", "iat", "nbf", "exp" (now + ttl), "scope" (the canonical grants,
// space-separated) and "aud"/"iss" if non-empty. Errors (never containing
// the secret): a secret shorter than MinHS256SecretLen, an empty subject,
// a non-positive ttl, or ErrInvalidGrant (wrapped) for a malformed grant.
func Mint(secret []byte, subject string, grants []string, ttl time.Duration, audience, issuer string) (string, error) {
	if len(secret) < MinHS256SecretLen {
		return "", fmt.Errorf("auth: HS256 secret must be at least %d bytes", MinHS256SecretLen)
	}
	if subject == "" {
		return "", errors.New("auth: subject is required")
	}
	if ttl <= 0 {
		return "", fmt.Errorf("auth: ttl must be positive, got %s", ttl)
	}
	gs, err := ParseGrants(grants)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	now := time.Now().Truncate(time.Second)
	c := mintClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   subject,
			Issuer:    issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Scope: gs.String(),
	}
	if audience != "" {
		c.Audience = jwt.ClaimStrings{audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(secret)
	if err != nil {
		return "", errors.New("auth: signing token failed")
	}
	return s, nil
}

// jwtPayload is the claims segment of a verified token as JSON (nil if it
// does not decode, which a verified token's always does).
func jwtPayload(token string) json.RawMessage {
	parts := strings.SplitN(token, ".", 3)
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || !json.Valid(b) {
		return nil
	}
	return b
}
