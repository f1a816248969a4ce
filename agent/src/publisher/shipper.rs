//! The shipper: sends spooled results to Kafka in spool order, keeps track of which are
//! confirmed, and goes back over failed ones (in order) once the broker is back.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use tokio::sync::oneshot;
use tokio::time::{sleep_until, Instant, MissedTickBehavior};

use super::kafka::{KafkaPublisher, QUEUE_FULL_BACKOFF};
use super::KafkaStats;
use crate::spool::{Record, SpoolAcks, SpoolReader};

/// Results handed to librdkafka and not yet settled, at most. Bounds memory during an
/// outage: the rest waits on disk.
const WINDOW: usize = 10_000;
/// First pause before failed deliveries are sent again; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How often the confirmed position is written to disk (and so how much a crash replays).
const PERSIST_EVERY: Duration = Duration::from_millis(500);

/// Delivery state of the records between the confirmed position and the newest sent.
#[derive(Default)]
struct Window {
    /// Lowest sequence not yet confirmed.
    base: u64,
    /// `slots[i]` is the state of `base + i`.
    slots: VecDeque<Slot>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    InFlight,
    Failed,
    /// Confirmed, or gone for good (dropped by the cap, or undeliverable).
    Done,
}

impl Window {
    fn sent(&mut self, seq: u64) {
        if self.slots.is_empty() {
            self.base = self.base.max(seq);
        }
        let Some(i) = seq.checked_sub(self.base) else {
            return;
        };
        let i = usize::try_from(i).unwrap_or(usize::MAX);
        while self.slots.len() < i {
            self.slots.push_back(Slot::Done);
        }
        match self.slots.get_mut(i) {
            Some(slot) => *slot = Slot::InFlight,
            None => self.slots.push_back(Slot::InFlight),
        }
    }

    /// Records the outcome of `seq`; returns whether the confirmed position moved.
    fn settle(&mut self, seq: u64, slot: Slot) -> bool {
        if let Some(s) = seq
            .checked_sub(self.base)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.slots.get_mut(i))
        {
            *s = slot;
        }
        let before = self.base;
        while self.slots.front() == Some(&Slot::Done) {
            self.slots.pop_front();
            self.base += 1;
        }
        self.base != before
    }

    /// Everything below `floor` is gone (the spool cap dropped it).
    fn raise_floor(&mut self, floor: u64) {
        while self.base < floor {
            if self.slots.pop_front().is_none() {
                self.base = floor;
                break;
            }
            self.base += 1;
        }
    }

    fn done(&self, seq: u64) -> bool {
        match seq.checked_sub(self.base) {
            None => true,
            Some(i) => usize::try_from(i)
                .ok()
                .and_then(|i| self.slots.get(i))
                .is_some_and(|s| *s == Slot::Done),
        }
    }
}

/// What a delivery report means for its record.
enum Delivery {
    Confirmed,
    /// Send again later (broker down, timed out, ...); `true`: with a new producer.
    Retry(String, bool),
    /// The broker will never take it (too large, invalid): log and skip.
    Undeliverable(String),
}

fn classify(error: &KafkaError) -> Delivery {
    use RDKafkaErrorCode as C;
    match error.rdkafka_error_code() {
        Some(
            C::MessageSizeTooLarge
            | C::InvalidMessageSize
            | C::InvalidMessage
            | C::InvalidRecord
            | C::InvalidArgument,
        ) => Delivery::Undeliverable(error.to_string()),
        Some(
            C::ProducerFenced
            | C::InvalidProducerEpoch
            | C::UnknownProducerId
            | C::OutOfOrderSequenceNumber
            | C::InvalidProducerIdMapping,
        ) => Delivery::Retry(error.to_string(), true),
        _ => Delivery::Retry(error.to_string(), false),
    }
}

type InFlight = FuturesUnordered<futures::future::BoxFuture<'static, (u64, Delivery)>>;

pub(super) struct Shipper {
    kafka: Arc<KafkaPublisher>,
    stats: Arc<KafkaStats>,
    reader: SpoolReader,
    acks: SpoolAcks,
    window: Window,
    in_flight: InFlight,
    /// A record librdkafka's full queue refused, sent again at `retry_at`.
    held: Option<Record>,
    /// While set, nothing new is sent until then (after failures, or a full queue).
    retry_at: Option<Instant>,
    /// Deliveries failed: once nothing is in flight, go back to the oldest unconfirmed.
    rewind: bool,
    /// The broker refused the producer's id: replace the producer before sending again.
    fenced: bool,
    backoff: Duration,
}

impl Shipper {
    pub(super) fn new(kafka: Arc<KafkaPublisher>, reader: SpoolReader, acks: SpoolAcks) -> Shipper {
        Shipper {
            stats: kafka.stats(),
            kafka,
            reader,
            acks,
            window: Window::default(),
            in_flight: FuturesUnordered::new(),
            held: None,
            retry_at: None,
            rewind: false,
            fenced: false,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Ships until `stop` brings a deadline, then until caught up or the deadline passes.
    pub(super) async fn run(mut self, mut stop: oneshot::Receiver<Instant>) {
        let mut deadline: Option<Instant> = None;
        let mut persist = tokio::time::interval(PERSIST_EVERY);
        persist.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let caught_up = self.fill();
            if let Some(deadline) = deadline {
                if (caught_up && self.in_flight.is_empty()) || Instant::now() >= deadline {
                    break;
                }
            }
            let waiting = self.retry_at.is_some();
            let retry_at = self.retry_at.unwrap_or_else(Instant::now);
            let room = self.window.slots.len() < WINDOW;
            tokio::select! {
                Some((seq, delivery)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.stats.pending.fetch_sub(1, Ordering::Relaxed);
                    self.settle(seq, delivery);
                }
                _ = self.reader.appended(), if !waiting && room => {}
                _ = sleep_until(retry_at), if waiting && (!self.rewind || self.in_flight.is_empty()) => {
                    self.resume();
                }
                _ = persist.tick() => self.persist(),
                at = &mut stop, if deadline.is_none() => {
                    deadline = Some(at.unwrap_or_else(|_| Instant::now()));
                }
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
            }
        }
        self.persist();
    }

    /// Sends records while the window has room; returns whether the spool is caught up.
    fn fill(&mut self) -> bool {
        if self.retry_at.is_some() {
            return false;
        }
        self.window.raise_floor(self.acks.acked());
        while self.window.slots.len() < WINDOW {
            let record = match self.held.take() {
                Some(record) => record,
                None => match self.reader.read_next() {
                    Ok(Some(record)) => record,
                    Ok(None) => return true,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot read the spool; retrying");
                        self.pause();
                        return false;
                    }
                },
            };
            if self.window.done(record.seq) {
                continue;
            }
            let seq = record.seq;
            match self.kafka.enqueue(&record.key, &record.value) {
                Ok(delivery) => {
                    self.window.sent(seq);
                    self.stats.pending.fetch_add(1, Ordering::Relaxed);
                    self.in_flight.push(
                        async move {
                            let delivery = match delivery.await {
                                Ok(Ok(_)) => Delivery::Confirmed,
                                Ok(Err((e, _))) => classify(&e),
                                Err(_) => Delivery::Retry("kafka producer went away".into(), false),
                            };
                            (seq, delivery)
                        }
                        .boxed(),
                    );
                }
                Err(None) => {
                    // librdkafka's own queue is full: try this record again shortly.
                    self.held = Some(record);
                    self.retry_at = Some(Instant::now() + QUEUE_FULL_BACKOFF);
                    return false;
                }
                Err(Some(e)) => {
                    self.window.sent(seq);
                    self.settle(seq, classify(&e));
                    if self.retry_at.is_some() {
                        return false;
                    }
                }
            }
        }
        false
    }

    fn settle(&mut self, seq: u64, delivery: Delivery) {
        let slot = match delivery {
            Delivery::Confirmed => {
                self.stats.delivered.fetch_add(1, Ordering::Relaxed);
                self.backoff = FIRST_BACKOFF;
                Slot::Done
            }
            Delivery::Undeliverable(why) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(seq, error = %why, "kafka will never accept this result: dropping it");
                Slot::Done
            }
            Delivery::Retry(why, fenced) => {
                self.stats.failed.fetch_add(1, Ordering::Relaxed);
                self.fenced |= fenced;
                if !self.rewind {
                    tracing::warn!(error = %why, retry_in = ?self.backoff, "kafka did not confirm results: they will be sent again from the spool");
                    self.rewind = true;
                    self.pause();
                }
                Slot::Failed
            }
        };
        if self.window.settle(seq, slot) {
            self.acks.confirm(self.window.base);
        }
    }

    fn pause(&mut self) {
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + self.backoff);
            self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// After a pause: go back to the oldest unconfirmed record if deliveries failed.
    fn resume(&mut self) {
        self.retry_at = None;
        self.kafka.renew(std::mem::take(&mut self.fenced));
        if self.rewind {
            self.rewind = false;
            self.held = None;
            self.reader.seek(self.window.base);
        }
    }

    fn persist(&self) {
        if let Err(e) = self.acks.persist() {
            tracing::warn!(error = %e, "cannot record the confirmed spool position");
        }
    }
}
