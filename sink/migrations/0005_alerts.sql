-- sitewatch schema, version 5: alerts.
--
-- Notifications are an outbox: a row is written in the same transaction as the verdict
-- change (incident opened or resolved) that causes it, so a crash can never leave a
-- verdict without its notification. A dispatcher inside each sink claims due rows with
-- `FOR UPDATE SKIP LOCKED` (several sinks share the work, none sends a row twice while
-- another holds it) and records the delivery. The idempotency key is stable per
-- (incident, kind, channel): `ON CONFLICT DO NOTHING` makes a redelivered batch, a second
-- sink or the periodic pass write one row. The sink's `alerts` module holds the rules;
-- README "Alerts" describes them.

CREATE TABLE notifications (
    id              bigserial   PRIMARY KEY,
    incident_id     bigint      REFERENCES incidents (id),   -- none for flapping and test
    site_id         integer     REFERENCES sites (id),
    kind            text        NOT NULL
                                CHECK (kind IN ('trigger', 'resolve', 'reminder', 'flapping', 'test')),
    channel         text        NOT NULL,                    -- name in the sink's config file
    idempotency_key text        NOT NULL UNIQUE,             -- also sent to the receiver
    payload         jsonb       NOT NULL,                    -- the Notification as delivered
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    failed_at       timestamptz,                             -- given up (permanent error or retry_for passed)
    CHECK (delivered_at IS NULL OR failed_at IS NULL)
);
-- The dispatcher's queue: rows neither delivered nor failed, by when they are due.
CREATE INDEX notifications_due ON notifications (next_attempt_at)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX notifications_incident ON notifications (incident_id, kind, channel);

-- Ad-hoc silences (`sitewatch-sink silence`): while one matches a site, no trigger,
-- reminder or flapping notice is written for it. `matcher` is a site name or `tag:NAME`.
CREATE TABLE silences (
    id         bigserial   PRIMARY KEY,
    matcher    text        NOT NULL CHECK (matcher <> ''),
    reason     text,
    created_at timestamptz NOT NULL DEFAULT now(),
    ends_at    timestamptz NOT NULL,
    expired_at timestamptz,                                  -- ended early by `silence expire`
    CHECK (ends_at > created_at)
);
CREATE INDEX silences_active ON silences (ends_at) WHERE expired_at IS NULL;

-- Maintenance time per site, written by the sink as the configured windows occur
-- (one-off and recurring). Probing continues during maintenance; uptime figures that leave
-- maintenance out count a check as in maintenance when
-- `starts_at <= started_at < ends_at` for a row of its site.
CREATE TABLE maintenance_periods (
    site_id    integer     NOT NULL REFERENCES sites (id),
    window_name text       NOT NULL,                          -- the window's name in the config file
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    PRIMARY KEY (site_id, window_name, starts_at)
);
CREATE INDEX maintenance_periods_time ON maintenance_periods (site_id, ends_at);

-- One row per site whose verdict changed more than the configured number of times within
-- the flapping window: one flapping notice was written when the row was made, and no
-- trigger, reminder or further notice is written until the site has kept its verdict for a
-- whole window (the row is then deleted).
CREATE TABLE flapping_sites (
    site_id   integer     PRIMARY KEY REFERENCES sites (id),
    since     timestamptz NOT NULL,
    last_change_at timestamptz NOT NULL
);
