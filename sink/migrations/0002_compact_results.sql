-- sitewatch schema, version 2: compact results.
--
-- A result row holds small integers where version 1 repeated text: the site and the agent
-- (with its location) are ids in dimension tables, the outcome and the error kind are codes,
-- timings are whole microseconds. The URL, the regex pattern and the certificate's expiry
-- are per-site facts kept in `sites`. A check is identified by its site, its agent and its
-- start: one primary key makes a redelivered result a no-op and serves "a site over time".
-- What version 1 kept per row and version 2 does not: check_id, schema_version,
-- kafka_partition, kafka_offset, received_at (transport details), and per-row URL, regex
-- pattern and certificate expiry (the latest of each is kept in `sites`).
--
-- Existing data is converted in place, in this migration's transaction.

-- Dimensions ---------------------------------------------------------------------------

ALTER TABLE sites ALTER COLUMN id TYPE integer;
ALTER SEQUENCE sites_id_seq AS integer;
ALTER TABLE sites
    ALTER COLUMN current_outcome DROP NOT NULL,
    ALTER COLUMN last_change_at DROP NOT NULL,
    ADD COLUMN regex_pattern      text,
    ADD COLUMN tls_not_after      timestamptz,
    ADD COLUMN last_error_at      timestamptz,
    ADD COLUMN last_error_kind    text,
    ADD COLUMN last_error_message text;

-- Where checks come from: an agent's `location`, else the agent's name.
CREATE TABLE locations (
    id   smallserial PRIMARY KEY,
    name text NOT NULL UNIQUE
);

CREATE TABLE agents (
    id          smallserial PRIMARY KEY,
    name        text NOT NULL,
    location    text,
    location_id smallint NOT NULL REFERENCES locations (id)
);
CREATE UNIQUE INDEX agents_name_location ON agents (name, (coalesce(location, '')));

-- Outcome codes (fixed; the sink's `codes` module has the same numbers, checked by a test).
CREATE TABLE outcomes (
    id   smallint PRIMARY KEY,
    name text NOT NULL UNIQUE
);
INSERT INTO outcomes VALUES (0, 'up'), (1, 'degraded'), (2, 'down');

-- Error kinds by name. The sink looks ids up by name and adds kinds it has not seen (a newer
-- agent's), so nothing here limits which kinds can be stored.
CREATE TABLE error_kinds (
    id   smallint PRIMARY KEY,
    name text NOT NULL UNIQUE
);
INSERT INTO error_kinds VALUES
    (1, 'dns'), (2, 'connect'), (3, 'tls'), (4, 'timeout'), (5, 'http_status'),
    (6, 'body'), (7, 'regex'), (8, 'plugin'), (9, 'slow'), (10, 'agent_overloaded'),
    (11, 'other');
CREATE SEQUENCE error_kinds_id_seq AS smallint START 100 OWNED BY error_kinds.id;
ALTER TABLE error_kinds ALTER COLUMN id SET DEFAULT nextval('error_kinds_id_seq');

-- Results ------------------------------------------------------------------------------

-- Columns in an order that packs them without padding (8-, 4-, 2-, 1-byte, then variable).
-- Daily range partitions results_YYYYMMDD are created by the sink ahead of time and on demand.
CREATE TABLE results (
    started_at           timestamptz NOT NULL,
    site_id              integer     NOT NULL,
    total_us             integer     NOT NULL,
    dns_us               integer,
    connect_us           integer,
    tls_us               integer,
    ttfb_us              integer,
    body_bytes           integer,
    agent_id             smallint    NOT NULL,
    outcome              smallint    NOT NULL,
    error_kind           smallint,
    http_status          smallint,
    http_version         smallint,   -- 10 * major + minor: 11 = HTTP/1.1, 20 = HTTP/2.0
    tls_days_left        smallint,
    regex_matched        boolean,
    regex_absent_matched boolean,
    body_truncated       boolean,
    error_message        text,
    plugins              jsonb,
    PRIMARY KEY (site_id, agent_id, started_at)
) PARTITION BY RANGE (started_at);

-- Version 1 data ----------------------------------------------------------------------

ALTER TABLE check_results RENAME TO check_results_v1;
DROP INDEX IF EXISTS check_results_site_time;

INSERT INTO sites (name, url, first_seen, last_seen)
SELECT site, min(url), min(started_at), max(started_at)
FROM check_results_v1 v
WHERE NOT EXISTS (SELECT 1 FROM sites s WHERE s.name = v.site)
GROUP BY site;

INSERT INTO locations (name)
SELECT DISTINCT coalesce(nullif(location, ''), agent) FROM check_results_v1;

INSERT INTO agents (name, location, location_id)
SELECT v.agent, v.location, l.id
FROM (SELECT DISTINCT agent, nullif(location, '') AS location FROM check_results_v1) v
JOIN locations l ON l.name = coalesce(v.location, v.agent);

INSERT INTO error_kinds (name)
SELECT DISTINCT error_kind FROM check_results_v1 v
WHERE error_kind IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM error_kinds k WHERE k.name = v.error_kind);

-- A results partition for every day version 1 has one for.
DO $$
DECLARE
    day date;
BEGIN
    FOR day IN
        SELECT to_date(substr(c.relname, length('check_results_') + 1), 'YYYYMMDD')
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        WHERE p.relname = 'check_results_v1' AND c.relname ~ '^check_results_[0-9]{8}$'
    LOOP
        EXECUTE format(
            'CREATE TABLE results_%s PARTITION OF results FOR VALUES FROM (%L) TO (%L)',
            to_char(day, 'YYYYMMDD'), day::timestamp AT TIME ZONE 'UTC',
            (day + 1)::timestamp AT TIME ZONE 'UTC');
    END LOOP;
END
$$;

-- The same conversions as the sink's `codes` module (tested against each other); STRICT:
-- an absent value stays absent.
CREATE FUNCTION pg_temp.us(ms double precision) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT least(greatest(round(ms * 1000), 0), 2147483647)::integer $$;
CREATE FUNCTION pg_temp.int4(v bigint) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT least(greatest(v, -2147483648), 2147483647)::integer $$;
CREATE FUNCTION pg_temp.int2(v bigint) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT
    AS $$ SELECT least(greatest(v, -32768), 32767)::smallint $$;

INSERT INTO results (
    started_at, site_id, total_us, dns_us, connect_us, tls_us, ttfb_us, body_bytes,
    agent_id, outcome, error_kind, http_status, http_version, tls_days_left,
    regex_matched, regex_absent_matched, body_truncated, error_message, plugins)
SELECT v.started_at, s.id,
       pg_temp.us(v.total_ms),
       pg_temp.us(v.dns_ms),
       pg_temp.us(v.connect_ms),
       pg_temp.us(v.tls_ms),
       pg_temp.us(v.ttfb_ms),
       pg_temp.int4(v.body_bytes),
       a.id,
       o.id,
       k.id,
       pg_temp.int2(v.http_status),
       (SELECT (m[1]::integer * 10 + coalesce(m[3], '0')::integer)::smallint
        FROM regexp_match(v.http_version, '^HTTP/([0-9])(\.([0-9]))?$') m),
       pg_temp.int2(v.tls_days_left),
       v.regex_matched, v.regex_absent_matched, v.body_truncated, v.error_message, v.plugins
FROM check_results_v1 v
JOIN sites s ON s.name = v.site
JOIN agents a ON a.name = v.agent AND coalesce(a.location, '') = coalesce(nullif(v.location, ''), '')
JOIN outcomes o ON o.name = v.outcome
LEFT JOIN error_kinds k ON k.name = v.error_kind
ORDER BY s.id, a.id, v.started_at
ON CONFLICT DO NOTHING;

-- The latest per-site facts.
UPDATE sites s SET
    url = l.url,
    regex_pattern = l.regex_pattern,
    tls_not_after = l.tls_not_after
FROM (SELECT DISTINCT ON (site) site, url, regex_pattern, tls_not_after
      FROM check_results_v1 ORDER BY site, started_at DESC) l
WHERE l.site = s.name;

UPDATE sites s SET
    last_error_at = e.started_at,
    last_error_kind = e.error_kind,
    last_error_message = e.error_message
FROM (SELECT DISTINCT ON (site) site, started_at, error_kind, error_message
      FROM check_results_v1 WHERE error_kind IS NOT NULL
      ORDER BY site, started_at DESC) e
WHERE e.site = s.name;

DROP TABLE check_results_v1;

-- What queries written for version 1 read: the same names, decoded.
CREATE VIEW check_results AS
SELECT r.started_at,
       s.name                                   AS site,
       s.url,
       a.name                                   AS agent,
       a.location,
       o.name                                   AS outcome,
       k.name                                   AS error_kind,
       r.error_message,
       r.http_status::integer                   AS http_status,
       'HTTP/' || (r.http_version / 10) || '.' || (r.http_version % 10) AS http_version,
       r.body_bytes::bigint                     AS body_bytes,
       r.body_truncated,
       (r.dns_us / 1000.0)::double precision     AS dns_ms,
       (r.connect_us / 1000.0)::double precision AS connect_ms,
       (r.tls_us / 1000.0)::double precision     AS tls_ms,
       (r.ttfb_us / 1000.0)::double precision    AS ttfb_ms,
       (r.total_us / 1000.0)::double precision   AS total_ms,
       r.tls_days_left::integer                 AS tls_days_left,
       CASE WHEN r.regex_matched IS NOT NULL THEN s.regex_pattern END AS regex_pattern,
       r.regex_matched,
       r.regex_absent_matched,
       r.plugins,
       r.site_id,
       r.agent_id
FROM results r
LEFT JOIN sites s ON s.id = r.site_id
LEFT JOIN agents a ON a.id = r.agent_id
LEFT JOIN outcomes o ON o.id = r.outcome
LEFT JOIN error_kinds k ON k.id = r.error_kind;
