-- webhooks holds one row per webhook: its configuration (written by the
-- API, versioned by generation), its delivery status (written by the lease
-- holder) and its delivery lease. Times are unix microseconds, UTC; NULL
-- is the zero time ("none"). Booleans are 0 or 1.
CREATE TABLE webhooks (
	id                TEXT    NOT NULL PRIMARY KEY,
	topic             TEXT    NOT NULL,
	labels            TEXT    NOT NULL, -- canonical label selector, '' for none
	url               TEXT    NOT NULL,
	secret            TEXT    NOT NULL,
	prev_secret       TEXT    NOT NULL,
	prev_secret_until INTEGER,
	description       TEXT    NOT NULL,
	enabled           INTEGER NOT NULL CHECK (enabled IN (0, 1)),
	max_batch         INTEGER NOT NULL,
	generation        INTEGER NOT NULL,
	created_at        INTEGER,
	updated_at        INTEGER,
	-- delivery status
	state             TEXT    NOT NULL,
	cursor            TEXT    NOT NULL,
	last_error        TEXT    NOT NULL,
	last_success_at   INTEGER,
	failing_since     INTEGER,
	attempts          INTEGER NOT NULL,
	resync_notified   INTEGER NOT NULL CHECK (resync_notified IN (0, 1)),
	-- delivery lease: lease_owner '' (and lease_until NULL) for none
	lease_owner       TEXT    NOT NULL,
	lease_until       INTEGER
) WITHOUT ROWID, STRICT;
