-- meta holds exactly one row (id = 1): the store epoch, the global revision
-- counter and how far the change log has been compacted. The row is inserted
-- by the Go code after the migrations, with a random epoch.
CREATE TABLE meta (
	id                INTEGER PRIMARY KEY CHECK (id = 1),
	epoch             TEXT    NOT NULL,
	revision          INTEGER NOT NULL,
	compacted_through INTEGER NOT NULL
) STRICT;

CREATE TABLE collections (
	name       TEXT    NOT NULL PRIMARY KEY,
	schema     TEXT,
	revision   INTEGER NOT NULL,
	created_at INTEGER NOT NULL -- unix microseconds, UTC
) STRICT;

CREATE TABLE resources (
	collection TEXT    NOT NULL REFERENCES collections (name),
	id         TEXT    NOT NULL,
	data       TEXT    NOT NULL,
	labels     TEXT    NOT NULL, -- JSON object
	revision   INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (collection, id)
) WITHOUT ROWID, STRICT;

-- changes is the change log: one row per resource change, keyed by the
-- revision of the write. Rows carry the resource state after the write (the
-- last state for deletions) and the labels before it.
CREATE TABLE changes (
	revision    INTEGER NOT NULL PRIMARY KEY,
	type        TEXT    NOT NULL CHECK (type IN ('created', 'updated', 'deleted')),
	collection  TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	data        TEXT    NOT NULL,
	labels      TEXT    NOT NULL,
	prev_labels TEXT,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE idempotent_replies (
	key         TEXT    NOT NULL PRIMARY KEY,
	fingerprint TEXT    NOT NULL,
	status      INTEGER NOT NULL,
	header      TEXT    NOT NULL, -- JSON object
	body        BLOB    NOT NULL,
	created_at  INTEGER NOT NULL
) STRICT;

CREATE INDEX idempotent_replies_created_at ON idempotent_replies (created_at);
