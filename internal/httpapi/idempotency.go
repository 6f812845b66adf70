package httpapi

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// replayedHeaders are the response headers stored with an idempotent reply.
var replayedHeaders = []string{"Content-Type", "Location", "ETag"}

// idempotency replays the stored reply of a POST carrying an
// Idempotency-Key: the same key with the same request gets the first reply
// again (with `Idempotent-Replayed: true`); the same key with another
// request is a 409 problem. Replies with 5xx statuses are not stored, so
// the client can retry them.
type idempotency struct {
	store store.Store
	now   func() time.Time
	locks [64]sync.Mutex
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
			writeProblem(w, r, ProblemFor(bodyReadError(err)))
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.New()
		sum.Write([]byte(r.Method + " " + r.URL.Path + "\n" + r.Header.Get("Content-Type") + "\n"))
		sum.Write(body)
		fp := hex.EncodeToString(sum.Sum(nil))
		scoped := principalKey(r) + "\x00" + key

		h := fnv.New32a()
		h.Write([]byte(scoped))
		mu := &m.locks[h.Sum32()%uint32(len(m.locks))]
		mu.Lock()
		defer mu.Unlock()

		rec, err := m.store.GetIdempotentReply(r.Context(), scoped)
		switch {
		case err == nil && rec.Fingerprint != fp:
			writeProblem(w, r, ProblemFor(store.Errorf(store.CodeConflict, "Idempotency-Key %q was already used for a different request", key)))
			return
		case err == nil:
			for k, v := range rec.Header {
				w.Header().Set(k, v)
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(rec.Status)
			_, _ = w.Write(rec.Body)
			return
		case !errors.Is(err, store.ErrNotFound):
			writeProblem(w, r, ProblemFor(err))
			return
		}
		buf := &bufferedResponse{header: http.Header{}}
		next.ServeHTTP(buf, r)
		if buf.status == 0 {
			buf.status = http.StatusOK
		}
		if buf.status < 500 {
			stored := store.IdempotentReply{Key: scoped, Fingerprint: fp, Status: buf.status, Header: map[string]string{}, Body: buf.body.Bytes(), CreatedAt: m.now().UTC()}
			for _, k := range replayedHeaders {
				if v := buf.header.Get(k); v != "" {
					stored.Header[k] = v
				}
			}
			// A failure to store only loses the replay, not the write.
			_ = m.store.PutIdempotentReply(r.Context(), stored)
		}
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.WriteHeader(buf.status)
		_, _ = w.Write(buf.body.Bytes())
	})
}

// principalKey scopes idempotency keys and rate limits to the caller ("" for
// anonymous callers).
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

// bodyReadError maps a body read failure to a client-facing error.
func bodyReadError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return store.Errorf(store.CodeTooLarge, "request body exceeds %s bytes", strconv.FormatInt(mbe.Limit, 10))
	}
	return store.Errorf(store.CodeInvalid, "request body could not be read")
}
