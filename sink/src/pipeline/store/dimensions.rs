//! Dimension ids for a batch: sites (created on first sight, then locked for the rest of
//! the transaction), agents with their locations, error kinds. New names are inserted only
//! when missing, so the id sequences are not consumed by names already known.

use std::collections::HashMap;

use rustc_hash::{FxHashMap, FxHashSet};

use chrono::{DateTime, Utc};
use sitewatch_checks::CheckResult;
use tokio_postgres::Transaction;

use super::super::batch::Row;
use super::super::step::StepError;

/// An agent's id and the id of its location.
#[derive(Debug, Clone, Copy)]
pub(super) struct AgentIds {
    pub(super) agent: i16,
    pub(super) location: i16,
}

/// The ids a batch's rows need, by name.
pub(super) struct Ids<'a> {
    sites: FxHashMap<&'a str, i32>,
    agents: FxHashMap<(&'a str, Option<&'a str>), AgentIds>,
    kinds: HashMap<String, i16>,
}

/// The location label an agent stores under: its `location`, unless empty.
pub(crate) fn location_label(r: &CheckResult) -> Option<&str> {
    r.location.as_deref().filter(|l| !l.is_empty())
}

impl<'a> Ids<'a> {
    /// Resolves (creating where missing) every id `rows` need, and locks their sites.
    pub(super) async fn resolve(tx: &Transaction<'_>, rows: &'a [Row]) -> Result<Self, StepError> {
        Ok(Ids {
            sites: lock_sites(tx, rows).await?,
            agents: agents(tx, rows).await?,
            kinds: error_kinds(tx, rows).await?,
        })
    }

    pub(super) fn site(&self, r: &CheckResult) -> Result<i32, StepError> {
        self.sites
            .get(r.site.as_str())
            .copied()
            .ok_or_else(|| missing("site", &r.site))
    }

    pub(super) fn agent(&self, r: &CheckResult) -> Result<AgentIds, StepError> {
        self.agents
            .get(&(r.agent.as_str(), location_label(r)))
            .copied()
            .ok_or_else(|| missing("agent", &r.agent))
    }

    pub(super) fn error_kind(&self, row: &Row) -> Result<Option<i16>, StepError> {
        row.error_kind()
            .map(|name| {
                self.kinds
                    .get(name)
                    .copied()
                    .ok_or_else(|| missing("error kind", name))
            })
            .transpose()
    }
}

fn missing(what: &str, name: &str) -> StepError {
    StepError::Data(format!("no id for {what} `{name}` after creating it"))
}

/// Creates the batch's new sites, then locks all its sites in id order (so sinks that
/// overlap during a rebalance serialise per site and cannot deadlock); returns their ids.
async fn lock_sites<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
) -> Result<FxHashMap<&'a str, i32>, StepError> {
    // Per site: earliest start and a URL, for a site seen for the first time. Hashed, then
    // sorted: a batch has many rows per site, and a tree would compare names for each
    // (Fx: these maps are looked up for every row; names come from our own agents).
    let mut first: FxHashMap<&str, (DateTime<Utc>, &str)> = FxHashMap::default();
    for row in rows {
        let r = &row.result;
        let entry = first
            .entry(r.site.as_str())
            .or_insert((r.started_at, r.url.as_str()));
        if r.started_at < entry.0 {
            *entry = (r.started_at, r.url.as_str());
        }
    }
    let mut first: Vec<(&str, (DateTime<Utc>, &str))> = first.into_iter().collect();
    first.sort_unstable_by_key(|(name, _)| *name);
    let names: Vec<&str> = first.iter().map(|(name, _)| *name).collect();
    let urls: Vec<&str> = first.iter().map(|(_, (_, url))| *url).collect();
    let starts: Vec<DateTime<Utc>> = first.iter().map(|(_, (at, _))| *at).collect();
    tx.execute(
        "INSERT INTO sites (name, url, first_seen, last_seen)
         SELECT n.name, n.url, n.first, n.first
         FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS n(name, url, first)
         WHERE NOT EXISTS (SELECT 1 FROM sites s WHERE s.name = n.name)
         ON CONFLICT (name) DO NOTHING",
        &[&names, &urls, &starts],
    )
    .await?;
    let locked = tx
        .query(
            "SELECT id, name FROM sites WHERE name = ANY($1) ORDER BY id FOR UPDATE",
            &[&names],
        )
        .await?;
    let ids: HashMap<String, i32> = locked.iter().map(|r| (r.get(1), r.get(0))).collect();
    Ok(names
        .into_iter()
        .filter_map(|name| ids.get(name).map(|id| (name, *id)))
        .collect())
}

/// The batch's agents (with their locations), created where missing.
async fn agents<'a>(
    tx: &Transaction<'_>,
    rows: &'a [Row],
) -> Result<FxHashMap<(&'a str, Option<&'a str>), AgentIds>, StepError> {
    let wanted: FxHashSet<(&str, Option<&str>)> = rows
        .iter()
        .map(|row| (row.result.agent.as_str(), location_label(&row.result)))
        .collect();
    let mut wanted: Vec<(&str, Option<&str>)> = wanted.into_iter().collect();
    wanted.sort_unstable();
    let names: Vec<&str> = wanted.iter().map(|(name, _)| *name).collect();
    let locations: Vec<Option<&str>> = wanted.iter().map(|(_, location)| *location).collect();
    tx.execute(
        "INSERT INTO locations (name)
         SELECT DISTINCT coalesce(w.location, w.name)
         FROM unnest($1::text[], $2::text[]) AS w(name, location)
         WHERE NOT EXISTS (SELECT 1 FROM locations l WHERE l.name = coalesce(w.location, w.name))
         ON CONFLICT (name) DO NOTHING",
        &[&names, &locations],
    )
    .await?;
    tx.execute(
        "INSERT INTO agents (name, location, location_id)
         SELECT w.name, w.location, l.id
         FROM unnest($1::text[], $2::text[]) AS w(name, location)
         JOIN locations l ON l.name = coalesce(w.location, w.name)
         WHERE NOT EXISTS (SELECT 1 FROM agents a
                           WHERE a.name = w.name AND coalesce(a.location, '') = coalesce(w.location, ''))
         ON CONFLICT (name, (coalesce(location, ''))) DO NOTHING",
        &[&names, &locations],
    )
    .await?;
    let found = tx
        .query(
            "SELECT a.name, a.location, a.id, a.location_id
             FROM agents a
             JOIN unnest($1::text[], $2::text[]) AS w(name, location)
               ON a.name = w.name AND coalesce(a.location, '') = coalesce(w.location, '')",
            &[&names, &locations],
        )
        .await?;
    let ids: HashMap<(String, Option<String>), AgentIds> = found
        .iter()
        .map(|r| {
            (
                (r.get(0), r.get(1)),
                AgentIds {
                    agent: r.get(2),
                    location: r.get(3),
                },
            )
        })
        .collect();
    Ok(wanted
        .into_iter()
        .filter_map(|(name, location)| {
            let key = (name.to_string(), location.map(str::to_string));
            ids.get(&key).map(|id| ((name, location), *id))
        })
        .collect())
}

/// The ids of the batch's error kinds, created where missing (a newer agent's kind).
async fn error_kinds(
    tx: &Transaction<'_>,
    rows: &[Row],
) -> Result<HashMap<String, i16>, StepError> {
    let names: FxHashSet<&str> = rows.iter().filter_map(Row::error_kind).collect();
    if names.is_empty() {
        return Ok(HashMap::new());
    }
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    tx.execute(
        "INSERT INTO error_kinds (name)
         SELECT n FROM unnest($1::text[]) AS n
         WHERE NOT EXISTS (SELECT 1 FROM error_kinds k WHERE k.name = n)
         ON CONFLICT (name) DO NOTHING",
        &[&names],
    )
    .await?;
    Ok(tx
        .query(
            "SELECT name, id FROM error_kinds WHERE name = ANY($1)",
            &[&names],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}
