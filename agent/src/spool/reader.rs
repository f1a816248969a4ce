//! Reading the spool back in sequence order, from any position.

use std::fs::File;
use std::io::BufReader;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::record::{read_frame, Frame, Record};
use super::store::{Shared, SpoolError};

/// Reads records in order; it never sees a record before its writer flushed it.
pub struct SpoolReader {
    shared: Arc<Shared>,
    /// The open segment: its first sequence, and the sequence its file position is at.
    current: Option<(u64, u64, BufReader<File>)>,
    next: u64,
}

impl SpoolReader {
    pub(super) fn new(shared: Arc<Shared>, next: u64) -> SpoolReader {
        SpoolReader {
            shared,
            current: None,
            next,
        }
    }

    /// Sequence of the record [`read_next`](Self::read_next) returns.
    pub fn position(&self) -> u64 {
        self.next
    }

    /// Moves to `seq` (a rewind after failed deliveries).
    pub fn seek(&mut self, seq: u64) {
        self.next = seq;
    }

    /// Waits until the writer has flushed new records (returns at once if it did since
    /// the last wait).
    pub async fn appended(&self) {
        self.shared.appended.notified().await
    }

    /// The next record, or `None` when the reader has caught up with the writer.
    /// Records lost to the size cap or to damage are skipped (and counted).
    pub fn read_next(&mut self) -> Result<Option<Record>, SpoolError> {
        loop {
            let (readable, segment, following) = {
                let state = self.shared.lock();
                let oldest = state.segments.keys().next().copied();
                if let Some(oldest) = oldest {
                    // The size cap dropped what we were about to read.
                    self.next = self.next.max(oldest);
                }
                let segment = state
                    .segments
                    .range(..=self.next)
                    .next_back()
                    .map(|(&f, _)| f);
                let following = state
                    .segments
                    .range(self.next + 1..)
                    .next()
                    .map(|(&f, _)| f);
                (state.readable, segment, following)
            };
            if self.next >= readable {
                return Ok(None);
            }
            let Some(first) = segment else {
                return Ok(None);
            };
            self.open_at(first)?;
            let Some((_, at, file)) = self.current.as_mut() else {
                return Ok(None);
            };
            let path = self.shared.segment_path(first);
            let frame = read_frame(file).map_err(|e| SpoolError::io(&path, e))?.0;
            match frame {
                Frame::Record(key, value) if *at == self.next => {
                    *at += 1;
                    self.next += 1;
                    return Ok(Some(Record {
                        seq: *at - 1,
                        key,
                        value,
                    }));
                }
                // Still skipping forward to `next` inside this segment.
                Frame::Record(..) => *at += 1,
                Frame::End | Frame::Damaged(_) => {
                    let following = match (following, &frame) {
                        (Some(f), _) => f,
                        // Damage in the segment being written: skip to what is readable.
                        (None, Frame::Damaged(_)) => readable,
                        // Nothing more flushed yet.
                        (None, _) => {
                            self.current = None;
                            return Ok(None);
                        }
                    };
                    let lost = following.saturating_sub(self.next);
                    if let Frame::Damaged(why) = frame {
                        self.shared.stats.damaged.fetch_add(lost, Ordering::Relaxed);
                        tracing::warn!(
                            path = %path.display(),
                            lost,
                            "damaged record in the spool ({why}): skipping the rest of this segment"
                        );
                    }
                    self.next = following;
                    self.current = None;
                }
            }
        }
    }

    /// Makes `current` the segment starting at `first`, positioned at or before `next`.
    fn open_at(&mut self, first: u64) -> Result<(), SpoolError> {
        let reusable = matches!(&self.current, Some((f, at, _)) if *f == first && *at <= self.next);
        if !reusable {
            let path = self.shared.segment_path(first);
            let file = File::open(&path).map_err(|e| SpoolError::io(&path, e))?;
            self.current = Some((first, first, BufReader::with_capacity(64 << 10, file)));
        }
        Ok(())
    }
}
