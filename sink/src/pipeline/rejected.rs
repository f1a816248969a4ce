//! Messages that did not decode, kept in `rejected_messages` with where they came from.

use tokio_postgres::Transaction;

use super::batch::Rejected;

/// Inserts the batch's rejected messages; returns how many.
pub(super) async fn insert(
    tx: &Transaction<'_>,
    rejected: &[Rejected],
) -> Result<u64, tokio_postgres::Error> {
    if rejected.is_empty() {
        return Ok(0);
    }
    let topic: Vec<&str> = rejected.iter().map(|r| r.topic.as_str()).collect();
    let partition: Vec<i32> = rejected.iter().map(|r| r.partition).collect();
    let offset: Vec<i64> = rejected.iter().map(|r| r.offset).collect();
    let error: Vec<&str> = rejected.iter().map(|r| r.error.as_str()).collect();
    let payload: Vec<&[u8]> = rejected.iter().map(|r| r.payload.as_slice()).collect();
    tx.execute(
        "INSERT INTO rejected_messages (topic, kafka_partition, kafka_offset, error, payload)
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::text[], $5::bytea[])",
        &[&topic, &partition, &offset, &error, &payload],
    )
    .await
}
