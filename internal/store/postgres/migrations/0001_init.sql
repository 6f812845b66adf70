-- meta holds exactly one row (id = 1): the store epoch, the global revision
-- counter and how far the change log has been compacted. Every write
-- transaction updates the row first; its row lock serialises writers, so
-- commit order equals revision order. The row is inserted by the Go code
-- after the migrations, with a random epoch.
CREATE TABLE meta (
	id                integer PRIMARY KEY CHECK (id = 1),
	epoch             text    NOT NULL,
	revision          bigint  NOT NULL,
	compacted_through bigint  NOT NULL
);

-- Names and IDs use the "C" collation so that ORDER BY and keyset
-- pagination follow byte order, as in the SQLite store.
CREATE TABLE collections (
	name       text COLLATE "C" PRIMARY KEY,
	schema     json,
	revision   bigint      NOT NULL,
	created_at timestamptz NOT NULL
);

CREATE TABLE resources (
	collection text COLLATE "C" NOT NULL REFERENCES collections (name),
	id         text COLLATE "C" NOT NULL,
	data       json        NOT NULL, -- json keeps the text as written
	labels     jsonb       NOT NULL,
	revision   bigint      NOT NULL,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (collection, id)
);

-- changes is the change log: one row per resource change, keyed by the
-- revision of the write. Rows carry the resource state after the write (the
-- last state for deletions) and the labels before it.
CREATE TABLE changes (
	revision    bigint PRIMARY KEY,
	type        text   NOT NULL CHECK (type IN ('created', 'updated', 'deleted')),
	collection  text COLLATE "C" NOT NULL,
	id          text COLLATE "C" NOT NULL,
	data        json   NOT NULL,
	labels      jsonb  NOT NULL,
	prev_labels jsonb,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);

CREATE TABLE idempotent_replies (
	key         text PRIMARY KEY,
	fingerprint text        NOT NULL,
	status      integer     NOT NULL,
	header      jsonb       NOT NULL,
	body        bytea       NOT NULL,
	created_at  timestamptz NOT NULL
);

CREATE INDEX idempotent_replies_created_at ON idempotent_replies (created_at);
