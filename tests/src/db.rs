//! A uniquely named PostgreSQL database per test on the local server, dropped afterwards.

use tokio_postgres::{Client, NoTls};

/// The local server (trust auth).
pub const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres";

/// A database that exists for one test.
pub struct TestDb {
    /// Its name.
    pub name: String,
}

impl TestDb {
    /// Creates a new, empty database.
    pub async fn create() -> TestDb {
        let name = format!("sitewatch_test_{}", uuid::Uuid::now_v7().simple());
        let admin = connect(&format!("{SERVER} dbname=postgres")).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDb { name }
    }

    /// Its `postgres://` URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    /// A new connection to it.
    pub async fn client(&self) -> Client {
        connect(&format!("{SERVER} dbname={}", self.name)).await
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop from a plain thread: the test's runtime may be shutting down.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let admin = connect(&format!("{SERVER} dbname=postgres")).await;
                let _ = admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
            });
        })
        .join();
    }
}

/// Connects with `params` (libpq key=value form) and drives the connection in the background.
pub async fn connect(params: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(params, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}
