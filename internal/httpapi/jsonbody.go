package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/ijson"
	"github.com/tandemhq/tandem/internal/wire"
)

// checkJSONBody rejects JSON request bodies that are not valid UTF-8
// (RFC 8259 §8.1), not JSON (with the byte offset of the error; this
// includes data after the top-level value) or not I-JSON (RFC 7493:
// duplicate member names, numbers beyond the double range, unpaired
// surrogates, nesting beyond ijson.MaxDepth), before anything parses
// them, with a 400 invalid-request problem. Such bytes would otherwise be
// stored as written and sent to every subscriber inside WebSocket text
// frames, which must be UTF-8 (browsers fail the connection otherwise), or
// be refused by PostgreSQL as a 500; a duplicate member would be validated
// by its last occurrence and stored with both. Bodies of other media types
// pass untouched; the request validator answers those with 415. It must
// run inside limitBody: a body over the limit is a 413 problem.
func checkJSONBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || !jsonMediaType(r.Header.Get("Content-Type")) {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeProblem(w, r, wire.NewProblem(wire.KindTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", tooBig.Limit), nil))
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				writeProblem(w, r, wire.NewProblem(wire.KindRequestTimeout, "the request body did not arrive within the read timeout", []api.ProblemField{wire.BodyField("", "incomplete: the body did not arrive in time")}))
				return
			}
			writeProblem(w, r, wire.NewProblem(wire.KindInvalid, "the request body could not be read", []api.ProblemField{wire.BodyField("", "could not be read")}))
			return
		}
		// The body is in: lift the read deadline (readDeadline), which would
		// otherwise also end net/http's watch for the client going away.
		_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
		if !utf8.Valid(body) {
			writeProblem(w, r, wire.NewProblem(wire.KindInvalid, "malformed JSON: the request body is not valid UTF-8", []api.ProblemField{wire.BodyField("", "malformed JSON: not valid UTF-8")}))
			return
		}
		if err := ijson.Check(body); err != nil {
			writeProblem(w, r, ijsonProblem(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// jsonMediaType reports whether a Content-Type is JSON (application/json
// or any +json type such as application/merge-patch+json).
func jsonMediaType(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}

// ijsonProblem describes a body ijson.Check refused as a 400 problem.
// Malformed JSON (including data after the top-level value) is reported
// with its byte offset, e.g. "malformed JSON: unexpected end of input at
// byte 13"; an I-JSON violation (duplicate member, number beyond the
// double range, unpaired surrogate) names the member or value by JSON
// pointer. Nesting beyond ijson.MaxDepth names no pointer: it would be as
// deep as the nesting.
func ijsonProblem(err error) api.Problem {
	var e *ijson.Error
	if !errors.As(err, &e) {
		return wire.NewProblem(wire.KindInvalid, "malformed JSON", []api.ProblemField{wire.BodyField("", "malformed JSON")})
	}
	var f api.ProblemField
	switch e.Reason {
	case ijson.Syntax:
		f = wire.BodyField("", "malformed JSON: "+e.Error())
	case ijson.TooDeep:
		f = wire.BodyField("", e.Error())
	default:
		f = wire.BodyField(e.Pointer, e.Error())
	}
	return wire.NewProblem(wire.KindInvalid, describe(f), []api.ProblemField{f})
}

// readDeadline bounds reading a request's body: a request that announces
// one (a Content-Length or chunked encoding) must deliver it within d, or
// reading it fails (a 408 problem, see checkJSONBody) and the connection
// is closed. Requests without a body — the SSE and long-poll GETs — are
// left alone, and WebSockets are not routed through here.
func readDeadline(d time.Duration, next http.Handler) http.Handler {
	if d <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		}
		next.ServeHTTP(w, r)
	})
}
