//! TLS to PostgreSQL against the real server: `require` encrypts, `disable` does not,
//! `verify-full` accepts the server's certificate only from the right CA and host.
//! Needs the test server to have `ssl = on` (Debian's default, with its snakeoil
//! certificate issued to `localhost`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::path::PathBuf;

use sitewatch_sink::database::{Database, SslMode};
use tokio_postgres::Client;

const URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

async fn encrypted(client: &Client) -> bool {
    client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// The server's own certificate (self-signed): the CA that signs it.
async fn server_cert() -> PathBuf {
    let admin = support::connect(&format!("{} dbname=postgres", support::SERVER)).await;
    let on: String = admin.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(on, "on", "the test PostgreSQL server must have ssl = on");
    let file: String = admin
        .query_one("SHOW ssl_cert_file", &[])
        .await
        .unwrap()
        .get(0);
    PathBuf::from(file)
}

#[tokio::test]
async fn require_encrypts_and_disable_does_not() {
    let db = Database::new(&format!("{URL}?sslmode=require"), None, None).unwrap();
    assert_eq!(db.ssl_mode(), SslMode::Require);
    assert!(encrypted(&db.connect_once().await.unwrap()).await);

    let db = Database::new(URL, Some(SslMode::Disable), None).unwrap();
    assert!(!encrypted(&db.connect_once().await.unwrap()).await);
}

#[tokio::test]
async fn verify_full_checks_the_ca_and_the_host_name() {
    let ca = server_cert().await;
    // The certificate names `localhost`: the right CA and host connect, encrypted.
    let good = Database::new(
        "postgres://postgres@localhost:5432/postgres?sslmode=verify-full",
        None,
        Some(&ca),
    )
    .unwrap();
    assert_eq!(good.ssl_mode(), SslMode::VerifyFull);
    assert!(encrypted(&good.connect_once().await.unwrap()).await);

    // Same CA, but connecting by IP: the name does not match.
    let wrong_host = Database::new(URL, Some(SslMode::VerifyFull), Some(&ca)).unwrap();
    let err = wrong_host.connect_once().await.err().unwrap();
    assert!(
        format!("{err:?}").to_lowercase().contains("certificate"),
        "{err:?}"
    );
    // `verify-ca` does not check the name.
    let ca_only = Database::new(URL, Some(SslMode::VerifyCa), Some(&ca)).unwrap();
    assert!(encrypted(&ca_only.connect_once().await.unwrap()).await);

    // A CA that did not sign the server's certificate is refused, not downgraded.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(&other, cert.cert.pem()).unwrap();
    let stranger = Database::new(
        "postgres://postgres@localhost:5432/postgres",
        Some(SslMode::VerifyFull),
        Some(&other),
    )
    .unwrap();
    assert!(stranger.connect_once().await.is_err());
}
