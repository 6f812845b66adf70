package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/tandemhq/tandem/internal/store"
)

// DeleteCollection deletes a collection and all its resources in one
// transaction. Each resource gets its own revision and a Deleted change (in
// ID order); the collection's removal itself takes one more, final revision
// without a change-log entry, so a collection with n resources advances the
// revision by n+1. Errors: store.ErrNotFound, store.ErrUnavailable.
func (s *Store) DeleteCollection(ctx context.Context, name string) error {
	return s.write(ctx, "delete collection", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		var indexes sql.NullString
		var n int64
		if err := tx.QueryRowContext(ctx,
			`SELECT (SELECT indexes FROM collections WHERE name = ?1), (SELECT count(*) FROM resources WHERE collection = ?1)`,
			name).Scan(&indexes, &n); err != nil {
			return false, err
		}
		if !indexes.Valid {
			return false, store.CollectionNotFound(name)
		}
		if err := s.dropIndexes(ctx, tx, name); err != nil {
			return false, err
		}
		last, err := s.bumpRevision(ctx, tx, n+1)
		if err != nil {
			return false, err
		}
		first := last - n
		if n > 0 {
			if _, err := tx.ExecContext(ctx, `INSERT INTO changes
				(revision, type, collection, id, data, labels, prev_labels, created_at, updated_at,
				prev_data, prev_revision, prev_updated_at)
				SELECT ?1 + row_number() OVER (ORDER BY id) - 1, 'deleted', collection, id, data, labels, labels, created_at, updated_at,
				data, revision, updated_at
				FROM resources WHERE collection = ?2 ORDER BY id`, first, name); err != nil {
				return false, err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM resources WHERE collection = ?`, name); err != nil {
				return false, err
			}
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM collections WHERE name = ?`, name)
		return true, err
	})
}

const resourceCols = `collection, id, data, labels, revision, created_at, updated_at`

// upsertSQL creates or replaces a resource, keeping created_at.
const upsertSQL = `INSERT INTO resources (` + resourceCols + `) VALUES (?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (collection, id) DO UPDATE SET data = excluded.data, labels = excluded.labels,
	revision = excluded.revision, updated_at = excluded.updated_at`

// deleteSQL removes one resource.
const deleteSQL = `DELETE FROM resources WHERE collection = ? AND id = ?`

func scanResource(row interface{ Scan(...any) error }) (store.Resource, error) {
	var r store.Resource
	var data, labels string
	var created, updated int64
	if err := row.Scan(&r.Collection, &r.ID, &data, &labels, &r.Revision, &created, &updated); err != nil {
		return r, err
	}
	var err error
	if r.Labels, err = store.DecodeLabels(labels); err != nil {
		return r, err
	}
	r.Data = json.RawMessage(data)
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	return r, nil
}

// GetResource returns one resource. Errors: store.ErrNotFound (collection
// or resource, the message says which), store.ErrUnavailable.
func (s *Store) GetResource(ctx context.Context, collection, id string) (store.Resource, error) {
	// One statement reads one snapshot: no transaction needed.
	rows, err := s.get.QueryContext(ctx, collection, id)
	if err != nil {
		return store.Resource{}, wrapErr(ctx, "get resource", err)
	}
	r, found, err := scanLookup(rows, collection)
	if err == nil && !found {
		err = store.ResourceNotFound(collection, id)
	}
	return r, wrapErr(ctx, "get resource", err)
}

// lookupSQL reads a resource and its collection's existence at once.
const lookupSQL = `SELECT c.name, r.id, r.data, r.labels, r.revision, r.created_at, r.updated_at
		FROM collections c LEFT JOIN resources r ON r.collection = c.name AND r.id = ?2
		WHERE c.name = ?1`

// lookup reads a resource and checks its collection in one statement. It
// returns ErrNotFound when the collection is missing and found=false (and no
// error) when only the resource is.
func (s *Store) lookup(ctx context.Context, tx *sql.Tx, collection, id string) (r store.Resource, found bool, err error) {
	rows, err := tx.StmtContext(ctx, s.ws.lookup).QueryContext(ctx, collection, id)
	if err != nil {
		return r, false, err
	}
	return scanLookup(rows, collection)
}

// scanLookup reads lookupSQL's row and closes rows.
func scanLookup(rows *sql.Rows, collection string) (r store.Resource, found bool, err error) {
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return r, false, err
		}
		return r, false, store.CollectionNotFound(collection)
	}
	var cname string
	var rid, data, labels sql.NullString
	var rev, created, updated sql.NullInt64
	if err := rows.Scan(&cname, &rid, &data, &labels, &rev, &created, &updated); err != nil {
		return r, false, err
	}
	if !rid.Valid {
		return r, false, rows.Close()
	}
	r = store.Resource{Collection: cname, ID: rid.String, Data: json.RawMessage(data.String),
		Revision: rev.Int64, CreatedAt: fromMicros(created.Int64), UpdatedAt: fromMicros(updated.Int64)}
	if r.Labels, err = store.DecodeLabels(labels.String); err != nil {
		return r, false, err
	}
	return r, true, rows.Close()
}

// appendChangeSQL appends one entry to the change log.
const appendChangeSQL = `INSERT INTO changes
		(revision, type, collection, id, data, labels, prev_labels, created_at, updated_at,
		prev_data, prev_revision, prev_updated_at, batch_id, batch_last, trace)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

// appendChange appends the change of r (data and labels encoded) at rev;
// prev is the state it replaced (nil for a create) with its labels encoded
// as prevLabels, batch the batch it belongs to (nil for none).
func (s *Store) appendChange(ctx context.Context, tx *sql.Tx, rev int64, typ store.ChangeType, r store.Resource, data, labels string,
	prev *store.Resource, prevLabels *string, batch *store.BatchRef) error {
	var prevData, batchID sql.NullString
	var prevRev, prevUpdated, batchLast sql.NullInt64
	if prev != nil {
		prevData = sql.NullString{String: string(prev.Data), Valid: true}
		prevRev = sql.NullInt64{Int64: prev.Revision, Valid: true}
		prevUpdated = sql.NullInt64{Int64: toMicros(prev.UpdatedAt), Valid: true}
	}
	if batch != nil {
		batchID = sql.NullString{String: batch.ID, Valid: true}
		batchLast = sql.NullInt64{Int64: batch.LastRevision, Valid: true}
	}
	_, err := tx.StmtContext(ctx, s.ws.appendChange).ExecContext(ctx,
		rev, string(typ), r.Collection, r.ID, data, labels, prevLabels, toMicros(r.CreatedAt), toMicros(r.UpdatedAt),
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
	err = s.write(ctx, "put resource", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		rev, err := s.bumpRevision(ctx, tx, 1) // undone with the write if a check fails
		if err != nil {
			return false, err
		}
		out, created, err = s.putOne(ctx, tx, in, cond, rev, now(), nil)
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
func (s *Store) putOne(ctx context.Context, tx *sql.Tx, in store.PutInput, cond store.Precondition, rev int64, t time.Time,
	batch *store.BatchRef) (store.Resource, bool, error) {
	cur, found, err := s.lookup(ctx, tx, in.Collection, in.ID)
	if err != nil {
		return store.Resource{}, false, err
	}
	if err := store.CheckPrecondition(cond, cur, found, in.Collection, in.ID); err != nil {
		return store.Resource{}, false, err
	}
	if err := s.checkCollectionRevision(ctx, tx, in.Collection, cond.CollectionRevision); err != nil {
		return store.Resource{}, false, err
	}
	p, err := store.PlanPut(in, cur, found, rev, t)
	if err != nil {
		return store.Resource{}, false, err
	}
	out := p.Resource
	if _, err := tx.StmtContext(ctx, s.ws.upsert).ExecContext(ctx,
		out.Collection, out.ID, in.Data, in.Labels, rev, toMicros(out.CreatedAt), toMicros(out.UpdatedAt)); err != nil {
		return store.Resource{}, false, err
	}
	return out, !found, s.appendChange(ctx, tx, rev, p.Type, out, in.Data, in.Labels, p.Prev, p.PrevLabels, batch)
}

// DeleteResource deletes a resource under cond and returns its last state
// with Revision set to the deletion's revision; the Deleted change carries
// the same state and the resource's labels as PrevLabels. Errors:
// store.ErrNotFound (collection or resource), store.ErrPreconditionFailed
// (IfMatch mismatch; CreateOnly, since the resource exists),
// store.ErrCollectionChanged, store.ErrUnavailable.
func (s *Store) DeleteResource(ctx context.Context, collection, id string, cond store.Precondition) (store.Resource, error) {
	var out store.Resource
	err := s.write(ctx, "delete resource", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		rev, err := s.bumpRevision(ctx, tx, 1) // undone with the write if a check fails
		if err != nil {
			return false, err
		}
		out, err = s.deleteOne(ctx, tx, collection, id, cond, rev, nil)
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
func (s *Store) deleteOne(ctx context.Context, tx *sql.Tx, collection, id string, cond store.Precondition, rev int64,
	batch *store.BatchRef) (store.Resource, error) {
	cur, found, err := s.lookup(ctx, tx, collection, id)
	if err != nil {
		return store.Resource{}, err
	}
	if !found {
		return store.Resource{}, store.ResourceNotFound(collection, id)
	}
	if err := store.CheckPrecondition(cond, cur, found, collection, id); err != nil {
		return store.Resource{}, err
	}
	if err := s.checkCollectionRevision(ctx, tx, collection, cond.CollectionRevision); err != nil {
		return store.Resource{}, err
	}
	out := cur
	out.Revision = rev
	if _, err := tx.StmtContext(ctx, s.ws.delete).ExecContext(ctx, collection, id); err != nil {
		return store.Resource{}, err
	}
	labels, err := store.EncodeLabels(cur.Labels)
	if err != nil {
		return store.Resource{}, err
	}
	return out, s.appendChange(ctx, tx, rev, store.Deleted, out, string(cur.Data), labels, &cur, &labels, batch)
}

// ListResources returns a page of resources in opts.OrderBy's order (by ID,
// byte order, when none), starting after opts.After/AfterValues, with at
// most opts.Limit (0 means 100) items that match opts.Selector and
// opts.Filter; pages are filled even when they skip rows, within the scan
// budget opts.MaxScan. The query reads the declared index that serves it
// best (store.PlanList). Page.Revision is the revision of the snapshot the
// page was read from. Errors: store.ErrNotFound (collection missing),
// CodeNeedsIndex (budget exceeded), CodeInvalid (a bad order field or page
// position), store.ErrUnavailable.
func (s *Store) ListResources(ctx context.Context, opts store.ListOptions) (store.Page, error) {
	limit := opts.Limit
	if limit <= 0 {
		limit = defaultPageSize
	}
	var page store.Page
	err := s.read(ctx, "list resources", func(tx *sql.Tx) error {
		var rev int64
		var indexes sql.NullString
		if err := tx.QueryRowContext(ctx,
			`SELECT revision, (SELECT indexes FROM collections WHERE name = ?) FROM meta WHERE id = 1`,
			opts.Collection).Scan(&rev, &indexes); err != nil {
			return err
		}
		if !indexes.Valid {
			return store.CollectionNotFound(opts.Collection)
		}
		ixs, err := store.DecodeIndexes(indexes.String)
		if err != nil {
			return err
		}
		q, err := store.PlanList(dialect{}, store.Collection{Name: opts.Collection, Indexes: ixs}, opts)
		if err != nil {
			return err
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
	err := s.r.QueryRowContext(ctx, `SELECT revision FROM meta WHERE id = 1`).Scan(&rev)
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
	err := s.read(ctx, "changes", func(tx *sql.Tx) error {
		var compacted int64
		if err := tx.QueryRowContext(ctx, `SELECT compacted_through FROM meta WHERE id = 1`).Scan(&compacted); err != nil {
			return err
		}
		if after < compacted {
			return store.Errorf(store.CodeCompacted,
				"the change log no longer holds revision %d (compacted through %d)", after+1, compacted)
		}
		rows, err := tx.QueryContext(ctx, `SELECT revision, type, collection, id, data, labels, prev_labels, created_at, updated_at,
			prev_data, prev_revision, prev_updated_at, batch_id, batch_last, trace
			FROM changes WHERE revision > ? ORDER BY revision LIMIT ?`, after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c store.Change
			var typ, data, labels string
			var prev, prevData, batchID, trace sql.NullString
			var created, updated int64
			var prevRev, prevUpdated, batchLast sql.NullInt64
			if err := rows.Scan(&c.Revision, &typ, &c.Resource.Collection, &c.Resource.ID, &data, &labels, &prev, &created, &updated,
				&prevData, &prevRev, &prevUpdated, &batchID, &batchLast, &trace); err != nil {
				return err
			}
			c.Trace = trace.String
			if prevData.Valid {
				c.Prev = &store.Resource{Collection: c.Resource.Collection, ID: c.Resource.ID, Data: json.RawMessage(prevData.String),
					Revision: prevRev.Int64, CreatedAt: fromMicros(created), UpdatedAt: fromMicros(prevUpdated.Int64)}
			}
			if batchID.Valid {
				c.Batch = &store.BatchRef{ID: batchID.String, LastRevision: batchLast.Int64}
			}
			c.Type = store.ChangeType(typ)
			if c.Type == store.CollectionUpdated {
				coll, err := store.DecodeCollectionChange(data)
				if err != nil {
					return err
				}
				c = store.CollectionChange(coll)
				c.Trace = trace.String
				out = append(out, c)
				continue
			}
			c.Resource.Data = json.RawMessage(data)
			c.Resource.Revision = c.Revision
			c.Resource.CreatedAt, c.Resource.UpdatedAt = fromMicros(created), fromMicros(updated)
			if c.Resource.Labels, err = store.DecodeLabels(labels); err != nil {
				return err
			}
			if prev.Valid {
				if c.PrevLabels, err = store.DecodeLabels(prev.String); err != nil {
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
	return s.write(ctx, "compact", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		var newest, compacted int64
		if err := tx.QueryRowContext(ctx,
			`SELECT (SELECT coalesce(max(revision), 0) FROM changes), compacted_through FROM meta WHERE id = 1`).
			Scan(&newest, &compacted); err != nil {
			return false, err
		}
		through = min(through, newest-1)
		if through <= compacted {
			return false, nil
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM changes WHERE revision <= ?`, through); err != nil {
			return false, err
		}
		_, err := tx.ExecContext(ctx, `UPDATE meta SET compacted_through = ? WHERE id = 1`, through)
		return false, err
	})
}

// GetIdempotentReply returns the reply stored for key. Errors:
// store.ErrNotFound, store.ErrUnavailable.
func (s *Store) GetIdempotentReply(ctx context.Context, key string) (store.IdempotentReply, error) {
	r := store.IdempotentReply{Key: key}
	var header string
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT fingerprint, status, header, body, created_at FROM idempotent_replies WHERE key = ?`, key).
		Scan(&r.Fingerprint, &r.Status, &header, &r.Body, &created)
	if errors.Is(err, sql.ErrNoRows) {
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
	r.CreatedAt = fromMicros(created)
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
	return s.write(ctx, "put idempotent reply", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		res, err := tx.ExecContext(ctx, `INSERT INTO idempotent_replies (key, fingerprint, status, header, body, created_at)
			VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING`,
			r.Key, r.Fingerprint, r.Status, string(header), r.Body, toMicros(r.CreatedAt))
		if err != nil {
			return false, err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return false, err
			}
			return false, store.Errorf(store.CodeConflict, "a reply is already stored for this idempotency key")
		}
		return false, nil
	})
}

// ExpireIdempotentReplies deletes the replies created before t. Errors:
// store.ErrUnavailable.
func (s *Store) ExpireIdempotentReplies(ctx context.Context, before time.Time) error {
	return s.write(ctx, "expire idempotent replies", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		_, err := tx.ExecContext(ctx, `DELETE FROM idempotent_replies WHERE created_at < ?`, toMicros(before))
		return false, err
	})
}
