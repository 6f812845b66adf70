package httpapi

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/ratelimit"
	"github.com/tandemhq/tandem/internal/wire"
)

// rateLimit applies the per-client limit to /v1/ requests: each client
// (its credentials' principal, else its IP) gets a token bucket; beyond it
// a 429 problem with RateLimit and Retry-After headers.
func rateLimit(l *ratelimit.Limiter, now func() time.Time, next http.Handler) http.Handler {
	if l == nil || l.Rate <= 0 {
		return next
	}
	policy := strconv.Itoa(l.Burst) + ";w=" + strconv.Itoa(int(math.Ceil(float64(l.Burst)/l.Rate)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		key := principalKey(r)
		if key == "" {
			key, _, _ = net.SplitHostPort(r.RemoteAddr)
		}
		ok, remaining, retry := l.Allow(key, now())
		h := w.Header()
		h.Set("RateLimit-Policy", policy)
		reset := int(math.Ceil(retry.Seconds()))
		h.Set("RateLimit", "limit="+strconv.Itoa(l.Burst)+", remaining="+strconv.Itoa(remaining)+", reset="+strconv.Itoa(reset))
		if !ok {
			if reset < 1 {
				reset = 1
			}
			h.Set("Retry-After", strconv.Itoa(reset))
			writeProblem(w, r, wire.NewProblem(wire.KindRateLimited, fmt.Sprintf("rate limit of %g requests per second exceeded; retry after %d s", l.Rate, reset), nil))
			return
		}
		next.ServeHTTP(w, r)
	})
}
