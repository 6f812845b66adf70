-- webhooks holds one row per webhook: its configuration (written by the
-- API, versioned by generation), its delivery status (written by the lease
-- holder) and its delivery lease. A NULL time is the zero time ("none").
-- Webhook writes do not update meta: they are not resource changes.
CREATE TABLE webhooks (
	id                text COLLATE "C" PRIMARY KEY,
	topic             text        NOT NULL,
	labels            text        NOT NULL, -- canonical label selector, '' for none
	url               text        NOT NULL,
	secret            text        NOT NULL,
	prev_secret       text        NOT NULL,
	prev_secret_until timestamptz,
	description       text        NOT NULL,
	enabled           boolean     NOT NULL,
	max_batch         integer     NOT NULL,
	generation        bigint      NOT NULL,
	created_at        timestamptz,
	updated_at        timestamptz,
	-- delivery status
	state             text        NOT NULL,
	cursor            text        NOT NULL,
	last_error        text        NOT NULL,
	last_success_at   timestamptz,
	failing_since     timestamptz,
	attempts          integer     NOT NULL,
	resync_notified   boolean     NOT NULL,
	-- delivery lease: lease_owner '' (and lease_until NULL) for none;
	-- lease_until is reckoned by the database's clock
	lease_owner       text        NOT NULL,
	lease_until       timestamptz
);
