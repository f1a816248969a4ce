//! A uniquely named PostgreSQL database per test, dropped afterwards.

// Compiled into each test binary; not every binary uses every helper.
#![allow(dead_code)]

use tokio_postgres::{Client, NoTls};

pub const SERVER: &str = "host=127.0.0.1 port=5432 user=postgres";

pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = format!("sitewatch_test_{}", uuid::Uuid::now_v7().simple());
        let admin = connect(&format!("{SERVER} dbname=postgres")).await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        TestDb { name }
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

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

pub async fn connect(params: &str) -> Client {
    let (client, conn) = tokio_postgres::connect(params, NoTls).await.unwrap();
    tokio::spawn(conn);
    client
}
