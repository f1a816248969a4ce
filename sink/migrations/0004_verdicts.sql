-- sitewatch schema, version 4: verdicts.
--
-- A site's state is judged from all its locations, not from whichever result came last:
-- each location (an agent's `location`, else its name) has its own state from its own
-- consecutive results, and the site's verdict is a vote of its active locations. Events
-- are written when the verdict changes (and when a location goes silent), incidents while
-- the verdict is down. All of it changes only inside the transaction that stores the
-- results it follows from, so a redelivered result changes nothing and a crash loses
-- nothing. The sink's `verdicts` module holds the rules; README "Verdicts" describes them.

-- The site catalog: each site as the agents define it, from the catalog topic. The entry
-- with the latest `published_at` wins (a definition, or a tombstone: `removed_at` set).
CREATE TABLE site_catalog (
    site              text PRIMARY KEY,           -- site name, as in sites.name
    url               text        NOT NULL,
    interval_ms       bigint      NOT NULL CHECK (interval_ms > 0),
    timeout_ms        bigint      NOT NULL,
    failure_threshold integer     NOT NULL CHECK (failure_threshold >= 1),
    success_threshold integer     NOT NULL CHECK (success_threshold >= 1),
    quorum            text        NOT NULL,       -- majority, any, all, or a number
    tags              text[]      NOT NULL DEFAULT '{}',
    site_group        text,
    public            boolean     NOT NULL DEFAULT false,
    agent             text        NOT NULL,       -- who published the definition in force
    location          text,
    published_at      timestamptz NOT NULL,       -- of the latest entry (definition or tombstone)
    removed_at        timestamptz,                -- the latest entry is a tombstone
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Each (site, location)'s own state, from its counted results in started_at order.
CREATE TABLE location_states (
    site_id          integer     NOT NULL REFERENCES sites (id),
    location_id      smallint    NOT NULL REFERENCES locations (id),
    state            text        NOT NULL CHECK (state IN ('pending', 'passing', 'degraded', 'failing')),
    state_since      timestamptz,                 -- start of the check that confirmed the state
    problem_since    timestamptz,                 -- first bad check of the run behind the state
    problem_kind     text,                        -- and its error
    problem_message  text,
    up_run           integer     NOT NULL DEFAULT 0,  -- counted checks in a row that were up,
    not_down_run     integer     NOT NULL DEFAULT 0,  -- not down,
    not_up_run       integer     NOT NULL DEFAULT 0,  -- not up,
    down_run         integer     NOT NULL DEFAULT 0,  -- down
    not_up_since     timestamptz,                 -- first check of the current not-up run
    not_up_kind      text,
    not_up_message   text,
    down_since       timestamptz,                 -- first check of the current down run
    down_kind        text,
    down_message     text,
    last_applied_at  timestamptz NOT NULL,        -- latest counted check: older ones are late
    last_result_at   timestamptz NOT NULL,        -- latest result of any kind
    last_outcome     text,                        -- of the latest counted check
    gap_ms           bigint,                      -- between its last two counted checks
    silent_since     timestamptz,                 -- out of the vote since (silent 3 intervals)
    PRIMARY KEY (site_id, location_id)
);

-- Each site's verdict from its locations.
CREATE TABLE site_verdicts (
    site_id         integer     PRIMARY KEY REFERENCES sites (id),
    verdict         text        NOT NULL CHECK (verdict IN ('up', 'degraded', 'down', 'unknown')),
    since           timestamptz NOT NULL,         -- when the site took this verdict
    judged_at       timestamptz NOT NULL,         -- the site's clock: latest time judged at
    reason          text        NOT NULL,
    interval_ms     bigint      NOT NULL,         -- the interval it was judged with
    incident_id     bigint,                       -- the open incident, if any
    kafka_partition integer                       -- results partition of its latest results
);

-- A site's time down: opened when its verdict became down, resolved when it recovered.
CREATE TABLE incidents (
    id               bigserial   PRIMARY KEY,
    site_id          integer     NOT NULL REFERENCES sites (id),
    started_at       timestamptz NOT NULL,        -- first failing check that led to down
    opened_at        timestamptz NOT NULL,        -- when the verdict became down
    resolved_at      timestamptz,                 -- when it left down for up or degraded
    locations        text[]      NOT NULL,        -- every location failing while it was open
    first_error_kind text,
    first_error      text,
    duration         interval GENERATED ALWAYS AS (resolved_at - started_at) STORED
);
-- At most one open incident per site, whatever happens.
CREATE UNIQUE INDEX incidents_one_open ON incidents (site_id) WHERE resolved_at IS NULL;
CREATE INDEX incidents_site_started ON incidents (site_id, started_at DESC);

-- Events: version 3 wrote one per change of a check's outcome (kind `outcome`, kept as
-- history); from now on one per verdict change (`verdict`) and one per location gone
-- silent (`location_silent`), with the locations behind it.
ALTER TABLE site_events
    ALTER COLUMN check_id DROP NOT NULL,
    ADD COLUMN kind        text NOT NULL DEFAULT 'outcome'
                           CHECK (kind IN ('outcome', 'verdict', 'location_silent')),
    ADD COLUMN location    text,                  -- location_silent: which one
    ADD COLUMN locations   jsonb,                 -- every location's state at that moment
    ADD COLUMN incident_id bigint,
    ADD COLUMN recorded_at timestamptz;
ALTER TABLE site_events ALTER COLUMN kind DROP DEFAULT;
