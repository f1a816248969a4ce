//! What the sink benchmarks share: the plain-COPY reference measured in the same run.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use tokio_postgres::Client;

/// Dumps `results` to a file, empties the sink's tables, and times a plain
/// `COPY results FROM STDIN` of that file: the ceiling for storing those rows.
pub async fn copy_reference(client: &Client, tag: &str) -> Duration {
    let mut data = Vec::new();
    let out = client
        .copy_out("COPY (SELECT * FROM results) TO STDOUT")
        .await
        .unwrap();
    futures::pin_mut!(out);
    while let Some(chunk) = out.next().await {
        data.extend_from_slice(&chunk.unwrap());
    }
    let file = std::env::temp_dir().join(format!("{tag}.copy"));
    std::fs::write(&file, &data).unwrap();
    client
        .batch_execute("TRUNCATE results, site_events")
        .await
        .unwrap();
    let started = Instant::now();
    let bytes = std::fs::read(&file).unwrap();
    let sink = client.copy_in("COPY results FROM STDIN").await.unwrap();
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from(bytes)).await.unwrap();
    sink.close().await.unwrap();
    let took = started.elapsed();
    std::fs::remove_file(&file).ok();
    took
}
