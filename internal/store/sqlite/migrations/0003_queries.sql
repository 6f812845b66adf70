-- Queries, schema evolution and batches.
--
-- collections gain a description, the indexes they declare (a JSON array
-- of {"fields": [...]}; the store keeps one SQL expression index per
-- entry) and the time of their last change (NULL: never changed).
ALTER TABLE collections ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE collections ADD COLUMN indexes TEXT NOT NULL DEFAULT '[]';
ALTER TABLE collections ADD COLUMN updated_at INTEGER;

-- webhooks gain a filter expression (canonical form, '' for none).
ALTER TABLE webhooks ADD COLUMN filter TEXT NOT NULL DEFAULT '';

-- changes is rebuilt to admit collection changes ('collection.updated',
-- with id '' and the collection's new definition as data) and to carry:
--   prev_data, prev_revision, prev_updated_at: the resource's state before
--     the write (with prev_labels), NULL for created and collection
--     changes, so that a filtered subscriber can tell when a resource
--     leaves its filter;
--   batch_id, batch_last: the atomic batch the write belonged to and the
--     batch's last revision (NULL outside a batch).
CREATE TABLE changes_new (
	revision        INTEGER NOT NULL PRIMARY KEY,
	type            TEXT    NOT NULL CHECK (type IN ('created', 'updated', 'deleted', 'collection.updated')),
	collection      TEXT    NOT NULL,
	id              TEXT    NOT NULL,
	data            TEXT    NOT NULL,
	labels          TEXT    NOT NULL,
	prev_labels     TEXT,
	created_at      INTEGER NOT NULL,
	updated_at      INTEGER NOT NULL,
	prev_data       TEXT,
	prev_revision   INTEGER,
	prev_updated_at INTEGER,
	batch_id        TEXT,
	batch_last      INTEGER
) STRICT;

INSERT INTO changes_new (revision, type, collection, id, data, labels, prev_labels, created_at, updated_at)
	SELECT revision, type, collection, id, data, labels, prev_labels, created_at, updated_at FROM changes;
DROP TABLE changes;
ALTER TABLE changes_new RENAME TO changes;
