-- sitewatch schema, version 8: room on each page for the rows every batch rewrites.
--
-- The batch transaction rewrites, for each (site, location) it stored checks for, its hourly
-- and daily rollup rows, its site's per-site daily row, its rollup cursor, its location state,
-- and its site's row in `sites` and `site_verdicts`. None of those updates changes an indexed
-- column, so PostgreSQL can write the new version on the same page without touching the
-- indexes (a HOT update), but only if the page has room: at the default fillfactor (100) the
-- pages are packed full and nearly every update went to another page and added an entry to
-- every index (measured on a scratch copy of the hourly upsert of 750 rows a batch: 4% of
-- the updates HOT at 100, 73% at 70; BENCHMARKS.md has the sink's figures). The rollup tables
-- keep most rows long after their bucket is done, so they leave a fifth free; the small
-- tables rewritten all the time leave 30%.
--
-- Existing pages keep their rows; the setting applies to pages filled from now on (and to
-- a table rewritten by VACUUM FULL or CLUSTER). The sink creates new `rollup_hourly`
-- partitions with it (partitioned tables cannot carry it themselves).

ALTER TABLE rollup_daily SET (fillfactor = 80);
ALTER TABLE rollup_site_daily SET (fillfactor = 80);
ALTER TABLE rollup_cursors SET (fillfactor = 70);
ALTER TABLE location_states SET (fillfactor = 70);
ALTER TABLE site_verdicts SET (fillfactor = 70);
ALTER TABLE sites SET (fillfactor = 70);

DO $$
DECLARE
    part regclass;
BEGIN
    FOR part IN
        SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'rollup_hourly'::regclass
    LOOP
        EXECUTE format('ALTER TABLE %s SET (fillfactor = 80)', part);
    END LOOP;
END $$;
