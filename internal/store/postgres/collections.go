package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

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
	err = s.write(ctx, "create collection", func(tx pgx.Tx) (bool, error) {
		rev, err := bumpRevision(ctx, tx, 1)
		if err != nil {
			return false, err
		}
		out = in.Collection(rev, created, created)
		tag, err := tx.Exec(ctx, `INSERT INTO collections (name, schema, description, indexes, revision, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING`, c.Name, in.Schema, in.Description, in.Indexes, rev, created)
		if err != nil {
			return false, err
		}
		if tag.RowsAffected() == 0 {
			return false, store.Errorf(store.CodeConflict, "collection %q already exists", c.Name)
		}
		return true, syncIndexes(ctx, tx, c.Name, nil, out.Indexes)
	})
	if err != nil {
		return store.Collection{}, err
	}
	return out, nil
}

// collectionCols are the columns scanCollection reads.
const collectionCols = `name, schema::text, description, indexes::text, revision, created_at, updated_at`

func scanCollection(row pgx.Row) (store.Collection, error) {
	var c store.Collection
	var schema *string
	var indexes string
	var updated *time.Time
	if err := row.Scan(&c.Name, &schema, &c.Description, &indexes, &c.Revision, &c.CreatedAt, &updated); err != nil {
		return c, err
	}
	if schema != nil {
		c.Schema = json.RawMessage(*schema)
	}
	var err error
	if c.Indexes, err = store.DecodeIndexes(indexes); err != nil {
		return c, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	c.UpdatedAt = c.CreatedAt
	if updated != nil {
		c.UpdatedAt = updated.UTC()
	}
	return c, nil
}

// GetCollection returns the named collection. Errors: store.ErrNotFound,
// store.ErrUnavailable.
func (s *Store) GetCollection(ctx context.Context, name string) (store.Collection, error) {
	c, err := scanCollection(s.pool.QueryRow(ctx,
		`SELECT `+collectionCols+` FROM collections WHERE name = $1`, name))
	if errors.Is(err, pgx.ErrNoRows) {
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
	rows, err := s.pool.Query(ctx, `SELECT `+collectionCols+` FROM collections ORDER BY name`)
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
// cond.CheckedThrough), store.ErrUnavailable (also when building a new
// index failed after the change committed). Removed indexes are dropped
// in the write; new ones are built after it with CREATE INDEX
// CONCURRENTLY, so writers are not blocked while they build (the reply
// waits for the build).
func (s *Store) UpdateCollection(ctx context.Context, c store.Collection, cond store.CollectionCondition) (store.Collection, error) {
	in, err := store.PrepareCollection(c)
	if err != nil {
		return store.Collection{}, err
	}
	var out store.Collection
	err = s.write(ctx, "update collection", func(tx pgx.Tx) (bool, error) {
		// First: the revision counter's row lock serialises this write
		// with every other, so what follows reads the latest commits.
		rev, err := bumpRevision(ctx, tx, 1)
		if err != nil {
			return false, err
		}
		cur, err := scanCollection(tx.QueryRow(ctx, `SELECT `+collectionCols+` FROM collections WHERE name = $1`, in.Name))
		if errors.Is(err, pgx.ErrNoRows) {
			return false, store.CollectionNotFound(in.Name)
		}
		if err != nil {
			return false, err
		}
		var compacted int64
		var changed bool
		if cond.CheckedThrough != 0 {
			if err := tx.QueryRow(ctx, `SELECT compacted_through, EXISTS (SELECT 1 FROM changes
				WHERE revision > $1 AND collection = $2 AND type IN ('created', 'updated')) FROM meta WHERE id = 1`,
				cond.CheckedThrough, in.Name).Scan(&compacted, &changed); err != nil {
				return false, err
			}
		}
		if err := store.CheckCollectionCondition(cond, cur, compacted, changed); err != nil {
			return false, err
		}
		out = in.Collection(rev, cur.CreatedAt, now())
		if err := dropRemovedIndexes(ctx, tx, in.Name, cur.Indexes, out.Indexes); err != nil {
			return false, err
		}
		if _, err := tx.Exec(ctx, `UPDATE collections SET schema = $1, description = $2, indexes = $3, revision = $4, updated_at = $5
			WHERE name = $6`, in.Schema, in.Description, in.Indexes, rev, out.UpdatedAt, in.Name); err != nil {
			return false, err
		}
		ch := store.CollectionChange(out)
		return true, appendChange(ctx, tx, rev, ch.Type, ch.Resource, store.EncodeCollectionChange(out), "{}", nil, nil, nil)
	})
	if err != nil {
		return store.Collection{}, err
	}
	// The new indexes are built after the commit, without blocking writers.
	if err := s.buildIndexes(ctx, in.Name, out.Indexes); err != nil {
		return store.Collection{}, wrapErr(ctx, "build indexes (the collection change is committed; repeat it to build them)", err)
	}
	return out, nil
}

// checkCollectionRevision is the check of store.Precondition's
// CollectionRevision (want; 0: none) inside a write's transaction, after
// its revision bump (so it reads the latest commits). Errors:
// store.ErrCollectionChanged, store.ErrNotFound, the database's.
func checkCollectionRevision(ctx context.Context, tx pgx.Tx, name string, want int64) error {
	if want == 0 {
		return nil
	}
	var got int64
	err := tx.QueryRow(ctx, `SELECT revision FROM collections WHERE name = $1`, name).Scan(&got)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.CollectionNotFound(name)
	}
	if err != nil {
		return err
	}
	return store.CheckCollectionRevision(want, got, name)
}

// dropIndexes calls syncIndexes (query.go) for the removal of collection name.
func (s *Store) dropIndexes(ctx context.Context, tx pgx.Tx, name string) error {
	var enc string
	if err := tx.QueryRow(ctx, `SELECT indexes::text FROM collections WHERE name = $1`, name).Scan(&enc); err != nil {
		return err
	}
	old, err := store.DecodeIndexes(enc)
	if err != nil {
		return err
	}
	return syncIndexes(ctx, tx, name, old, nil)
}
