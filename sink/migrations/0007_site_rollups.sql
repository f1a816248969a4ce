-- sitewatch schema: daily rollups per site, every location added up.
--
-- Readers that want a site's figures over whole days (a report over months, the dashboard's
-- uptimes) read one row per site and day here instead of one per location: a third of the
-- rows with three locations. Each row is exactly the sum of the site's `rollup_daily` rows of
-- that day (counts, covered times, sums, min/max, the latency sketch's counts), kept by the
-- same code in the same transaction as they are, recomputed by `rollup --rebuild`, and
-- dropped with them by retention. Columns as in `rollup_daily`, without the location.
--
-- Filled from the existing `rollup_daily` rows by the sink right after this file runs, in
-- the same transaction (`rollups::site::fill`): the sketches are merged by the sink's own
-- code, which SQL cannot do.

CREATE TABLE rollup_site_daily (
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
    latency       bytea       NOT NULL,
    PRIMARY KEY (site_id, bucket)
);
