package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/tandemhq/tandem/internal/store"
)

// CreateCollection creates c (its schema, description and indexes) and
// returns it with its revision and creation time. Creating a collection
// takes one revision but appends nothing to the change log. Errors:
// store.ErrInvalid (bad name, schema, description or indexes),
// store.ErrConflict (it exists), store.ErrUnavailable.
func (s *Store) CreateCollection(ctx context.Context, c store.Collection) (store.Collection, error) {
	in, err := store.PrepareCollection(c)
	if err != nil {
		return store.Collection{}, err
	}
	var out store.Collection
	created := now()
	err = s.write(ctx, "create collection", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM collections WHERE name = ?`, c.Name).Scan(&n); err != nil {
			return false, err
		}
		if n > 0 {
			return false, store.Errorf(store.CodeConflict, "collection %q already exists", c.Name)
		}
		rev, err := s.bumpRevision(ctx, tx, 1)
		if err != nil {
			return false, err
		}
		out = in.Collection(rev, created, created)
		if _, err = tx.ExecContext(ctx, `INSERT INTO collections (name, schema, description, indexes, revision, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			c.Name, in.Schema, in.Description, in.Indexes, rev, toMicros(created)); err != nil {
			return false, err
		}
		return true, syncIndexes(ctx, tx, c.Name, nil, out.Indexes)
	})
	if err != nil {
		return store.Collection{}, err
	}
	return out, nil
}

// collectionCols are the columns scanCollection reads.
const collectionCols = `name, schema, description, indexes, revision, created_at, updated_at`

func scanCollection(row interface{ Scan(...any) error }) (store.Collection, error) {
	var c store.Collection
	var schema sql.NullString
	var indexes string
	var created int64
	var updated sql.NullInt64
	if err := row.Scan(&c.Name, &schema, &c.Description, &indexes, &c.Revision, &created, &updated); err != nil {
		return c, err
	}
	if schema.Valid {
		c.Schema = json.RawMessage(schema.String)
	}
	var err error
	if c.Indexes, err = store.DecodeIndexes(indexes); err != nil {
		return c, err
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(created)
	if updated.Valid {
		c.UpdatedAt = fromMicros(updated.Int64)
	}
	return c, nil
}

// GetCollection returns the named collection. Errors: store.ErrNotFound,
// store.ErrUnavailable.
func (s *Store) GetCollection(ctx context.Context, name string) (store.Collection, error) {
	c, err := scanCollection(s.r.QueryRowContext(ctx,
		`SELECT `+collectionCols+` FROM collections WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Collection{}, store.CollectionNotFound(name)
	}
	if err != nil {
		return store.Collection{}, wrapErr(ctx, "get collection", err)
	}
	return c, nil
}

// ListCollections returns every collection ordered by name (byte order).
// Errors: store.ErrUnavailable.
func (s *Store) ListCollections(ctx context.Context) ([]store.Collection, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+collectionCols+` FROM collections ORDER BY name`)
	if err != nil {
		return nil, wrapErr(ctx, "list collections", err)
	}
	defer rows.Close()
	out := []store.Collection{}
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, wrapErr(ctx, "list collections", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr(ctx, "list collections", err)
	}
	return out, nil
}

// UpdateCollection replaces the schema, description and indexes of
// collection c.Name under cond, in one write that takes a new revision
// (the collection's new Revision; UpdatedAt becomes now, CreatedAt is
// kept) and appends a store.CollectionUpdated change carrying the new
// definition. Errors: store.ErrInvalid (bad name, schema, description or
// indexes), store.ErrNotFound, store.ErrPreconditionFailed (cond.IfMatch),
// store.ErrCollectionChanged (a resource changed after
// cond.CheckedThrough), store.ErrUnavailable.
func (s *Store) UpdateCollection(ctx context.Context, c store.Collection, cond store.CollectionCondition) (store.Collection, error) {
	in, err := store.PrepareCollection(c)
	if err != nil {
		return store.Collection{}, err
	}
	var out store.Collection
	err = s.write(ctx, "update collection", func(ctx context.Context, tx *sql.Tx) (bool, error) {
		cur, err := scanCollection(tx.QueryRowContext(ctx, `SELECT `+collectionCols+` FROM collections WHERE name = ?`, in.Name))
		if errors.Is(err, sql.ErrNoRows) {
			return false, store.CollectionNotFound(in.Name)
		}
		if err != nil {
			return false, err
		}
		var compacted int64
		var changed bool
		if cond.CheckedThrough != 0 {
			if err := tx.QueryRowContext(ctx, `SELECT compacted_through, EXISTS (SELECT 1 FROM changes
				WHERE revision > ?1 AND collection = ?2 AND type IN ('created', 'updated')) FROM meta WHERE id = 1`,
				cond.CheckedThrough, in.Name).Scan(&compacted, &changed); err != nil {
				return false, err
			}
		}
		if err := store.CheckCollectionCondition(cond, cur, compacted, changed); err != nil {
			return false, err
		}
		rev, err := s.bumpRevision(ctx, tx, 1)
		if err != nil {
			return false, err
		}
		out = in.Collection(rev, cur.CreatedAt, now())
		if err := syncIndexes(ctx, tx, in.Name, cur.Indexes, out.Indexes); err != nil {
			return false, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE collections SET schema = ?, description = ?, indexes = ?, revision = ?, updated_at = ?
			WHERE name = ?`, in.Schema, in.Description, in.Indexes, rev, toMicros(out.UpdatedAt), in.Name); err != nil {
			return false, err
		}
		ch := store.CollectionChange(out)
		return true, s.appendChange(ctx, tx, rev, ch.Type, ch.Resource, store.EncodeCollectionChange(out), "{}", nil, nil, nil)
	})
	if err != nil {
		return store.Collection{}, err
	}
	return out, nil
}

// checkCollectionRevision is the check of store.Precondition's
// CollectionRevision (want; 0: none) inside a write's transaction.
// Errors: store.ErrCollectionChanged, the database's.
func (s *Store) checkCollectionRevision(ctx context.Context, tx *sql.Tx, name string, want int64) error {
	if want == 0 {
		return nil
	}
	var got int64
	err := tx.QueryRowContext(ctx, `SELECT revision FROM collections WHERE name = ?`, name).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return store.CollectionNotFound(name)
	}
	if err != nil {
		return err
	}
	return store.CheckCollectionRevision(want, got, name)
}

// dropIndexes calls syncIndexes (query.go) for the removal of collection name.
func (s *Store) dropIndexes(ctx context.Context, tx *sql.Tx, name string) error {
	var enc string
	if err := tx.QueryRowContext(ctx, `SELECT indexes FROM collections WHERE name = ?`, name).Scan(&enc); err != nil {
		return err
	}
	old, err := store.DecodeIndexes(enc)
	if err != nil {
		return err
	}
	return syncIndexes(ctx, tx, name, old, nil)
}
