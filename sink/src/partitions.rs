//! Range partitions, created ahead of time and on demand for a batch's dates, dropped
//! whole once older than a cut-off: `results` by day (`results_YYYYMMDD`) and
//! `rollup_hourly` by month (`rollup_hourly_YYYYMM`).

use std::collections::BTreeSet;

use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use tokio_postgres::{Client, GenericClient};

/// Serialises partition DDL across sinks (CREATE IF NOT EXISTS still races otherwise).
const PARTITION_LOCK: i64 = 0x5157_7061_7274;

/// How a table is partitioned.
#[derive(Debug)]
pub struct Scheme {
    /// The partitioned table.
    pub table: &'static str,
    /// Whether a partition holds a month (else a day).
    monthly: bool,
    /// Storage parameters of a new partition (`WITH (…)`), if any.
    with: Option<&'static str>,
}

/// `results`, one partition per day.
pub const RESULTS: Scheme = Scheme {
    table: "results",
    monthly: false,
    with: None,
};

/// `rollup_hourly`, one partition per month, with room on each page for the in-place (HOT)
/// updates the batches make (as migration 8 gives the partitions made before it).
pub const ROLLUP_HOURLY: Scheme = Scheme {
    table: "rollup_hourly",
    monthly: true,
    with: Some("fillfactor = 80"),
};

impl Scheme {
    /// The first day of the partition holding `day`.
    fn start(&self, day: NaiveDate) -> NaiveDate {
        if self.monthly {
            day.with_day(1).unwrap_or(day)
        } else {
            day
        }
    }

    /// The first day after the partition starting on `start`.
    fn end(&self, start: NaiveDate) -> NaiveDate {
        let next = if self.monthly {
            start.checked_add_months(Months::new(1))
        } else {
            start.checked_add_days(Days::new(1))
        };
        next.unwrap_or(start)
    }

    /// The partition's name.
    fn name(&self, start: NaiveDate) -> String {
        let format = if self.monthly { "%Y%m" } else { "%Y%m%d" };
        format!("{}_{}", self.table, start.format(format))
    }

    /// The first day of the partition called `name`, if it is one of this table's.
    pub fn parse(&self, name: &str) -> Option<NaiveDate> {
        let suffix = name.strip_prefix(self.table)?.strip_prefix('_')?;
        if self.monthly {
            NaiveDate::parse_from_str(&format!("{suffix}01"), "%Y%m%d").ok()
        } else {
            NaiveDate::parse_from_str(suffix, "%Y%m%d").ok()
        }
    }
}

/// Makes sure a partition exists for each date (cheap when they all do).
pub async fn ensure<C: GenericClient>(
    client: &C,
    scheme: &Scheme,
    days: impl IntoIterator<Item = NaiveDate>,
) -> Result<(), tokio_postgres::Error> {
    let starts: BTreeSet<NaiveDate> = days.into_iter().map(|d| scheme.start(d)).collect();
    let mut locked = false;
    for start in starts {
        let table = scheme.name(start);
        if exists(client, &table).await? {
            continue;
        }
        if !locked {
            client
                .execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
                .await?;
            locked = true;
        }
        let end = scheme.end(start);
        let with = scheme
            .with
            .map_or_else(String::new, |options| format!(" WITH ({options})"));
        // Names, dates and options are formatted by us, never user input.
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} PARTITION OF {}
                 FOR VALUES FROM ('{start}T00:00:00Z') TO ('{end}T00:00:00Z'){with}",
                scheme.table
            ))
            .await?;
        tracing::info!(partition = %table, "created partition");
    }
    Ok(())
}

/// Makes sure `results` and `rollup_hourly` have partitions for each day (cheap when they
/// all do), creating missing ones in a transaction of their own. A batch does this before
/// its own transaction: creating a partition locks the parent table until commit, which a
/// batch holding site locks must never do while another waits for those sites.
pub async fn ensure_days(
    client: &mut Client,
    days: impl IntoIterator<Item = NaiveDate>,
) -> Result<(), tokio_postgres::Error> {
    // A batch's rows mostly share a day: skip runs of one day before the set.
    let mut set = BTreeSet::new();
    let mut last = None;
    for day in days {
        if last != Some(day) {
            set.insert(day);
            last = Some(day);
        }
    }
    let days = set;
    let mut missing = Vec::new();
    for scheme in [&RESULTS, &ROLLUP_HOURLY] {
        let starts: BTreeSet<NaiveDate> = days.iter().map(|d| scheme.start(*d)).collect();
        for start in starts {
            if !exists(&*client, &scheme.name(start)).await? {
                missing.push((scheme, start));
            }
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let tx = client.transaction().await?;
    for (scheme, start) in missing {
        ensure(&tx, scheme, [start]).await?;
    }
    tx.commit().await
}

async fn exists<C: GenericClient>(client: &C, table: &str) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .get(0))
}

/// Creates partitions from yesterday through `ahead` days from today, in one transaction.
pub async fn create_ahead(client: &mut Client, ahead: u64) -> Result<(), tokio_postgres::Error> {
    let today = Utc::now().date_naive();
    let start = today.checked_sub_days(Days::new(1)).unwrap_or(today);
    let days: Vec<NaiveDate> = (0..=ahead + 1)
        .filter_map(|d| start.checked_add_days(Days::new(d)))
        .collect();
    ensure_days(client, days).await
}

/// Drops the partitions of `scheme` that end on or before `cutoff` (hold nothing from
/// `cutoff` on); returns their names.
pub async fn drop_before(
    client: &mut Client,
    scheme: &Scheme,
    cutoff: NaiveDate,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let ended = ending_by(&*client, scheme, cutoff).await?;
    for table in &ended {
        client
            .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
            .await?;
        tracing::info!(partition = %table, "dropped partition past retention");
    }
    Ok(ended)
}

/// The partitions of `scheme` that end on or before `cutoff` (hold nothing from `cutoff`
/// on), oldest first.
pub async fn ending_by<C: GenericClient>(
    client: &C,
    scheme: &Scheme,
    cutoff: NaiveDate,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let mut ended: Vec<(NaiveDate, String)> = children(client, scheme)
        .await?
        .into_iter()
        .filter_map(|name| Some((scheme.parse(&name)?, name)))
        .filter(|(start, _)| scheme.end(*start) <= cutoff)
        .collect();
    ended.sort();
    Ok(ended.into_iter().map(|(_, name)| name).collect())
}

/// The first day of the oldest partition of `scheme`, if it has any.
pub async fn oldest<C: GenericClient>(
    client: &C,
    scheme: &Scheme,
) -> Result<Option<NaiveDate>, tokio_postgres::Error> {
    Ok(children(client, scheme)
        .await?
        .iter()
        .filter_map(|name| scheme.parse(name))
        .min())
}

/// The names of `scheme`'s partitions.
async fn children<C: GenericClient>(
    client: &C,
    scheme: &Scheme,
) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT c.relname::text FROM pg_inherits i
             JOIN pg_class c ON c.oid = i.inhrelid
             JOIN pg_class p ON p.oid = i.inhparent
             WHERE p.relname = $1",
            &[&scheme.table],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}
