package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/store"
)

// Webhook writes are transactions of their own that report changed=false:
// they do not take the meta row lock (they are not resource changes and
// take no revision), append nothing to the change log and send no NOTIFY.
// Leases are reckoned by the database's clock (now(), the transaction's
// start), so that nodes with skewed clocks agree on them.

// webhookLimitLock is the pg_advisory_xact_lock key that serialises
// CreateWebhook calls with a limit, so that concurrent creates cannot
// exceed it.
const webhookLimitLock = 0x74616e64656d77 // "tandemw"

// webhookCols are the webhooks table's columns, in scanWebhook's and
// webhookArgs' order.
const webhookCols = `id, topic, labels, url, secret, prev_secret, prev_secret_until, description, enabled, max_batch,
	generation, created_at, updated_at, state, cursor, last_error, last_success_at, failing_since, attempts,
	resync_notified, lease_owner, lease_until, filter`

// insertWebhookSQL stores a new webhook unless its ID exists.
var insertWebhookSQL = `INSERT INTO webhooks (` + webhookCols + `) VALUES (` + params(23) + `)
	ON CONFLICT (id) DO NOTHING`

// params returns "$1, $2, …, $n".
func params(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = fmt.Sprint("$", i+1)
	}
	return strings.Join(ps, ", ")
}

// timeOrNull encodes t for a nullable timestamptz column: NULL for the
// zero time.
func timeOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromNullTime decodes a nullable timestamptz column: NULL is the zero time.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// webhookArgs are w's values in webhookCols' order.
func webhookArgs(w store.Webhook) []any {
	return []any{w.ID, w.Topic, w.Labels, w.URL, w.Secret, w.PrevSecret, timeOrNull(w.PrevSecretUntil),
		w.Description, w.Enabled, w.MaxBatch, w.Generation, timeOrNull(w.CreatedAt), timeOrNull(w.UpdatedAt),
		string(w.State), w.Cursor, w.LastError, timeOrNull(w.LastSuccessAt), timeOrNull(w.FailingSince),
		w.Attempts, w.ResyncNotified, w.LeaseOwner, timeOrNull(w.LeaseUntil), w.Filter}
}

func scanWebhook(row pgx.Row) (store.Webhook, error) {
	var w store.Webhook
	var state string
	var prevUntil, created, updated, lastOK, failing, leaseUntil *time.Time
	if err := row.Scan(&w.ID, &w.Topic, &w.Labels, &w.URL, &w.Secret, &w.PrevSecret, &prevUntil,
		&w.Description, &w.Enabled, &w.MaxBatch, &w.Generation, &created, &updated,
		&state, &w.Cursor, &w.LastError, &lastOK, &failing, &w.Attempts,
		&w.ResyncNotified, &w.LeaseOwner, &leaseUntil, &w.Filter); err != nil {
		return store.Webhook{}, err
	}
	w.State = store.WebhookState(state)
	w.PrevSecretUntil, w.CreatedAt, w.UpdatedAt = fromNullTime(prevUntil), fromNullTime(created), fromNullTime(updated)
	w.LastSuccessAt, w.FailingSince = fromNullTime(lastOK), fromNullTime(failing)
	w.LeaseUntil = fromNullTime(leaseUntil)
	return w, nil
}

// missingOr returns store.ErrNotFound when webhook id does not exist in
// tx, else err: the reason a conditional write matched no row.
func missingOr(ctx context.Context, tx pgx.Tx, id string, err error) error {
	var exists bool
	if qerr := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1)`, id).Scan(&exists); qerr != nil {
		return qerr
	}
	if !exists {
		return store.WebhookNotFound(id)
	}
	return err
}

// CreateWebhook stores w with Generation 1 and returns it as stored (times
// in UTC at microsecond precision; CreatedAt and UpdatedAt as given, the
// zero time kept). A new webhook has no lease: w's lease fields are
// ignored. When max > 0 and max webhooks exist it refuses; creates with a
// limit are serialised by an advisory lock, so concurrent ones cannot
// exceed it. Errors: store.ErrInvalid (empty ID), store.ErrConflict (the
// ID exists, or the limit is reached), store.ErrUnavailable.
func (s *Store) CreateWebhook(ctx context.Context, w store.Webhook, max int) (store.Webhook, error) {
	if err := store.CheckWebhookID(w.ID); err != nil {
		return store.Webhook{}, err
	}
	w = store.NewWebhookRow(w)
	err := s.write(ctx, "create webhook", func(tx pgx.Tx) (bool, error) {
		if max > 0 {
			// Read committed: the count below sees every create that
			// held the lock before.
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(webhookLimitLock)); err != nil {
				return false, err
			}
			var exists bool
			var n int
			if err := tx.QueryRow(ctx,
				`SELECT EXISTS (SELECT 1 FROM webhooks WHERE id = $1), (SELECT count(*) FROM webhooks)`, w.ID).
				Scan(&exists, &n); err != nil {
				return false, err
			}
			if exists {
				return false, store.WebhookExists(w.ID)
			}
			if n >= max {
				return false, store.WebhookLimitReached(max)
			}
		}
		tag, err := tx.Exec(ctx, insertWebhookSQL, webhookArgs(w)...)
		if err != nil {
			return false, err
		}
		if tag.RowsAffected() == 0 {
			return false, store.WebhookExists(w.ID)
		}
		return false, nil
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
	err := s.read(ctx, "get webhook", func(tx pgx.Tx) error {
		var err error
		w, err = scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = $1`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.WebhookNotFound(id)
		}
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
	err := s.read(ctx, "list webhooks", func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+webhookCols+` FROM webhooks ORDER BY id`)
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

// UpdateWebhook reads the webhook FOR UPDATE, calls fn with it and stores
// fn's result with Generation incremented, in one transaction; ID,
// Generation, CreatedAt and the lease cannot be changed by fn. fn runs
// while the webhook's row is locked: it must be quick and must not use
// the store for the same webhook. Errors: store.ErrNotFound (fn is not
// called), fn's error (nothing is written), store.ErrUnavailable.
func (s *Store) UpdateWebhook(ctx context.Context, id string, fn func(*store.Webhook) error) (store.Webhook, error) {
	var out store.Webhook
	var fnErr error
	err := s.write(ctx, "update webhook", func(tx pgx.Tx) (bool, error) {
		cur, err := scanWebhook(tx.QueryRow(ctx, `SELECT `+webhookCols+` FROM webhooks WHERE id = $1 FOR UPDATE`, id))
		if errors.Is(err, pgx.ErrNoRows) {
			return false, store.WebhookNotFound(id)
		}
		if err != nil {
			return false, err
		}
		var w store.Webhook
		if w, fnErr = store.PlanWebhookUpdate(cur, fn); fnErr != nil {
			return false, fnErr
		}
		out, err = scanWebhook(tx.QueryRow(ctx, `UPDATE webhooks SET topic = $2, labels = $3, url = $4,
			secret = $5, prev_secret = $6, prev_secret_until = $7, description = $8, enabled = $9, max_batch = $10,
			generation = generation + 1, updated_at = $11, state = $12, cursor = $13, last_error = $14,
			last_success_at = $15, failing_since = $16, attempts = $17, resync_notified = $18, filter = $19
			WHERE id = $1 RETURNING `+webhookCols,
			id, w.Topic, w.Labels, w.URL, w.Secret, w.PrevSecret, timeOrNull(w.PrevSecretUntil), w.Description,
			w.Enabled, w.MaxBatch, timeOrNull(w.UpdatedAt), string(w.State), w.Cursor, w.LastError,
			timeOrNull(w.LastSuccessAt), timeOrNull(w.FailingSince), w.Attempts, w.ResyncNotified, w.Filter))
		return false, err
	})
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
	return s.write(ctx, "delete webhook", func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.WebhookNotFound(id)
		}
		return false, err
	})
}

// AcquireWebhookLease gives owner the webhook's lease until ttl from now
// (by the database's clock) when no one else holds an unexpired one,
// renewing it when owner holds it, and returns the webhook as stored.
// Errors: store.ErrInvalid (empty owner, ttl <= 0), store.ErrConflict
// (another owner holds it), store.ErrNotFound, store.ErrUnavailable.
func (s *Store) AcquireWebhookLease(ctx context.Context, id, owner string, ttl time.Duration) (store.Webhook, error) {
	if err := store.CheckWebhookLease(owner, ttl); err != nil {
		return store.Webhook{}, err
	}
	var out store.Webhook
	err := s.write(ctx, "acquire webhook lease", func(tx pgx.Tx) (bool, error) {
		w, err := scanWebhook(tx.QueryRow(ctx, `UPDATE webhooks
			SET lease_owner = $2, lease_until = now() + $3::bigint * interval '1 microsecond'
			WHERE id = $1 AND (lease_owner = '' OR lease_owner = $2 OR lease_until <= now())
			RETURNING `+webhookCols, id, owner, ttl.Microseconds()))
		if errors.Is(err, pgx.ErrNoRows) {
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
	return s.write(ctx, "release webhook lease", func(tx pgx.Tx) (bool, error) {
		tag, err := tx.Exec(ctx,
			`UPDATE webhooks SET lease_owner = '', lease_until = NULL WHERE id = $1 AND lease_owner = $2`, id, owner)
		if err == nil && tag.RowsAffected() == 0 {
			err = missingOr(ctx, tx, id, nil)
		}
		return false, err
	})
}

// RecordWebhookStatus stores st (every field; times in UTC at microsecond
// precision) when owner holds an unexpired lease (by the database's clock)
// and the webhook is still at generation, and returns the webhook as
// stored. Errors: store.ErrConflict (the lease was lost or the
// configuration changed), store.ErrNotFound, store.ErrUnavailable.
func (s *Store) RecordWebhookStatus(ctx context.Context, id, owner string, generation int64, st store.WebhookStatus) (store.Webhook, error) {
	st = store.NormalizeWebhookStatus(st)
	var out store.Webhook
	err := s.write(ctx, "record webhook status", func(tx pgx.Tx) (bool, error) {
		w, err := scanWebhook(tx.QueryRow(ctx, `UPDATE webhooks SET state = $4, cursor = $5, last_error = $6,
			last_success_at = $7, failing_since = $8, attempts = $9, resync_notified = $10
			WHERE id = $1 AND lease_owner = $2 AND lease_until > now() AND generation = $3
			RETURNING `+webhookCols,
			id, owner, generation, string(st.State), st.Cursor, st.LastError,
			timeOrNull(st.LastSuccessAt), timeOrNull(st.FailingSince), st.Attempts, st.ResyncNotified))
		if errors.Is(err, pgx.ErrNoRows) {
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
