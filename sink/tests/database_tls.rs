//! TLS to PostgreSQL against the real server: `require` encrypts, `disable` does not,
//! `verify-full` accepts the server's certificate only from the right CA and host.
//! Needs the test server to have `ssl = on` (Debian's default, with its snakeoil
//! certificate issued to `localhost`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

mod support;

use std::path::PathBuf;

use sitewatch_sink::database::{Database, SslMode};
use sitewatch_tests::pg_cluster::Cluster;
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

    // The default, `prefer`, encrypts when the server offers TLS (this one does).
    let db = Database::new(URL, None, None).unwrap();
    assert_eq!(db.ssl_mode(), SslMode::Prefer);
    assert!(encrypted(&db.connect_once().await.unwrap()).await);
}

#[tokio::test]
async fn verify_full_without_a_ca_file_still_checks_the_certificate() {
    // The system's roots instead of a CA file (Debian lists the server's snakeoil
    // certificate among them, other systems do not): either the chain or, connecting by IP
    // to a certificate that names `localhost`, the name is refused, and the error says so.
    let db = Database::new(URL, Some(SslMode::VerifyFull), None).unwrap();
    let err = db.connect_once().await.err().unwrap();
    let mut text = err.to_string();
    let mut cause = std::error::Error::source(&err);
    while let Some(e) = cause {
        text = format!("{text}: {e}");
        cause = e.source();
    }
    assert!(text.contains("certificate was refused"), "{text}");
}

#[tokio::test]
async fn a_ca_file_without_certificates_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    let err = Database::new(URL, Some(SslMode::VerifyCa), Some(&empty))
        .err()
        .unwrap();
    assert!(err.to_string().contains("empty.pem"), "{err}");
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

#[tokio::test]
async fn scram_over_tls_binds_the_channel_to_the_server_certificate() {
    // A private server with its own certificate, where `app` logs in with SCRAM over TLS.
    let cluster = Cluster::start();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    cluster.write_private("server.crt", &cert.cert.pem());
    cluster.write_private("server.key", &cert.key_pair.serialize_pem());
    cluster.configure(
        "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n\
         password_encryption = 'scram-sha-256'",
        "local all all trust\n\
         hostssl all app 127.0.0.1/32 scram-sha-256\n\
         host all postgres 127.0.0.1/32 trust\n",
    );
    cluster.restart();
    let admin = support::connect(&cluster.params("postgres")).await;
    admin
        .batch_execute("CREATE ROLE app LOGIN PASSWORD 'secret'")
        .await
        .unwrap();

    // `channel_binding=require`: the login fails unless the client sends the hash of the
    // server's certificate (SCRAM-SHA-256-PLUS) and the server finds it right.
    let url = |password: &str| {
        format!(
            "postgres://app:{password}@127.0.0.1:{}/postgres?channel_binding=require",
            cluster.port
        )
    };
    let db = Database::new(&url("secret"), None, None).unwrap();
    let client = db.connect_once().await.unwrap();
    assert!(encrypted(&client).await);
    // SCRAM really ran: a wrong password is refused.
    let wrong = Database::new(&url("wrong"), None, None).unwrap();
    assert!(wrong.connect_once().await.is_err());
}
