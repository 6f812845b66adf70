package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tandemhq/tandem/internal/store"
)

// DeleteCollection deletes a collection and all its resources in one
// transaction. Each resource gets its own revision and a Deleted change (in
// ID order); the collection's removal itself takes one more, final revision
// without a change-log entry, so a collection with n resources advances the
// revision by n+1. Errors: store.ErrNotFound, store.ErrUnavailable.
func (s *Store) DeleteCollection(ctx context.Context, name string) error {
	return s.write(ctx, "delete collection", func(tx pgx.Tx) (bool, error) {
		if _, err := lockRevision(ctx, tx); err != nil {
			return false, err
		}
		var indexes *string
		var n int64
		if err := tx.QueryRow(ctx,
			`SELECT (SELECT indexes::text FROM collections WHERE name = $1), (SELECT count(*) FROM resources WHERE collection = $1)`,
			name).Scan(&indexes, &n); err != nil {
			return false, err
		}
		if indexes == nil {
			return false, store.CollectionNotFound(name)
		}
		if err := s.dropIndexes(ctx, tx, name); err != nil {
			return false, err
		}
		last, err := bumpRevision(ctx, tx, n+1)
		if err != nil {
			return false, err
		}
		if n > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO changes
				(revision, type, collection, id, data, labels, prev_labels, created_at, updated_at,
				prev_data, prev_revision, prev_updated_at)
				SELECT $1 + row_number() OVER (ORDER BY id) - 1, 'deleted', collection, id, data, labels, labels, created_at, updated_at,
				data, revision, updated_at
				FROM resources WHERE collection = $2`, last-n, name); err != nil {
				return false, err
			}
			if _, err := tx.Exec(ctx, `DELETE FROM resources WHERE collection = $1`, name); err != nil {
				return false, err
			}
		}
		_, err = tx.Exec(ctx, `DELETE FROM collections WHERE name = $1`, name)
		return true, err
	})
}

const resourceCols = `collection, id, data::text, labels::text, revision, created_at, updated_at`

func scanResource(row pgx.Row) (store.Resource, error) {
	var r store.Resource
	var data, labels string
	if err := row.Scan(&r.Collection, &r.ID, &data, &labels, &r.Revision, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return r, err
	}
	var err error
	if r.Labels, err = store.DecodeLabels(labels); err != nil {
		return r, err
	}
	r.Data = json.RawMessage(data)
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return r, nil
}

// queryRower is what pgxpool.Pool and pgx.Tx have in common for lookup.
type queryRower interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// GetResource returns one resource. Errors: store.ErrNotFound (collection
// or resource, the message says which), store.ErrUnavailable.
func (s *Store) GetResource(ctx context.Context, collection, id string) (store.Resource, error) {
	r, found, err := lookup(ctx, s.pool, collection, id)
	if err == nil && !found {
		err = store.ResourceNotFound(collection, id)
	}
	if err != nil {
		return store.Resource{}, wrapErr(ctx, "get resource", err)
	}
	return r, nil
}

// lookup reads a resource and checks its collection in one statement. It
// returns ErrNotFound when the collection is missing and found=false (and no
// error) when only the resource is.
func lookup(ctx context.Context, q queryRower, collection, id string) (r store.Resource, found bool, err error) {
	var rid, data, labels *string
	var rev *int64
	var created, updated *time.Time
	err = q.QueryRow(ctx, `SELECT r.id, r.data::text, r.labels::text, r.revision, r.created_at, r.updated_at
		FROM collections c LEFT JOIN resources r ON r.collection = c.name AND r.id = $2
		WHERE c.name = $1`, collection, id).Scan(&rid, &data, &labels, &rev, &created, &updated)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, false, store.CollectionNotFound(collection)
	}
	if err != nil || rid == nil {
		return r, false, err
	}
	r = store.Resource{Collection: collection, ID: *rid, Data: json.RawMessage(*data),
		Revision: *rev, CreatedAt: created.UTC(), UpdatedAt: updated.UTC()}
	if r.Labels, err = store.DecodeLabels(*labels); err != nil {
		return r, false, err
	}
	return r, true, nil
}

// appendChange appends the change of r (data and labels encoded) at rev;
// prev is the state it replaced (nil for a create) with its labels encoded
// as prevLabels, batch the batch it belongs to (nil for none).
func appendChange(ctx context.Context, tx pgx.Tx, rev int64, typ store.ChangeType, r store.Resource, data, labels string,
	prev *store.Resource, prevLabels *string, batch *store.BatchRef) error {
	var prevData, batchID *string
	var prevRev, batchLast *int64
	var prevUpdated *time.Time
	if prev != nil {
		d := string(prev.Data)
		prevData, prevRev, prevUpdated = &d, &prev.Revision, &prev.UpdatedAt
	}
	if batch != nil {
		batchID, batchLast = &batch.ID, &batch.LastRevision
	}
	_, err := tx.Exec(ctx, `INSERT INTO changes
		(revision, type, collection, id, data, labels, prev_labels, created_at, updated_at,
		prev_data, prev_revision, prev_updated_at, batch_id, batch_last, trace)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		rev, string(typ), r.Collection, r.ID, data, labels, prevLabels, r.CreatedAt, r.UpdatedAt,
		prevData, prevRev, prevUpdated, batchID, batchLast, store.TraceColumn(ctx))
	return err
}

// PutResource creates or replaces r's Data and Labels under cond and
// returns the stored state and whether it was created. The resource's
// Revision becomes the write's revision; CreatedAt is kept across replaces.
// Empty Data is stored as {}. Errors: store.ErrInvalid (empty or bad ID,
// data not a JSON object, bad labels), store.ErrNotFound (collection
// missing, or resource missing with IfMatch or MustExist),
// store.ErrPreconditionFailed (CreateOnly on an existing resource, IfMatch
// mismatch), store.ErrCollectionChanged (cond.CollectionRevision is not
// the collection's revision), store.ErrUnavailable.
func (s *Store) PutResource(ctx context.Context, r store.Resource, cond store.Precondition) (store.Resource, bool, error) {
	in, err := store.PreparePut(r)
	if err != nil {
		return store.Resource{}, false, err
	}
	var out store.Resource
	var created bool
	err = s.write(ctx, "put resource", func(tx pgx.Tx) (bool, error) {
		rev, err := bumpRevision(ctx, tx, 1) // rolled back if a check fails
		if err != nil {
			return false, err
		}
		out, created, err = putOne(ctx, tx, in, cond, rev, now(), nil)
		return err == nil, err
	})
	if err != nil {
		return store.Resource{}, false, err
	}
	return out, created, nil
}

// putOne stores in under cond at revision rev and time t in tx, appending
// its change (in batch, nil for none), and returns the stored state and
// whether it was created. Errors: as PutResource.
func putOne(ctx context.Context, tx pgx.Tx, in store.PutInput, cond store.Precondition, rev int64, t time.Time,
	batch *store.BatchRef) (store.Resource, bool, error) {
	cur, found, err := lookup(ctx, tx, in.Collection, in.ID)
	if err != nil {
		return store.Resource{}, false, err
	}
	if err := store.CheckPrecondition(cond, cur, found, in.Collection, in.ID); err != nil {
		return store.Resource{}, false, err
	}
	if err := checkCollectionRevision(ctx, tx, in.Collection, cond.CollectionRevision); err != nil {
		return store.Resource{}, false, err
	}
	p, err := store.PlanPut(in, cur, found, rev, t)
	if err != nil {
		return store.Resource{}, false, err
	}
	out := p.Resource
	if _, err := tx.Exec(ctx, `INSERT INTO resources (collection, id, data, labels, revision, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data, labels = excluded.labels,
		revision = excluded.revision, updated_at = excluded.updated_at`,
		out.Collection, out.ID, in.Data, in.Labels, rev, out.CreatedAt, out.UpdatedAt); err != nil {
		return store.Resource{}, false, err
	}
	return out, !found, appendChange(ctx, tx, rev, p.Type, out, in.Data, in.Labels, p.Prev, p.PrevLabels, batch)
}

// DeleteResource deletes a resource under cond and returns its last state
// with Revision set to the deletion's revision; the Deleted change carries
// the same state and the resource's labels as PrevLabels. Errors:
// store.ErrNotFound (collection or resource), store.ErrPreconditionFailed
// (IfMatch mismatch; CreateOnly, since the resource exists),
// store.ErrCollectionChanged, store.ErrUnavailable.
func (s *Store) DeleteResource(ctx context.Context, collection, id string, cond store.Precondition) (store.Resource, error) {
	var out store.Resource
	err := s.write(ctx, "delete resource", func(tx pgx.Tx) (bool, error) {
		rev, err := bumpRevision(ctx, tx, 1) // rolled back if a check fails
		if err != nil {
			return false, err
		}
		out, err = deleteOne(ctx, tx, collection, id, cond, rev, nil)
		return err == nil, err
	})
	if err != nil {
		return store.Resource{}, err
	}
	return out, nil
}

// deleteOne deletes collection/id under cond at revision rev in tx,
// appending its change (in batch, nil for none), and returns the last
// state with the deletion's revision. Errors: as DeleteResource.
func deleteOne(ctx context.Context, tx pgx.Tx, collection, id string, cond store.Precondition, rev int64,
	batch *store.BatchRef) (store.Resource, error) {
	cur, found, err := lookup(ctx, tx, collection, id)
	if err != nil {
		return store.Resource{}, err
	}
	if !found {
		return store.Resource{}, store.ResourceNotFound(collection, id)
	}
	if err := store.CheckPrecondition(cond, cur, found, collection, id); err != nil {
		return store.Resource{}, err
	}
	if err := checkCollectionRevision(ctx, tx, collection, cond.CollectionRevision); err != nil {
		return store.Resource{}, err
	}
	out := cur
	out.Revision = rev
	if _, err := tx.Exec(ctx, `DELETE FROM resources WHERE collection = $1 AND id = $2`, collection, id); err != nil {
		return store.Resource{}, err
	}
	labels, err := store.EncodeLabels(cur.Labels)
	if err != nil {
		return store.Resource{}, err
	}
	return out, appendChange(ctx, tx, rev, store.Deleted, out, string(cur.Data), labels, &cur, &labels, batch)
}

// ListResources returns a page of resources in opts.OrderBy's order (by ID,
// byte order, when none), starting after opts.After/AfterValues, with at
// most opts.Limit (0 means 100) items that match opts.Selector and
// opts.Filter; pages are filled even when they skip rows, within the scan
// budget opts.MaxScan. The query reads the declared index that serves it
// best (store.PlanList; the planner is told not to scan the table instead).
// Page.Revision is the revision of the snapshot the page was read from.
// Errors: store.ErrNotFound (collection missing), CodeNeedsIndex (budget
// exceeded), CodeInvalid (a bad order field or page position),
// store.ErrUnavailable.
func (s *Store) ListResources(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultPageSize
	}
	var page store.Page
	err := s.read(ctx, "list resources", func(tx pgx.Tx) error {
		var rev int64
		var indexes *string
		if err := tx.QueryRow(ctx,
			`SELECT revision, (SELECT indexes::text FROM collections WHERE name = $1) FROM meta WHERE id = 1`,
			opts.Collection).Scan(&rev, &indexes); err != nil {
			return err
		}
		if indexes == nil {
			return store.CollectionNotFound(opts.Collection)
		}
		ixs, err := store.DecodeIndexes(*indexes)
		if err != nil {
			return err
		}
		q, err := store.PlanList(dialect{}, store.Collection{Name: opts.Collection, Indexes: ixs}, opts)
		if err != nil {
			return err
		}
		if q.Index != "" {
			if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
				return err
			}
		}
		page, err = store.RunList(q, opts, limit, listSource{ctx, tx})
		page.Revision = rev
		return err
	})
	if err != nil {
		return store.Page{}, err
	}
	return page, nil
}

// Revision returns the latest committed revision (0 for a new store).
// Errors: store.ErrUnavailable.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	var rev int64
	err := s.pool.QueryRow(ctx, `SELECT revision FROM meta WHERE id = 1`).Scan(&rev)
	return rev, wrapErr(ctx, "revision", err)
}

// Changes returns up to limit (<= 0 means 1000) changes with revision >
// after, in revision order. Revisions that changed no resource (collection
// creation and removal) have no entry, so the revisions returned may skip
// numbers; an update of a collection (UpdateCollection) has one, of type
// store.CollectionUpdated with the new definition in Change.Collection. Errors: store.ErrCompacted when after is below the compaction
// point (entries after it were removed), store.ErrUnavailable.
func (s *Store) Changes(ctx context.Context, after int64, limit int) ([]store.Change, error) {
	if limit <= 0 {
		limit = defaultChangesLimit
	}
	out := []store.Change{}
	err := s.read(ctx, "changes", func(tx pgx.Tx) error {
		var compacted int64
		if err := tx.QueryRow(ctx, `SELECT compacted_through FROM meta WHERE id = 1`).Scan(&compacted); err != nil {
			return err
		}
		if after < compacted {
			return store.Errorf(store.CodeCompacted,
				"the change log no longer holds revision %d (compacted through %d)", after+1, compacted)
		}
		rows, err := tx.Query(ctx, `SELECT revision, type, collection, id, data::text, labels::text, prev_labels::text, created_at, updated_at,
			prev_data::text, prev_revision, prev_updated_at, batch_id, batch_last, trace
			FROM changes WHERE revision > $1 ORDER BY revision LIMIT $2`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.Change
			var typ, data, labels string
			var prev, prevData, batchID, trace *string
			var prevRev, batchLast *int64
			var prevUpdated *time.Time
			if err := rows.Scan(&c.Revision, &typ, &c.Resource.Collection, &c.Resource.ID, &data, &labels, &prev,
				&c.Resource.CreatedAt, &c.Resource.UpdatedAt, &prevData, &prevRev, &prevUpdated, &batchID, &batchLast, &trace); err != nil {
				return err
			}
			if trace != nil {
				c.Trace = *trace
			}
			if prevData != nil && prevRev != nil && prevUpdated != nil {
				c.Prev = &store.Resource{Collection: c.Resource.Collection, ID: c.Resource.ID, Data: json.RawMessage(*prevData),
					Revision: *prevRev, CreatedAt: c.Resource.CreatedAt.UTC(), UpdatedAt: prevUpdated.UTC()}
			}
			if batchID != nil && batchLast != nil {
				c.Batch = &store.BatchRef{ID: *batchID, LastRevision: *batchLast}
			}
			c.Type = store.ChangeType(typ)
			if c.Type == store.CollectionUpdated {
				coll, err := store.DecodeCollectionChange(data)
				if err != nil {
					return err
				}
				c = store.CollectionChange(coll)
				if trace != nil {
					c.Trace = *trace
				}
				out = append(out, c)
				continue
			}
			c.Resource.Data = json.RawMessage(data)
			c.Resource.Revision = c.Revision
			c.Resource.CreatedAt, c.Resource.UpdatedAt = c.Resource.CreatedAt.UTC(), c.Resource.UpdatedAt.UTC()
			if c.Resource.Labels, err = store.DecodeLabels(labels); err != nil {
				return err
			}
			if prev != nil {
				if c.PrevLabels, err = store.DecodeLabels(*prev); err != nil {
					return err
				}
				if c.Prev != nil {
					c.Prev.Labels = c.PrevLabels
				}
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Compact removes the changes with revision <= through, but always keeps the
// newest change-log entry; it records the point compacted through, below
// which Changes answers store.ErrCompacted. Compacting to a point at or below
// an earlier one does nothing. Errors: store.ErrUnavailable.
func (s *Store) Compact(ctx context.Context, through int64) error {
	return s.write(ctx, "compact", func(tx pgx.Tx) (bool, error) {
		var newest, compacted int64
		// FOR UPDATE OF meta: one compaction at a time, and none racing a writer.
		if err := tx.QueryRow(ctx,
			`SELECT (SELECT coalesce(max(revision), 0) FROM changes), compacted_through FROM meta WHERE id = 1 FOR UPDATE`).
			Scan(&newest, &compacted); err != nil {
			return false, err
		}
		through = min(through, newest-1)
		if through <= compacted {
			return false, nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM changes WHERE revision <= $1`, through); err != nil {
			return false, err
		}
		_, err := tx.Exec(ctx, `UPDATE meta SET compacted_through = $1 WHERE id = 1`, through)
		return false, err
	})
}

// GetIdempotentReply returns the reply stored for key. Errors:
// store.ErrNotFound, store.ErrUnavailable.
func (s *Store) GetIdempotentReply(ctx context.Context, key string) (store.IdempotentReply, error) {
	r := store.IdempotentReply{Key: key}
	var header string
	err := s.pool.QueryRow(ctx, `SELECT fingerprint, status, header::text, body, created_at FROM idempotent_replies WHERE key = $1`, key).
		Scan(&r.Fingerprint, &r.Status, &header, &r.Body, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.IdempotentReply{}, store.Errorf(store.CodeNotFound, "no stored reply for this idempotency key")
	}
	if err != nil {
		return store.IdempotentReply{}, wrapErr(ctx, "get idempotent reply", err)
	}
	if err := json.Unmarshal([]byte(header), &r.Header); err != nil {
		return store.IdempotentReply{}, wrapErr(ctx, "get idempotent reply", err)
	}
	if r.Body == nil {
		r.Body = []byte{}
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

// PutIdempotentReply stores r; a zero CreatedAt means now. Errors:
// store.ErrInvalid (empty key), store.ErrConflict (a reply is already stored
// for the key; it is left unchanged), store.ErrUnavailable.
func (s *Store) PutIdempotentReply(ctx context.Context, r store.IdempotentReply) error {
	if r.Key == "" {
		return store.Errorf(store.CodeInvalid, "idempotency key is required")
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now()
	}
	if r.Header == nil {
		r.Header = map[string]string{}
	}
	header, err := json.Marshal(r.Header)
	if err != nil {
		return wrapErr(ctx, "put idempotent reply", err)
	}
	if r.Body == nil {
		r.Body = []byte{}
	}
	tag, err := s.pool.Exec(ctx, `INSERT INTO idempotent_replies (key, fingerprint, status, header, body, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (key) DO NOTHING`,
		r.Key, r.Fingerprint, r.Status, string(header), r.Body, r.CreatedAt.UTC().Truncate(time.Microsecond))
	if err != nil {
		return wrapErr(ctx, "put idempotent reply", err)
	}
	if tag.RowsAffected() == 0 {
		return store.Errorf(store.CodeConflict, "a reply is already stored for this idempotency key")
	}
	return nil
}

// ExpireIdempotentReplies deletes the replies created before t. Errors:
// store.ErrUnavailable.
func (s *Store) ExpireIdempotentReplies(ctx context.Context, before time.Time) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM idempotent_replies WHERE created_at < $1`, before)
	return wrapErr(ctx, "expire idempotent replies", err)
}
