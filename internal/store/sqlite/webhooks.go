package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// Webhook writes go through the single writer like every write, but they
// are not resource changes: they report changed=false, so they take no
// revision, append nothing to the change log and do not wake Notify.
// Lease expiry is reckoned by this process's clock (now).

// webhookCols are the webhooks table's columns, in scanWebhook's and
// webhookArgs' order.
const webhookCols = `id, topic, labels, url, secret, prev_secret, prev_secret_until, description, enabled, max_batch,
	generation, created_at, updated_at, state, cursor, last_error, last_success_at, failing_since, attempts,
	resync_notified, lease_owner, lease_until, filter`

// insertWebhookSQL stores a new webhook.
var insertWebhookSQL = `INSERT INTO webhooks (` + webhookCols + `) VALUES (?` + strings.Repeat(", ?", 22) + `)`

// microsOrNull encodes t for a nullable time column: NULL for the zero time.
func microsOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return toMicros(t)
}

// fromNullMicros decodes a nullable time column: NULL is the zero time.
func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// webhookArgs are w's values in webhookCols' order.
func webhookArgs(w store.Webhook) []any {
	return []any{w.ID, w.Topic, w.Labels, w.URL, w.Secret, w.PrevSecret, microsOrNull(w.PrevSecretUntil),
		w.Description, w.Enabled, w.MaxBatch, w.Generation, microsOrNull(w.CreatedAt), microsOrNull(w.UpdatedAt),
		string(w.State), w.Cursor, w.LastError, microsOrNull(w.LastSuccessAt), microsOrNull(w.FailingSince),
		w.Attempts, w.ResyncNotified, w.LeaseOwner, microsOrNull(w.LeaseUntil), w.Filter}
}

func scanWebhook(row interface{ Scan(...any) error }) (store.Webhook, error) {
	var w store.Webhook
	var state string
	var prevUntil, created, updated, lastOK, failing, leaseUntil sql.NullInt64
	if err := row.Scan(&w.ID, &w.Topic, &w.Labels, &w.URL, &w.Secret, &w.PrevSecret, &prevUntil,
		&w.Description, &w.Enabled, &w.MaxBatch, &w.Generation, &created, &updated,
		&state, &w.Cursor, &w.LastError, &lastOK, &failing, &w.Attempts,
		&w.ResyncNotified, &w.LeaseOwner, &leaseUntil, &w.Filter); err != nil {
		return store.Webhook{}, err
	}
	w.State = store.WebhookState(state)
	w.PrevSecretUntil, w.CreatedAt, w.UpdatedAt = fromNullMicros(prevUntil), fromNullMicros(created), fromNullMicros(updated)
	w.LastSuccessAt, w.FailingSince = fromNullMicros(lastOK), fromNullMicros(failing)
	w.LeaseUntil = fromNullMicros(leaseUntil)
	return w, nil
}

// getWebhook reads one webhook in tx. Errors: store.ErrNotFound.
func getWebhook(ctx context.Context, tx *sql.Tx, id string) (store.Webhook, error) {
	w, err := scanWebhook(tx.QueryRowContext(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Webhook{}, store.WebhookNotFound(id)
	}
	return w, err
}

// missingOr returns store.ErrNotFound when webhook id does not exist in
// tx, else err: the reason a conditional write matched no row.
func missingOr(ctx context.Context, tx *sql.Tx, id string, err error) error {
	var n int
	if qerr := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE id = ?`, id).Scan(&n); qerr != nil {
		return qerr
	}
	if n == 0 {
		return store.WebhookNotFound(id)
	}
	return err
}

// CreateWebhook stores w with Generation 1 and returns it as stored (times
// in UTC at microsecond precision; CreatedAt and UpdatedAt as given, the
// zero time kept). A new webhook has no lease: w's lease fields are
// ignored. When max > 0 and max webhooks exist it refuses. Errors:
// store.ErrInvalid (empty ID), store.ErrConflict (the ID exists, or the
// limit is reached), store.ErrUnavailable.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook, max int) (store.Webhook, error) {
	if err := store.CheckWebhookID(w.ID); err != nil {
		return store.Webhook{}, err
	}
	w = store.NewWebhookRow(w)
	err := s.write(ctx, "create webhook", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		var exists, n int
		if err := tx.QueryRowContext(ctx,
			`SELECT (SELECT count(*) FROM webhooks WHERE id = ?), (SELECT count(*) FROM webhooks)`, w.ID).
			Scan(&exists, &n); err != nil {
			return false, err
		}
		if exists > 0 {
			return false, store.WebhookExists(w.ID)
		}
		if max > 0 && n >= max {
			return false, store.WebhookLimitReached(max)
		}
		_, err := tx.ExecContext(ctx, insertWebhookSQL, webhookArgs(w)...)
		return false, err
	})
	if err != nil {
		return store.Webhook{}, err
	}
	return w, nil
}

// GetWebhook returns one webhook. Errors: store.ErrNotFound,
// store.ErrUnavailable.
func (s *Store) GetWebhook(ctx context.Context, id string) (store.Webhook, error) {
	var w store.Webhook
	err := s.read(ctx, "get webhook", func(tx *sql.Tx) error {
		var err error
		w, err = getWebhook(ctx, tx, id)
		return err
	})
	if err != nil {
		return store.Webhook{}, err
	}
	return w, nil
}

// ListWebhooks returns every webhook ordered by ID (byte order). Errors:
// store.ErrUnavailable.
func (s *Store) ListWebhooks(ctx context.Context) ([]store.Webhook, error) {
	out := []store.Webhook{}
	err := s.read(ctx, "list webhooks", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+webhookCols+` FROM webhooks ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			w, err := scanWebhook(rows)
			if err != nil {
				return err
			}
			out = append(out, w)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// fnPanic carries a panic of UpdateWebhook's fn from the writer goroutine
// to the caller's, where it is raised again: unrecovered on the writer, it
// would end the process even when the caller recovers panics.
type fnPanic struct{ v any }

// planUpdate is store.PlanWebhookUpdate with fn's panic recovered into p.
func planUpdate(cur store.Webhook, fn func(*store.Webhook) error) (w store.Webhook, p *fnPanic, err error) {
	defer func() {
		if v := recover(); v != nil {
			p, err = &fnPanic{v}, errors.New("webhook update function panicked")
		}
	}()
	w, err = store.PlanWebhookUpdate(cur, fn)
	return w, nil, err
}

// UpdateWebhook reads the webhook, calls fn with it and stores fn's result
// with Generation incremented, in one transaction; ID, Generation,
// CreatedAt and the lease cannot be changed by fn. fn runs on the store's
// writer while it holds the transaction: it must be quick and must not use
// the store. A panic in fn is raised again in the caller's goroutine, and
// nothing is written. Errors: store.ErrNotFound (fn is not called), fn's
// error (nothing is written), store.ErrUnavailable.
func (s *Store) UpdateWebhook(ctx context.Context, id string, fn func(*store.Webhook) error) (store.Webhook, error) {
	var out store.Webhook
	var fnErr error
	var p *fnPanic
	err := s.write(ctx, "update webhook", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		cur, err := getWebhook(ctx, tx, id)
		if err != nil {
			return false, err
		}
		var w store.Webhook
		if w, p, fnErr = planUpdate(cur, fn); fnErr != nil {
			return false, fnErr
		}
		out, err = scanWebhook(tx.QueryRowContext(ctx, `UPDATE webhooks SET topic = ?2, labels = ?3, url = ?4,
			secret = ?5, prev_secret = ?6, prev_secret_until = ?7, description = ?8, enabled = ?9, max_batch = ?10,
			generation = generation + 1, updated_at = ?11, state = ?12, cursor = ?13, last_error = ?14,
			last_success_at = ?15, failing_since = ?16, attempts = ?17, resync_notified = ?18, filter = ?19
			WHERE id = ?1 RETURNING `+webhookCols,
			id, w.Topic, w.Labels, w.URL, w.Secret, w.PrevSecret, microsOrNull(w.PrevSecretUntil), w.Description,
			w.Enabled, w.MaxBatch, microsOrNull(w.UpdatedAt), string(w.State), w.Cursor, w.LastError,
			microsOrNull(w.LastSuccessAt), microsOrNull(w.FailingSince), w.Attempts, w.ResyncNotified, w.Filter))
		return false, err
	})
	if p != nil {
		panic(p.v)
	}
	if fnErr != nil {
		return store.Webhook{}, fnErr
	}
	if err != nil {
		return store.Webhook{}, err
	}
	return out, nil
}

// DeleteWebhook deletes a webhook and its lease. Errors:
// store.ErrNotFound, store.ErrUnavailable.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.write(ctx, "delete webhook", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = store.WebhookNotFound(id)
			}
			return false, err
		}
		return false, nil
	})
}

// AcquireWebhookLease gives owner the webhook's lease until ttl from now
// (by this process's clock) when no one else holds an unexpired one,
// renewing it when owner holds it, and returns the webhook as stored.
// Errors: store.ErrInvalid (empty owner, ttl <= 0), store.ErrConflict
// (another owner holds it), store.ErrNotFound, store.ErrUnavailable.
func (s *Store) AcquireWebhookLease(ctx context.Context, id, owner string, ttl time.Duration) (store.Webhook, error) {
	if err := store.CheckWebhookLease(owner, ttl); err != nil {
		return store.Webhook{}, err
	}
	var out store.Webhook
	err := s.write(ctx, "acquire webhook lease", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		t := now() // when the transaction runs, not when the write was queued
		w, err := scanWebhook(tx.QueryRowContext(ctx, `UPDATE webhooks SET lease_owner = ?2, lease_until = ?3
			WHERE id = ?1 AND (lease_owner = '' OR lease_owner = ?2 OR lease_until <= ?4) RETURNING `+webhookCols,
			id, owner, toMicros(t.Add(ttl)), toMicros(t)))
		if errors.Is(err, sql.ErrNoRows) {
			return false, missingOr(ctx, tx, id, store.WebhookLeased(id))
		}
		out = w
		return false, err
	})
	if err != nil {
		return store.Webhook{}, err
	}
	return out, nil
}

// ReleaseWebhookLease ends owner's lease, expired or not; it does nothing
// when owner does not hold it. Errors: store.ErrNotFound,
// store.ErrUnavailable.
func (s *Store) ReleaseWebhookLease(ctx context.Context, id, owner string) error {
	return s.write(ctx, "release webhook lease", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx,
			`UPDATE webhooks SET lease_owner = '', lease_until = NULL WHERE id = ? AND lease_owner = ?`, id, owner)
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = missingOr(ctx, tx, id, nil)
			}
			return false, err
		}
		return false, nil
	})
}

// RecordWebhookStatus stores st (every field; times in UTC at microsecond
// precision) when owner holds an unexpired lease (by this process's clock)
// and the webhook is still at generation, and returns the webhook as
// stored. Errors: store.ErrConflict (the lease was lost or the
// configuration changed), store.ErrNotFound, store.ErrUnavailable.
func (s *Store) RecordWebhookStatus(ctx context.Context, id, owner string, generation int64, st store.WebhookStatus) (store.Webhook, error) {
	st = store.NormalizeWebhookStatus(st)
	var out store.Webhook
	err := s.write(ctx, "record webhook status", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		w, err := scanWebhook(tx.QueryRowContext(ctx, `UPDATE webhooks SET state = ?5, cursor = ?6, last_error = ?7,
			last_success_at = ?8, failing_since = ?9, attempts = ?10, resync_notified = ?11
			WHERE id = ?1 AND lease_owner = ?2 AND lease_until > ?3 AND generation = ?4 RETURNING `+webhookCols,
			id, owner, toMicros(now()), generation, string(st.State), st.Cursor, st.LastError,
			microsOrNull(st.LastSuccessAt), microsOrNull(st.FailingSince), st.Attempts, st.ResyncNotified))
		if errors.Is(err, sql.ErrNoRows) {
			return false, missingOr(ctx, tx, id, store.WebhookLeaseLost(id))
		}
		out = w
		return false, err
	})
	if err != nil {
		return store.Webhook{}, err
	}
	return out, nil
}
