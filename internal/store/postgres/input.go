package postgres

import (
	"context"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Input validation and encoding are shared with the other backends in
// package store (store.CheckResourceID, store.NormalizeData, …).

const defaultPageSize = 100

// defaultChangesLimit is the page size of Changes when limit <= 0.
const defaultChangesLimit = 1000

// now returns the current time in UTC at the stored precision (microseconds).
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// wrapErr leaves domain errors alone, reports context errors as such and
// makes everything else match store.ErrUnavailable (see store.WrapDBError).
func wrapErr(ctx context.Context, op string, err error) error {
	return store.WrapDBError(ctx, "postgres", op, err)
}
