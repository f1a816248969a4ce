-- sitewatch schema, version 3: rollups per (site, location), hourly and daily.
--
-- Maintained by the sink in the transaction that stores the results they count, so they are
-- exactly what a recomputation from `results` gives (`sitewatch-sink rollup --rebuild`).
-- A check counts in the buckets holding its start. It also covers time: the time since the
-- previous check of its (site, location), when that was at most an hour before (else none),
-- added to up_ms, degraded_ms or down_ms by its outcome. Times are whole ms and µs, and
-- `latency` is a histogram of total_us (the sink's rollups/sketch.rs describes the encoding),
-- so every figure is an exact sum.

CREATE TABLE rollup_hourly (
    bucket        timestamptz NOT NULL,  -- start of the hour (UTC)
    up_ms         bigint      NOT NULL,
    degraded_ms   bigint      NOT NULL,
    down_ms       bigint      NOT NULL,
    total_us_sum  bigint      NOT NULL,
    site_id       integer     NOT NULL,
    up            integer     NOT NULL,
    degraded      integer     NOT NULL,
    down          integer     NOT NULL,
    total_us_min  integer     NOT NULL,
    total_us_max  integer     NOT NULL,
    location_id   smallint    NOT NULL,
    latency       bytea       NOT NULL,
    PRIMARY KEY (site_id, location_id, bucket)
) PARTITION BY RANGE (bucket);  -- monthly partitions rollup_hourly_YYYYMM, made by the sink

CREATE TABLE rollup_daily (
    bucket        timestamptz NOT NULL,  -- midnight UTC
    up_ms         bigint      NOT NULL,
    degraded_ms   bigint      NOT NULL,
    down_ms       bigint      NOT NULL,
    total_us_sum  bigint      NOT NULL,
    site_id       integer     NOT NULL,
    up            integer     NOT NULL,
    degraded      integer     NOT NULL,
    down          integer     NOT NULL,
    total_us_min  integer     NOT NULL,
    total_us_max  integer     NOT NULL,
    location_id   smallint    NOT NULL,
    latency       bytea       NOT NULL,
    PRIMARY KEY (site_id, location_id, bucket)
);

-- What retention has done, so a rebuild never recomputes a day whose raw results (or the
-- hour before it, which the first checks' covered time depends on) are gone.
CREATE TABLE retention_state (
    one                boolean PRIMARY KEY DEFAULT true CHECK (one),
    raw_dropped_before date
);
INSERT INTO retention_state DEFAULT VALUES;

-- Results stored before rollups existed are rolled up by the sink when it next starts.
CREATE TABLE rollup_rebuilds_pending (
    since date NOT NULL
);
INSERT INTO rollup_rebuilds_pending (since)
SELECT min(started_at AT TIME ZONE 'UTC')::date FROM results HAVING count(*) > 0;
