package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/tandemhq/tandem/gen/api"
	"github.com/tandemhq/tandem/internal/app"
	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/wire"
)

// replayedHeaders are the response headers stored with an idempotent reply.
var replayedHeaders = []string{"Content-Type", "Location", "ETag"}

// idempotency replays the stored reply of a POST carrying an
// Idempotency-Key (app.App.Idempotent): the same key with the same request
// gets the first reply again (with `Idempotent-Replayed: true`); the same
// key with another request is a 409 problem. Replies with 5xx statuses are
// not stored, so the client can retry them.
type idempotency struct {
	app *app.App
}

func (m *idempotency) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if r.Method != http.MethodPost || key == "" {
			next.ServeHTTP(w, r)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeProblem(w, r, bodyReadProblem(err))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.New()
		sum.Write([]byte(r.Method + " " + r.URL.Path + "\n" + r.Header.Get("Content-Type") + "\n"))
		sum.Write(body)
		fp := hex.EncodeToString(sum.Sum(nil))
		var live http.Header // the headers of a reply made now, not replayed
		rep, replayed, err := m.app.Idempotent(r.Context(), principalOf(r.Context()), key, fp, func() app.Reply {
			buf := &bufferedResponse{header: http.Header{}}
			next.ServeHTTP(buf, r)
			if buf.status == 0 {
				buf.status = http.StatusOK
			}
			live = buf.header
			stored := app.Reply{Status: buf.status, Header: map[string]string{}, Body: buf.body.Bytes()}
			for _, k := range replayedHeaders {
				if v := buf.header.Get(k); v != "" {
					stored.Header[k] = v
				}
			}
			return stored
		})
		if err != nil {
			writeProblem(w, r, wire.Problem(err))
			return
		}
		if replayed {
			for k, v := range rep.Header {
				w.Header().Set(k, v)
			}
			w.Header().Set("Idempotent-Replayed", "true")
		} else {
			for k, v := range live {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(rep.Status)
		_, _ = w.Write(rep.Body)
	})
}

// principalKey scopes rate limits to the caller ("" for anonymous
// callers).
func principalKey(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok {
		return p.Scope()
	}
	return ""
}

// bufferedResponse captures a handler's response.
type bufferedResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedResponse) Header() http.Header { return b.header }
func (b *bufferedResponse) WriteHeader(s int) {
	if b.status == 0 {
		b.status = s
	}
}
func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// bodyReadProblem answers a body that could not be read.
func bodyReadProblem(err error) api.Problem {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return wire.NewProblem(wire.KindTooLarge, "request body exceeds "+strconv.FormatInt(mbe.Limit, 10)+" bytes", nil)
	}
	return wire.NewProblem(wire.KindInvalid, "request body could not be read", nil)
}
