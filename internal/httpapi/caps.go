package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/tandemhq/tandem/internal/quota"
	"github.com/tandemhq/tandem/internal/wire"
)

// capStreams counts each SSE stream (GET /v1/events) and long-poll (GET
// /v1/changes) against the connection cap of its client address for as
// long as it runs; beyond the cap it answers the cap's problem (429) with
// a Retry-After hint. A nil caps limits nothing.
func capStreams(caps *quota.Caps, next http.Handler) http.Handler {
	if caps == nil || caps.ConnsPerIP == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || (r.URL.Path != "/v1/events" && r.URL.Path != "/v1/changes") {
			next.ServeHTTP(w, r)
			return
		}
		release, err := caps.Conn(r.RemoteAddr)
		if err != nil {
			setRetryHint(w, err)
			writeProblem(w, r, wire.Problem(err))
			return
		}
		defer release()
		next.ServeHTTP(w, r)
	})
}

// setRetryHint sets Retry-After on the answer to a request refused by a
// cap (quota.RetryHint); other errors leave the headers alone.
func setRetryHint(w http.ResponseWriter, err error) {
	var qe *quota.Error
	if errors.As(err, &qe) {
		w.Header().Set("Retry-After", strconv.Itoa(int(quota.RetryHint/time.Second)))
	}
}
