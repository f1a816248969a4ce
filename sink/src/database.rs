//! Connecting to PostgreSQL: TLS as libpq's `sslmode` means it (including
//! `verify-ca` / `verify-full`, which tokio-postgres does not parse itself), an
//! optional CA file, and retries with backoff.

mod tls;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use tokio_postgres::Client;
use tokio_util::sync::CancellationToken;

/// Longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Longest a pooled reader waits for a connection (to be made, or to come free).
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// How much TLS the connection requires, as in libpq.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS when the server offers it, certificate not checked (libpq's default).
    Prefer,
    /// TLS always, certificate not checked (checked against the CA file when one is given).
    Require,
    /// TLS, certificate signed by a trusted CA.
    VerifyCa,
    /// TLS, certificate signed by a trusted CA and naming the host connected to.
    VerifyFull,
}

/// A database URL or TLS setting that cannot work. Never echoes the URL (it may hold a password).
#[derive(Debug, thiserror::Error)]
pub enum DatabaseConfigError {
    /// The connection string does not parse.
    #[error("the database URL is invalid: {0}")]
    Url(String),
    /// The CA file cannot be read or is not PEM.
    #[error("cannot use `{}` as the database CA: {message}", path.display())]
    Ca {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The TLS library refused the settings.
    #[error("cannot set up TLS to the database: {0}")]
    Tls(String),
    /// The connection pool refused the settings.
    #[error("cannot set up the database connection pool: {0}")]
    Pool(String),
}

/// Where and how to connect; built once, connects any number of times.
#[derive(Clone)]
pub struct Database {
    config: tokio_postgres::Config,
    tls: tls::Connector,
    mode: SslMode,
}

impl Database {
    /// `mode` overrides an `sslmode=` in `url`; without either, `prefer`.
    pub fn new(
        url: &str,
        mode: Option<SslMode>,
        ca: Option<&Path>,
    ) -> Result<Self, DatabaseConfigError> {
        let (url, url_mode) = split_sslmode(url);
        let mode = mode.or(url_mode).unwrap_or(SslMode::Prefer);
        let mut config = tokio_postgres::Config::from_str(&url)
            .map_err(|e| DatabaseConfigError::Url(e.to_string()))?;
        config.ssl_mode(match mode {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let check = match (mode, ca) {
            (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
                tls::Check::Nothing
            }
            // As libpq: `require` with a CA file checks the chain like `verify-ca`.
            (SslMode::Require, Some(_)) | (SslMode::VerifyCa, _) => tls::Check::Chain,
            (SslMode::VerifyFull, _) => tls::Check::ChainAndHost,
        };
        Ok(Database {
            config,
            tls: tls::Connector::new(check, ca)?,
            mode,
        })
    }

    /// The TLS mode in force.
    pub fn ssl_mode(&self) -> SslMode {
        self.mode
    }

    /// One connection attempt; the connection's driver runs on its own task.
    pub async fn connect_once(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "database connection ended");
            }
        });
        Ok(client)
    }

    /// Asks the server to cancel the statement running on the connection `token` came from.
    pub async fn cancel(
        &self,
        token: &tokio_postgres::CancelToken,
    ) -> Result<(), tokio_postgres::Error> {
        token.cancel_query(self.tls.clone()).await
    }

    /// A pool of at most `size` connections (made on demand, checked before reuse) whose
    /// transactions are all read-only: a reader cannot write by mistake, and works with a
    /// database role that may only SELECT.
    pub fn read_only_pool(
        &self,
        size: usize,
    ) -> Result<deadpool_postgres::Pool, DatabaseConfigError> {
        let mut config = self.config.clone();
        let options = match config.get_options() {
            Some(o) if !o.trim().is_empty() => format!("{o} -c default_transaction_read_only=on"),
            _ => "-c default_transaction_read_only=on".to_string(),
        };
        config.options(&options);
        let manager = deadpool_postgres::Manager::from_config(
            config,
            self.tls.clone(),
            deadpool_postgres::ManagerConfig {
                recycling_method: deadpool_postgres::RecyclingMethod::Fast,
            },
        );
        deadpool_postgres::Pool::builder(manager)
            .max_size(size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| DatabaseConfigError::Pool(e.to_string()))
    }

    /// Connects, retrying with backoff until it works or `token` is cancelled.
    pub async fn connect(&self, token: &CancellationToken) -> Option<Client> {
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.connect_once().await {
                Ok(client) => return Some(client),
                Err(e) => {
                    tracing::warn!(
                        error = %sitewatch_checks::causes::chain(&e),
                        retry_in = ?backoff,
                        "cannot connect to the database"
                    );
                    tokio::select! {
                        _ = token.cancelled() => return None,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Takes a libpq `sslmode=verify-ca|verify-full` out of the URL (tokio-postgres
/// rejects them) and returns the URL with `sslmode=require` in its place, plus the mode.
fn split_sslmode(url: &str) -> (String, Option<SslMode>) {
    const KEY: &str = "sslmode=";
    let Some(at) = url.find(KEY) else {
        return (url.to_string(), None);
    };
    let start = at + KEY.len();
    let end = url[start..]
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .map_or(url.len(), |i| start + i);
    let mode = match &url[start..end] {
        "disable" => SslMode::Disable,
        "prefer" | "allow" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        // Leave anything else for tokio-postgres to reject with its own message.
        _ => return (url.to_string(), None),
    };
    let rewritten = format!("{}require{}", &url[..start], &url[end..]);
    (rewritten, Some(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_modes_are_taken_out_of_the_url() {
        let (url, mode) = split_sslmode("postgres://u@db/x?sslmode=verify-full&application_name=a");
        assert_eq!(url, "postgres://u@db/x?sslmode=require&application_name=a");
        assert_eq!(mode, Some(SslMode::VerifyFull));
        let (url, mode) = split_sslmode("host=db sslmode=verify-ca user=u");
        assert_eq!(url, "host=db sslmode=require user=u");
        assert_eq!(mode, Some(SslMode::VerifyCa));
        assert_eq!(split_sslmode("host=db").1, None);
        assert_eq!(
            split_sslmode("host=db sslmode=disable").1,
            Some(SslMode::Disable)
        );
    }

    #[test]
    fn bad_urls_and_ca_files_are_clear_errors_without_the_url() {
        let err = Database::new("postgres://u:secret@db:notaport/x", None, None)
            .err()
            .unwrap();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = Database::new("host=db", None, Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .unwrap();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }
}
