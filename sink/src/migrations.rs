//! Versioned schema migrations (SQL files embedded at build time), applied at start in one
//! transaction under an advisory lock, so several sinks may start at once.

use tokio_postgres::Client;

/// Lock key serialising migrations across sinks.
const MIGRATION_LOCK: i64 = 0x5157_6174_6368; // "sitewatch"-ish, fixed forever

/// (version, SQL) in order. Never edit an applied file: add a new one.
const MIGRATIONS: &[(i32, &str)] = &[(1, include_str!("../migrations/0001_init.sql"))];

/// Applies every migration not yet recorded; returns how many were applied.
pub async fn migrate(client: &mut Client) -> Result<usize, tokio_postgres::Error> {
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
    let mut count = 0;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
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
