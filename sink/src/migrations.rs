//! Versioned schema migrations (SQL files embedded at build time), applied at start in one
//! transaction under an advisory lock, so several sinks may start at once. A database whose
//! schema is newer than this build knows is refused: an older sink must not write into it.

use tokio_postgres::{Client, Transaction};

use crate::rollups::{self, RollupError};

/// Lock key serialising migrations across sinks.
const MIGRATION_LOCK: i64 = 0x5157_6174_6368; // "sitewatch"-ish, fixed forever

/// (version, SQL) in order. Never edit an applied file: add a new one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_compact_results.sql")),
    (3, include_str!("../migrations/0003_rollups.sql")),
    (4, include_str!("../migrations/0004_verdicts.sql")),
    (5, include_str!("../migrations/0005_alerts.sql")),
    (6, include_str!("../migrations/0006_rollup_cursors.sql")),
    (
        SITE_ROLLUPS,
        include_str!("../migrations/0007_site_rollups.sql"),
    ),
    (8, include_str!("../migrations/0008_fillfactor.sql")),
];

/// The version that adds `rollup_site_daily`, filled from Rust after its SQL (see [`after`]).
pub const SITE_ROLLUPS: i32 = 7;

/// The schema version this build writes.
pub const LATEST: i32 = MIGRATIONS[MIGRATIONS.len() - 1].0;

/// Why the schema cannot be brought to (or is not at) [`LATEST`].
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// PostgreSQL failed or refused a migration.
    #[error("{0}")]
    Db(#[from] tokio_postgres::Error),
    /// A newer sitewatch-sink has migrated this database.
    #[error("the database's schema is version {found}, newer than this sitewatch-sink knows (version {LATEST}); run the newer sink")]
    TooNew {
        /// The database's version.
        found: i32,
    },
    /// A migration's work in Rust failed.
    #[error("{0}")]
    Rollup(#[from] RollupError),
    /// The database has not been migrated to this build's schema.
    #[error("the database's schema is version {found}, this sitewatch-sink reads version {LATEST}; run `sitewatch-sink migrate`")]
    Behind {
        /// The database's version (0: not a sitewatch database).
        found: i32,
    },
}

/// Applies every migration not yet recorded; returns how many were applied.
pub async fn migrate(client: &mut Client) -> Result<usize, MigrationError> {
    migrate_to(client, LATEST).await
}

/// Applies the migrations up to `target` not yet recorded (tests use this to build an
/// older schema); returns how many were applied.
pub async fn migrate_to(client: &mut Client, target: i32) -> Result<usize, MigrationError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if let Some(&found) = applied.iter().filter(|v| **v > LATEST).max() {
        return Err(MigrationError::TooNew { found });
    }
    let mut count = 0;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= target) {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        after(&tx, *version).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        tracing::info!(version, "applied database migration");
        count += 1;
    }
    tx.commit().await?;
    Ok(count)
}

/// What a migration needs done after its SQL that SQL cannot do, in its transaction.
async fn after(tx: &Transaction<'_>, version: i32) -> Result<(), MigrationError> {
    if version == SITE_ROLLUPS {
        // Merging latency sketches needs the sink's sketch code.
        let rows = rollups::site::fill(tx).await?;
        tracing::info!(rows, "per-site daily rollups filled from the daily rollups");
    }
    Ok(())
}

/// Checks, without changing anything, that the database is at [`LATEST`] (for readers such
/// as `report`, which do not migrate).
pub async fn check_current(client: &Client) -> Result<(), MigrationError> {
    let found: i32 = client
        .query_one(
            "SELECT coalesce(max(version), 0) FROM schema_migrations",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(0);
    match found {
        LATEST => Ok(()),
        found if found > LATEST => Err(MigrationError::TooNew { found }),
        found => Err(MigrationError::Behind { found }),
    }
}
