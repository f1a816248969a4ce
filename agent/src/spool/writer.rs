//! Appending results to the spool.
//!
//! Durability: every [`SpoolWriter::flush`] hands the records to the OS, so a process
//! crash (SIGKILL, OOM kill, panic) loses nothing flushed. `fdatasync` runs at most once
//! per [`SYNC_EVERY`] and when a segment is finished, so a power loss or kernel crash can
//! lose the last second; the torn record it may leave is found and skipped on the next start.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::record::encode;
use super::store::{Shared, SpoolError};

/// Longest time flushed records go without an `fdatasync`.
pub const SYNC_EVERY: Duration = Duration::from_secs(1);

/// Appends records; one per spool, owned by the publisher.
pub struct SpoolWriter {
    shared: Arc<Shared>,
    file: BufWriter<File>,
    /// First sequence of the segment being written.
    first: u64,
    /// Bytes in that segment, buffered ones included.
    bytes: u64,
    /// Sequence the next record gets.
    next_seq: u64,
    /// Records appended since the last flush.
    unflushed: usize,
    last_sync: Instant,
    buf: Vec<u8>,
}

impl SpoolWriter {
    pub(super) fn create(shared: Arc<Shared>, next_seq: u64) -> Result<SpoolWriter, SpoolError> {
        let file = new_segment(&shared, next_seq)?;
        Ok(SpoolWriter {
            shared,
            file: BufWriter::with_capacity(256 << 10, file),
            first: next_seq,
            bytes: 0,
            next_seq,
            unflushed: 0,
            last_sync: Instant::now(),
            buf: Vec::with_capacity(4096),
        })
    }

    /// Appends one record (buffered until [`flush`](Self::flush)); returns its sequence.
    pub fn append(&mut self, key: &[u8], value: &[u8]) -> Result<u64, SpoolError> {
        if self.bytes >= self.shared.segment_bytes {
            self.roll()?;
        }
        self.buf.clear();
        encode(key, value, &mut self.buf);
        self.file
            .write_all(&self.buf)
            .map_err(|e| SpoolError::io(&self.shared.segment_path(self.first), e))?;
        self.bytes += self.buf.len() as u64;
        self.unflushed += 1;
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(seq)
    }

    /// Hands appended records to the OS, makes them readable, applies the size cap, and
    /// syncs to disk when [`SYNC_EVERY`] has passed.
    pub fn flush(&mut self) -> Result<(), SpoolError> {
        if self.unflushed == 0 {
            return Ok(());
        }
        let path = self.shared.segment_path(self.first);
        self.file.flush().map_err(|e| SpoolError::io(&path, e))?;
        self.unflushed = 0;
        {
            let mut state = self.shared.lock();
            state.segments.insert(self.first, self.bytes);
            state.readable = self.next_seq;
            self.shared.enforce_cap(&mut state);
        }
        self.shared.appended.notify_one();
        if self.last_sync.elapsed() >= SYNC_EVERY {
            self.sync()?;
        }
        Ok(())
    }

    /// Records appended since the last flush.
    pub fn unflushed(&self) -> usize {
        self.unflushed
    }

    /// Flushes and syncs now (shutdown).
    pub fn close(&mut self) -> Result<(), SpoolError> {
        self.flush()?;
        self.sync()
    }

    fn sync(&mut self) -> Result<(), SpoolError> {
        self.last_sync = Instant::now();
        self.file
            .get_ref()
            .sync_data()
            .map_err(|e| SpoolError::io(&self.shared.segment_path(self.first), e))
    }

    /// Finishes the current segment (flushed and synced) and starts the next.
    fn roll(&mut self) -> Result<(), SpoolError> {
        self.flush()?;
        self.sync()?;
        let file = new_segment(&self.shared, self.next_seq)?;
        self.file = BufWriter::with_capacity(256 << 10, file);
        self.first = self.next_seq;
        self.bytes = 0;
        Ok(())
    }
}

fn new_segment(shared: &Shared, first: u64) -> Result<File, SpoolError> {
    let path = shared.segment_path(first);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| SpoolError::io(&path, e))?;
    // The directory entry must survive a crash too, or the synced data has no name.
    if let Ok(dir) = File::open(&shared.dir) {
        let _ = dir.sync_all();
    }
    shared.lock().segments.entry(first).or_insert(0);
    Ok(file)
}
