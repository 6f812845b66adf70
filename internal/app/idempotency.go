package app

import (
	"context"
	"errors"
	"hash/fnv"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/store"
)

// Reply is a stored reply to an idempotent request: replayed as it was
// for a repeat of the same request.
type Reply struct {
	Status int
	Header map[string]string
	Body   []byte
}

// Idempotent runs do at most once per (principal, key): the first request
// with key runs do and its reply is stored, unless its status is 5xx (the
// client may retry those); a repeat with the same fingerprint (a hash of
// the request) gets the stored reply and replayed == true, without running
// do. Requests of one key run one at a time. A reply that cannot be stored
// is still returned (only its replay is lost). Errors: store.ErrConflict
// when key was used for a request with another fingerprint, the store's
// when the stored reply cannot be read.
func (a *App) Idempotent(ctx context.Context, p auth.Principal, key, fingerprint string, do func() Reply) (r Reply, replayed bool, err error) {
	scoped := p.Scope() + "\x00" + key
	h := fnv.New32a()
	h.Write([]byte(scoped))
	mu := &a.idem[h.Sum32()%uint32(len(a.idem))]
	mu.Lock()
	defer mu.Unlock()

	rec, err := a.store.GetIdempotentReply(ctx, scoped)
	switch {
	case err == nil && rec.Fingerprint != fingerprint:
		return Reply{}, false, store.Errorf(store.CodeConflict, "Idempotency-Key %q was already used for a different request", key)
	case err == nil:
		return Reply{Status: rec.Status, Header: rec.Header, Body: rec.Body}, true, nil
	case !errors.Is(err, store.ErrNotFound):
		return Reply{}, false, err
	}
	r = do()
	if r.Status < 500 {
		stored := store.IdempotentReply{Key: scoped, Fingerprint: fingerprint, Status: r.Status, Header: r.Header, Body: r.Body, CreatedAt: a.now().UTC()}
		if stored.Header == nil {
			stored.Header = map[string]string{}
		}
		_ = a.store.PutIdempotentReply(ctx, stored) // a failure only loses the replay
	}
	return r, false, nil
}
