package tandem

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// jwtExpiry reads the exp claim of a JWT without verifying it (the server
// does that); it is only used to schedule the in-band refresh. ok is false
// for tokens that are not JWTs or carry no exp.
func jwtExpiry(token string) (time.Time, bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*claims.Exp), 0), true
}

// refreshDelay is when to refresh a token expiring at exp: after three
// quarters of its remaining life, but always at least half a second before
// it expires (minting and the round trip take time), and not sooner than
// 50 ms from now.
func refreshDelay(now, exp time.Time) time.Duration {
	left := exp.Sub(now)
	return max(50*time.Millisecond, min(left*3/4, left-500*time.Millisecond))
}
