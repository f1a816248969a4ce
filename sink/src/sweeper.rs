//! When and for which sites the consume loop runs the verdict sweep (`verdicts::sweep`):
//! for sites whose results partition this sink owns and has consumed to its end. A sink
//! that is behind on a partition would take its own backlog for silent locations.
//!
//! Where a partition ends comes from librdkafka's statistics (every 5 s): the high
//! watermark and the group's committed offset. Where this sink stands is the later of that
//! committed offset and the offset after the last message it consumed since.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{Consumer, ConsumerContext};
use rdkafka::Statistics;
use tokio::time::Instant;

/// How often the sweep looks for silent locations.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Statistics older than this are not trusted (librdkafka sends them every 5 s).
const STATS_FRESH_FOR: Duration = Duration::from_secs(15);

/// (committed offset, high watermark) per (topic, partition).
type Ends = HashMap<(String, i32), (i64, i64)>;

/// The latest statistics per (topic, partition): committed offset and high watermark.
#[derive(Debug, Default)]
pub struct PartitionEnds {
    latest: Mutex<Option<(Instant, Ends)>>,
}

impl PartitionEnds {
    /// Keeps what `statistics` say about the partitions this consumer wants.
    pub fn update(&self, statistics: &Statistics) {
        let ends = statistics
            .topics
            .iter()
            .flat_map(|(topic, t)| t.partitions.values().map(move |p| (topic, p)))
            .filter(|(_, p)| p.partition >= 0 && p.desired)
            .map(|(topic, p)| {
                (
                    (topic.clone(), p.partition),
                    (p.committed_offset, p.hi_offset),
                )
            })
            .collect();
        if let Ok(mut latest) = self.latest.lock() {
            *latest = Some((Instant::now(), ends));
        }
    }

    fn get(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        let latest = self.latest.lock().ok()?;
        let (at, ends) = latest.as_ref()?;
        if at.elapsed() > STATS_FRESH_FOR {
            return None;
        }
        ends.get(&(topic.to_string(), partition)).copied()
    }
}

/// Where this sink stands in each results partition it owns.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    /// The assignment the positions belong to.
    assigned: BTreeSet<i32>,
    /// Next offset to consume per partition, from the messages consumed.
    next: HashMap<i32, i64>,
}

impl Positions {
    /// A message of `partition` at `offset` was consumed.
    pub(crate) fn consumed(&mut self, partition: i32, offset: i64) {
        self.next.insert(partition, offset + 1);
    }

    /// The owned partitions of `topic` consumed to their end. Call only with nothing
    /// consumed left unstored.
    pub(crate) fn caught_up<C, X>(
        &mut self,
        consumer: &C,
        ends: &PartitionEnds,
        topic: &str,
    ) -> Vec<i32>
    where
        C: Consumer<X>,
        X: ConsumerContext,
    {
        let Ok(assignment) = consumer.assignment() else {
            return Vec::new();
        };
        let assigned: BTreeSet<i32> = assignment
            .elements_for_topic(topic)
            .iter()
            .map(|e| e.partition())
            .collect();
        if assigned != self.assigned {
            // Another owner may have moved a partition on meanwhile: positions are relearned.
            self.next.clear();
            self.assigned = assigned.clone();
        }
        assigned
            .into_iter()
            .filter(|&p| match ends.get(topic, p) {
                Some((committed, high)) if high >= 0 => {
                    let next = self.next.get(&p).copied().unwrap_or(-1);
                    committed.max(next) >= high
                }
                _ => false,
            })
            .collect()
    }
}
