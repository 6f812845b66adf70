// In-band authentication on a Conn: Authenticate and the timer that
// refreshes a JWT before it expires.

package tandem

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Authenticate sends a fresh token from the client's token source in-band
// (an auth frame), replacing the connection's credentials without
// reconnecting. The SDK does this by itself before a JWT from a
// WithTokenSource source expires. Errors: no token source configured,
// ErrUnauthorized, *ProblemError, ErrConnectionLost.
func (cn *Conn) Authenticate(ctx context.Context) (*AuthResult, error) {
	res, _, err := cn.authenticate(ctx)
	return res, err
}

func (cn *Conn) authenticate(ctx context.Context) (*AuthResult, string, error) {
	if cn.c.tokens == nil {
		return nil, "", errors.New("tandem: Authenticate needs WithToken or WithTokenSource")
	}
	tok, err := cn.c.tokens(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("tandem: token source: %w", err)
	}
	f, err := cn.request(ctx, func(ref string) any { return authFrame{Type: "auth", Ref: ref, Token: tok} })
	if err != nil {
		return nil, tok, err
	}
	var res AuthResult
	if len(f.Body) > 0 {
		if err := json.Unmarshal(f.Body, &res); err != nil {
			return nil, tok, fmt.Errorf("tandem: auth reply: %w", err)
		}
	}
	return &res, tok, nil
}

// scheduleRefresh refreshes the token of connection gen in-band before exp.
func (cn *Conn) scheduleRefresh(gen uint64, exp time.Time) {
	d := refreshDelay(time.Now(), exp)
	cn.mu.Lock()
	defer cn.mu.Unlock()
	if cn.gen != gen || cn.ws == nil {
		return
	}
	if cn.refreshTimer != nil {
		cn.refreshTimer.Stop()
	}
	cn.refreshTimer = time.AfterFunc(d, func() {
		ctx, cancel := context.WithTimeout(cn.ctx, 15*time.Second)
		defer cancel()
		res, tok, err := cn.authenticate(ctx)
		if err != nil {
			// The server closes with 4001 at expiry; the reconnect then
			// presents a fresh token.
			cn.c.logger.Warn("tandem: in-band token refresh failed", "err", err)
			return
		}
		next, ok := time.Time{}, false
		if res.ExpiresAt != "" {
			if t, err := time.Parse(time.RFC3339, res.ExpiresAt); err == nil {
				next, ok = t, true
			}
		}
		if !ok {
			next, ok = jwtExpiry(tok)
		}
		if ok {
			cn.scheduleRefresh(gen, next)
		}
	})
}
