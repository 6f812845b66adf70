-- Queries, schema evolution and batches.
--
-- collections gain a description, the indexes they declare (a JSON array
-- of {"fields": [...]}; the store keeps one SQL expression index per
-- entry) and the time of their last change (NULL: never changed).
ALTER TABLE collections
	ADD COLUMN description text  NOT NULL DEFAULT '',
	ADD COLUMN indexes     jsonb NOT NULL DEFAULT '[]',
	ADD COLUMN updated_at  timestamptz;

-- webhooks gain a filter expression (canonical form, '' for none).
ALTER TABLE webhooks ADD COLUMN filter text NOT NULL DEFAULT '';

-- changes admits collection changes ('collection.updated', with id '' and
-- the collection's new definition as data) and carries:
--   prev_data, prev_revision, prev_updated_at: the resource's state before
--     the write (with prev_labels), NULL for created and collection
--     changes, so that a filtered subscriber can tell when a resource
--     leaves its filter;
--   batch_id, batch_last: the atomic batch the write belonged to and the
--     batch's last revision (NULL outside a batch).
ALTER TABLE changes
	DROP CONSTRAINT changes_type_check,
	ADD CONSTRAINT changes_type_check CHECK (type IN ('created', 'updated', 'deleted', 'collection.updated')),
	ADD COLUMN prev_data       json,
	ADD COLUMN prev_revision   bigint,
	ADD COLUMN prev_updated_at timestamptz,
	ADD COLUMN batch_id        text,
	ADD COLUMN batch_last      bigint;
