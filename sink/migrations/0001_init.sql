-- sitewatch schema, version 1.

CREATE TABLE sites (
    id              bigserial PRIMARY KEY,
    name            text NOT NULL UNIQUE,
    url             text NOT NULL,
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL,
    current_outcome text NOT NULL,
    last_change_at  timestamptz NOT NULL
);

-- One row per check. Daily range partitions (check_results_YYYYMMDD) are created by the sink
-- ahead of time and on demand; the primary key makes a redelivered message a no-op.
CREATE TABLE check_results (
    started_at           timestamptz NOT NULL,
    check_id             uuid NOT NULL,
    site                 text NOT NULL,
    url                  text NOT NULL,
    agent                text NOT NULL,
    location             text,
    outcome              text NOT NULL,
    error_kind           text,
    error_message        text,
    http_status          integer,
    http_version         text,
    body_bytes           bigint,
    body_truncated       boolean,
    dns_ms               double precision,
    connect_ms           double precision,
    tls_ms               double precision,
    ttfb_ms              double precision,
    total_ms             double precision NOT NULL,
    tls_not_after        timestamptz,
    tls_days_left        integer,
    regex_pattern        text,
    regex_matched        boolean,
    regex_absent_matched boolean,
    plugins              jsonb,
    schema_version       integer NOT NULL,
    kafka_partition      integer NOT NULL,
    kafka_offset         bigint NOT NULL,
    received_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (started_at, check_id)
) PARTITION BY RANGE (started_at);

-- "Latest results of a site" and "a site over time".
CREATE INDEX check_results_site_time ON check_results (site, started_at DESC);

CREATE TABLE site_events (
    id               bigserial PRIMARY KEY,
    site             text NOT NULL,
    previous_outcome text,
    new_outcome      text NOT NULL,
    at               timestamptz NOT NULL,
    check_id         uuid NOT NULL,
    reason           text
);
CREATE INDEX site_events_site_at ON site_events (site, at DESC);

CREATE TABLE rejected_messages (
    id              bigserial PRIMARY KEY,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT now(),
    error           text NOT NULL,
    payload         bytea
);
