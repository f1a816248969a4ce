//! The batch's site catalog entries into `site_catalog`, in the batch transaction (before
//! the verdict step, which judges by them). Every sink writes what it consumes into the
//! one shared table, so every sink and reader sees every definition whichever sink owns
//! the catalog partition. Of two entries for a site the one published later wins (a
//! redelivered or older one changes nothing); agents disagreeing on a definition are
//! logged and counted, and the later definition wins all the same.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sitewatch_checks::catalog::{SiteDefinition, CATALOG_SCHEMA_VERSION};
use tokio_postgres::types::Json;
use tokio_postgres::Transaction;

use super::batch::CatalogEntry;
use super::step::StepError;

/// What applying the entries did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CatalogStats {
    /// `site_catalog` rows written (new, changed or removed definitions).
    pub written: u64,
    /// Definitions that disagreed with another agent's definition in force.
    pub conflicts: u64,
}

/// A `site_catalog` row.
struct Stored {
    definition: SiteDefinition,
    /// Time of the latest entry applied (a definition's `published_at`, a tombstone's timestamp).
    at: DateTime<Utc>,
    removed_at: Option<DateTime<Utc>>,
    changed: bool,
}

/// Applies `entries` in order; returns what was written.
pub(super) async fn apply(
    tx: &Transaction<'_>,
    entries: &[CatalogEntry],
) -> Result<CatalogStats, StepError> {
    let mut stats = CatalogStats::default();
    if entries.is_empty() {
        return Ok(stats);
    }
    let mut names: Vec<&str> = entries.iter().map(|e| e.site.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let mut rows: BTreeMap<String, Stored> = BTreeMap::new();
    for r in tx
        .query(
            "SELECT site, url, interval_ms, timeout_ms, failure_threshold, success_threshold,
                    quorum, tags, site_group, public, agent, location, published_at, removed_at
             FROM site_catalog WHERE site = ANY($1) ORDER BY site FOR UPDATE",
            &[&names],
        )
        .await?
    {
        let quorum: &str = r.get(6);
        let definition = SiteDefinition {
            schema: CATALOG_SCHEMA_VERSION,
            site: r.get(0),
            url: r.get(1),
            interval_ms: u64::try_from(r.get::<_, i64>(2)).unwrap_or(1),
            timeout_ms: u64::try_from(r.get::<_, i64>(3)).unwrap_or(0),
            failure_threshold: u32::try_from(r.get::<_, i32>(4)).unwrap_or(1),
            success_threshold: u32::try_from(r.get::<_, i32>(5)).unwrap_or(1),
            quorum: quorum
                .parse()
                .map_err(|e: String| StepError::Data(format!("site_catalog.quorum: {e}")))?,
            tags: r.get(7),
            group: r.get(8),
            public: r.get(9),
            agent: r.get(10),
            location: r.get(11),
            published_at: r.get(12),
        };
        let at = definition.published_at;
        rows.insert(
            definition.site.clone(),
            Stored {
                definition,
                at,
                removed_at: r.get(13),
                changed: false,
            },
        );
    }
    for entry in entries {
        let current = rows.get_mut(&entry.site);
        match (&entry.definition, current) {
            (Some(d), Some(current)) => {
                if d.published_at <= current.at {
                    continue;
                }
                let other = &current.definition;
                if current.removed_at.is_none() && other.agent != d.agent && other.differs_from(d) {
                    stats.conflicts += 1;
                    tracing::warn!(
                        site = %d.site,
                        agent = %d.agent,
                        other_agent = %other.agent,
                        "agents define this site differently; the later definition wins"
                    );
                }
                *current = Stored {
                    definition: d.clone(),
                    at: d.published_at,
                    removed_at: None,
                    changed: true,
                };
            }
            (Some(d), None) => {
                rows.insert(
                    entry.site.clone(),
                    Stored {
                        definition: d.clone(),
                        at: d.published_at,
                        removed_at: None,
                        changed: true,
                    },
                );
            }
            (None, Some(current)) if entry.timestamp > current.at => {
                current.at = entry.timestamp;
                current.removed_at = Some(entry.timestamp);
                current.changed = true;
            }
            // A tombstone older than the definition in force, or for a site never defined.
            (None, _) => {}
        }
    }
    let changed: Vec<&Stored> = rows.values().filter(|r| r.changed).collect();
    if changed.is_empty() {
        return Ok(stats);
    }
    let defs: Vec<&SiteDefinition> = changed.iter().map(|r| &r.definition).collect();
    let site: Vec<&str> = defs.iter().map(|d| d.site.as_str()).collect();
    let url: Vec<&str> = defs.iter().map(|d| d.url.as_str()).collect();
    let ms = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let interval: Vec<i64> = defs.iter().map(|d| ms(d.interval_ms)).collect();
    let timeout: Vec<i64> = defs.iter().map(|d| ms(d.timeout_ms)).collect();
    let count = |v: u32| i32::try_from(v).unwrap_or(i32::MAX);
    let failure: Vec<i32> = defs.iter().map(|d| count(d.failure_threshold)).collect();
    let success: Vec<i32> = defs.iter().map(|d| count(d.success_threshold)).collect();
    let quorum: Vec<String> = defs.iter().map(|d| d.quorum.to_string()).collect();
    let tags: Vec<Json<&Vec<String>>> = defs.iter().map(|d| Json(&d.tags)).collect();
    let group: Vec<Option<&str>> = defs.iter().map(|d| d.group.as_deref()).collect();
    let public: Vec<bool> = defs.iter().map(|d| d.public).collect();
    let agent: Vec<&str> = defs.iter().map(|d| d.agent.as_str()).collect();
    let location: Vec<Option<&str>> = defs.iter().map(|d| d.location.as_deref()).collect();
    let at: Vec<DateTime<Utc>> = changed.iter().map(|r| r.at).collect();
    let removed: Vec<Option<DateTime<Utc>>> = changed.iter().map(|r| r.removed_at).collect();
    stats.written = tx
        .execute(
            "INSERT INTO site_catalog (site, url, interval_ms, timeout_ms, failure_threshold,
                 success_threshold, quorum, tags, site_group, public, agent, location,
                 published_at, removed_at)
             SELECT u.site, u.url, u.interval_ms, u.timeout_ms, u.failure_threshold,
                    u.success_threshold, u.quorum,
                    ARRAY(SELECT jsonb_array_elements_text(u.tags)), u.site_group, u.public,
                    u.agent, u.location, u.published_at, u.removed_at
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::int[],
                         $6::int[], $7::text[], $8::jsonb[], $9::text[], $10::boolean[],
                         $11::text[], $12::text[], $13::timestamptz[], $14::timestamptz[])
                  AS u(site, url, interval_ms, timeout_ms, failure_threshold,
                       success_threshold, quorum, tags, site_group, public, agent, location,
                       published_at, removed_at)
             ON CONFLICT (site) DO UPDATE SET
                 url = excluded.url, interval_ms = excluded.interval_ms,
                 timeout_ms = excluded.timeout_ms,
                 failure_threshold = excluded.failure_threshold,
                 success_threshold = excluded.success_threshold, quorum = excluded.quorum,
                 tags = excluded.tags, site_group = excluded.site_group,
                 public = excluded.public, agent = excluded.agent,
                 location = excluded.location, published_at = excluded.published_at,
                 removed_at = excluded.removed_at, updated_at = now()",
            &[
                &site, &url, &interval, &timeout, &failure, &success, &quorum, &tags, &group,
                &public, &agent, &location, &at, &removed,
            ],
        )
        .await?;
    Ok(stats)
}
