-- sitewatch schema, version 6: each (site, location)'s latest stored check.
--
-- The rollup step needs, for a (site, location) the batch stored checks for, the stored
-- check just before the batch's first one (a check covers the time since its predecessor).
-- When the batch's checks all come after everything stored, which is the rule when reading
-- in order and always when catching up on a backlog, that predecessor is simply the latest
-- stored check: kept here, so such a batch reads one small row per (site, location) instead
-- of searching the partitioned `results`. Written in the transaction that stores the
-- results (under the sites' row locks), so it always names the latest check `results`
-- holds. Order as the rollups order checks: started_at, then agent id.

CREATE TABLE rollup_cursors (
    last_at     timestamptz NOT NULL,
    site_id     integer     NOT NULL,
    location_id smallint    NOT NULL,
    last_agent  smallint    NOT NULL,
    PRIMARY KEY (site_id, location_id)
);

-- From the results stored so far: per (site, agent) the latest check through the primary
-- key (a few index probes per partition, not a scan of every row), then the latest per
-- (site, location).
INSERT INTO rollup_cursors (last_at, site_id, location_id, last_agent)
SELECT DISTINCT ON (s.id, a.location_id) l.started_at, s.id, a.location_id, a.id
FROM sites s
CROSS JOIN agents a
CROSS JOIN LATERAL (
    SELECT r.started_at FROM results r
    WHERE r.site_id = s.id AND r.agent_id = a.id
    ORDER BY r.started_at DESC
    LIMIT 1
) l
ORDER BY s.id, a.location_id, l.started_at DESC, a.id DESC;
