package httpapi

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/tandemhq/tandem/internal/wire"
)

// Origins is an allow-list of browser origins ("https://app.example.com";
// "*" allows any). Requests without an Origin header (non-browser clients)
// are not affected.
type Origins []string

// Allows reports whether origin may call the API from a browser: listed,
// "*" configured, or the same host as the request (same-origin).
func (o Origins) Allows(origin, host string) bool {
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err == nil && strings.EqualFold(u.Host, host) {
		return true
	}
	for _, a := range o {
		if a == "*" || strings.EqualFold(strings.TrimSuffix(a, "/"), origin) {
			return true
		}
	}
	return false
}

// CheckOrigin is the WebSocket upgrade check: cross-origin upgrades are
// refused unless the origin is allowed.
func (o Origins) CheckOrigin(r *http.Request) bool {
	return o.Allows(r.Header.Get("Origin"), r.Host)
}

// cors answers preflights and sets CORS headers for allowed origins; a
// disallowed cross-origin preflight gets 403 with a problem.
func cors(o Origins, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		allowed := o.Allows(origin, r.Host)
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Expose-Headers", "ETag, Location, Link, Idempotent-Replayed, RateLimit, RateLimit-Policy, Retry-After")
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			if !allowed {
				writeProblem(w, r, wire.NewProblem(wire.KindForbidden, "origin "+origin+" is not allowed", nil))
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match, If-None-Match, Idempotency-Key, Last-Event-ID, X-API-Key")
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}
