//! Ad-hoc silences, stored in PostgreSQL (`sitewatch-sink silence ...`): while one
//! matches a site (its name, or `tag:NAME` for a tag it has) and has neither ended nor
//! been expired, no trigger, reminder or flapping notice is written for it (`outbox`).

use chrono::{DateTime, Utc};
use tokio_postgres::GenericClient;

/// One silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    /// `silences.id`.
    pub id: i64,
    /// A site name or `tag:NAME`.
    pub matcher: String,
    /// Why.
    pub reason: Option<String>,
    /// When made.
    pub created_at: DateTime<Utc>,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
    /// When it was expired early.
    pub expired_at: Option<DateTime<Utc>>,
}

impl Silence {
    /// Whether it silences at `now`.
    pub fn active(&self, now: DateTime<Utc>) -> bool {
        self.expired_at.is_none() && self.ends_at > now
    }
}

/// Why a silence cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    /// The database refused or failed.
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    /// The matcher is empty or `tag:` without a name.
    #[error("`{0}` is neither a site name nor tag:NAME")]
    Matcher(String),
    /// The duration is zero or too long.
    #[error("a silence must last longer than 0s (and less than 100 years)")]
    Duration,
}

/// Silences `matcher` for `duration` from now; returns it.
pub async fn add<C: GenericClient>(
    client: &C,
    matcher: &str,
    duration: std::time::Duration,
    reason: Option<&str>,
) -> Result<Silence, SilenceError> {
    let matcher = matcher.trim();
    if matcher.is_empty()
        || matcher
            .strip_prefix("tag:")
            .is_some_and(|t| t.trim().is_empty())
    {
        return Err(SilenceError::Matcher(matcher.to_string()));
    }
    let seconds = duration.as_secs_f64();
    if seconds <= 0.0 || seconds > 100.0 * 365.0 * 86400.0 {
        return Err(SilenceError::Duration);
    }
    let row = client
        .query_one(
            "INSERT INTO silences (matcher, reason, ends_at)
             VALUES ($1, $2, now() + $3::float8 * interval '1 second')
             RETURNING id, matcher, reason, created_at, ends_at, expired_at",
            &[&matcher, &reason, &seconds],
        )
        .await?;
    Ok(silence(&row))
}

/// Every silence still active, and those ended within the last day, newest first.
pub async fn list<C: GenericClient>(client: &C) -> Result<Vec<Silence>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT id, matcher, reason, created_at, ends_at, expired_at FROM silences
             WHERE coalesce(expired_at, ends_at) > now() - interval '1 day'
             ORDER BY id DESC",
            &[],
        )
        .await?;
    Ok(rows.iter().map(silence).collect())
}

/// Ends silence `id` now; false if there is no such active silence.
pub async fn expire<C: GenericClient>(client: &C, id: i64) -> Result<bool, tokio_postgres::Error> {
    let n = client
        .execute(
            "UPDATE silences SET expired_at = now()
             WHERE id = $1 AND expired_at IS NULL AND ends_at > now()",
            &[&id],
        )
        .await?;
    Ok(n > 0)
}

fn silence(r: &tokio_postgres::Row) -> Silence {
    Silence {
        id: r.get(0),
        matcher: r.get(1),
        reason: r.get(2),
        created_at: r.get(3),
        ends_at: r.get(4),
        expired_at: r.get(5),
    }
}
