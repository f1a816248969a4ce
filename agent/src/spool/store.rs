//! The spool directory: its lock, its segment files, what has been confirmed and the
//! size cap. [`open`] recovers it after any stop, clean or not.
//!
//! Files: `<first seq, 20 digits>.seg` segments (records in sequence order), `acked`
//! (the lowest sequence number not yet confirmed by Kafka, rewritten atomically), `lock`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

use super::reader::SpoolReader;
use super::record::{read_frame, Frame};
use super::writer::SpoolWriter;

/// Where the spool lives and how much disk it may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolSettings {
    /// Directory (created if missing; one agent at a time).
    pub dir: PathBuf,
    /// Disk the segments may use before the oldest is dropped.
    pub max_bytes: u64,
}

/// Default for `kafka.spool_max_bytes`.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 1 << 30;

/// Why the spool cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Another process holds the directory.
    #[error("spool directory {0} is in use by another sitewatch agent")]
    Locked(PathBuf),
    /// A file operation failed.
    #[error("spool {path}: {source}")]
    Io {
        /// File or directory concerned.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

impl SpoolError {
    pub(super) fn io(path: &Path, source: io::Error) -> SpoolError {
        SpoolError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Counters the agent's `/metrics` reads.
#[derive(Debug, Default)]
pub struct SpoolStats {
    /// Results in the spool not yet confirmed by Kafka.
    pub backlog: AtomicU64,
    /// Bytes of segment files.
    pub bytes: AtomicU64,
    /// Results dropped unsent because the spool was over `spool_max_bytes`.
    pub dropped: AtomicU64,
    /// Results lost to damaged records (torn writes) found when reading.
    pub damaged: AtomicU64,
}

/// State shared by the writer, the reader and whoever confirms deliveries.
pub(super) struct Shared {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// Size at which the writer starts a new segment.
    pub segment_bytes: u64,
    pub state: Mutex<State>,
    /// Woken when new records became readable.
    pub appended: Notify,
    pub stats: Arc<SpoolStats>,
    /// Held for the life of the spool: the OS lock on `lock`.
    _lock: File,
}

pub(super) struct State {
    /// Segment first sequence → bytes in it.
    pub segments: BTreeMap<u64, u64>,
    /// Records below this sequence are whole on disk (readable).
    pub readable: u64,
    /// Lowest sequence not yet confirmed.
    pub acked: u64,
    /// `acked` as last written to the `acked` file.
    pub acked_on_disk: u64,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the bookkeeping half-updated in a way
        // that matters more than stopping would: carry on with what is there.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn segment_path(&self, first: u64) -> PathBuf {
        self.dir.join(format!("{first:020}.seg"))
    }

    /// Drops the oldest segments while over the cap; the active one is never dropped.
    pub fn enforce_cap(&self, state: &mut State) {
        while state.segments.values().sum::<u64>() > self.max_bytes && state.segments.len() > 1 {
            let Some((&first, _)) = state.segments.iter().next() else {
                break;
            };
            state.segments.remove(&first);
            let next = state
                .segments
                .keys()
                .next()
                .copied()
                .unwrap_or(state.readable);
            let lost = next.saturating_sub(first.max(state.acked));
            let path = self.segment_path(first);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a spool segment");
            }
            if lost > 0 {
                self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
                tracing::error!(
                    lost,
                    max_bytes = self.max_bytes,
                    "spool is full: dropped its oldest results unsent"
                );
            }
            state.acked = state.acked.max(next);
        }
        self.publish_stats(state);
    }

    /// Removes segments whose every record is confirmed (never the newest one).
    pub fn remove_confirmed(&self, state: &mut State) {
        loop {
            let mut keys = state.segments.keys();
            let (Some(&first), Some(&next)) = (keys.next(), keys.next()) else {
                break;
            };
            if next > state.acked {
                break;
            }
            state.segments.remove(&first);
            let path = self.segment_path(first);
            if let Err(e) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a spool segment");
            }
        }
        self.publish_stats(state);
    }

    pub fn publish_stats(&self, state: &State) {
        self.stats
            .bytes
            .store(state.segments.values().sum(), Ordering::Relaxed);
        self.stats.backlog.store(
            state.readable.saturating_sub(state.acked),
            Ordering::Relaxed,
        );
    }
}

/// A handle for recording confirmed deliveries.
#[derive(Clone)]
pub struct SpoolAcks {
    pub(super) shared: Arc<Shared>,
}

impl SpoolAcks {
    /// Everything below `seq` is confirmed: its segments may go.
    pub fn confirm(&self, seq: u64) {
        let mut state = self.shared.lock();
        if seq > state.acked {
            state.acked = seq;
            self.shared.remove_confirmed(&mut state);
        }
    }

    /// The lowest sequence not yet confirmed (it moves up when the cap drops records).
    pub fn acked(&self) -> u64 {
        self.shared.lock().acked
    }

    /// Writes the confirmed position to disk (atomically) if it moved.
    pub fn persist(&self) -> Result<(), SpoolError> {
        let acked = {
            let state = self.shared.lock();
            if state.acked == state.acked_on_disk {
                return Ok(());
            }
            state.acked
        };
        write_acked(&self.shared.dir, acked)?;
        let mut state = self.shared.lock();
        state.acked_on_disk = state.acked_on_disk.max(acked);
        Ok(())
    }

    /// Results not yet confirmed.
    pub fn backlog(&self) -> u64 {
        let state = self.shared.lock();
        state.readable.saturating_sub(state.acked)
    }

    /// The spool's counters.
    pub fn stats(&self) -> Arc<SpoolStats> {
        self.shared.stats.clone()
    }
}

fn write_acked(dir: &Path, acked: u64) -> Result<(), SpoolError> {
    let tmp = dir.join("acked.tmp");
    let path = dir.join("acked");
    fs::write(&tmp, format!("{acked}\n")).map_err(|e| SpoolError::io(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| SpoolError::io(&path, e))
}

/// Opens (or creates) the spool: takes its lock, drops a torn tail, and returns the
/// writer for new results, a reader positioned at the oldest unconfirmed one, and the
/// handle deliveries are confirmed through.
pub fn open(settings: &SpoolSettings) -> Result<(SpoolWriter, SpoolReader, SpoolAcks), SpoolError> {
    let dir = settings.dir.clone();
    fs::create_dir_all(&dir).map_err(|e| SpoolError::io(&dir, e))?;
    let lock_path = dir.join("lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| SpoolError::io(&lock_path, e))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => return Err(SpoolError::Locked(dir)),
        Err(fs::TryLockError::Error(e)) => return Err(SpoolError::io(&lock_path, e)),
    }

    let acked_path = dir.join("acked");
    let acked = match fs::read_to_string(&acked_path) {
        Ok(text) => text.trim().parse::<u64>().unwrap_or_else(|_| {
            tracing::warn!(path = %acked_path.display(), "unreadable confirmed position: replaying the whole spool (the sink drops duplicates)");
            0
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(SpoolError::io(&acked_path, e)),
    };

    let mut segments = BTreeMap::new();
    for entry in fs::read_dir(&dir).map_err(|e| SpoolError::io(&dir, e))? {
        let entry = entry.map_err(|e| SpoolError::io(&dir, e))?;
        let name = entry.file_name();
        let Some(first) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let len = entry
            .metadata()
            .map_err(|e| SpoolError::io(&entry.path(), e))?
            .len();
        segments.insert(first, len);
    }

    // The newest segment is the one a crash can have torn: find where its records end.
    let stats = Arc::new(SpoolStats::default());
    let mut next_seq = acked;
    if let Some((&first, _)) = segments.iter().next_back() {
        let path = dir.join(format!("{first:020}.seg"));
        let (count, good_len) = recover_tail(&path, &stats)?;
        segments.insert(first, good_len);
        next_seq = next_seq.max(first + count);
        if count == 0 {
            segments.remove(&first);
            fs::remove_file(&path).map_err(|e| SpoolError::io(&path, e))?;
        }
    }

    let shared = Arc::new(Shared {
        dir,
        max_bytes: settings.max_bytes,
        segment_bytes: (settings.max_bytes / 8).clamp(64 << 10, 64 << 20),
        state: Mutex::new(State {
            segments,
            readable: next_seq,
            acked,
            acked_on_disk: acked,
        }),
        appended: Notify::new(),
        stats,
        _lock: lock,
    });
    let start = {
        let mut state = shared.lock();
        let oldest = state.segments.keys().next().copied().unwrap_or(next_seq);
        state.acked = state.acked.max(oldest).min(next_seq);
        shared.remove_confirmed(&mut state);
        state.acked
    };
    let backlog = next_seq - start;
    if backlog > 0 {
        tracing::info!(
            backlog,
            "spool holds results from before the restart: sending them first"
        );
    }
    let writer = SpoolWriter::create(shared.clone(), next_seq)?;
    let reader = SpoolReader::new(shared.clone(), start);
    Ok((writer, reader, SpoolAcks { shared }))
}

/// Counts the whole records of a segment and truncates a torn or damaged tail.
fn recover_tail(path: &Path, stats: &SpoolStats) -> Result<(u64, u64), SpoolError> {
    let file = File::open(path).map_err(|e| SpoolError::io(path, e))?;
    let total = file.metadata().map_err(|e| SpoolError::io(path, e))?.len();
    let mut reader = BufReader::new(file);
    let (mut count, mut good) = (0u64, 0u64);
    loop {
        match read_frame(&mut reader).map_err(|e| SpoolError::io(path, e))? {
            (Frame::Record(..), len) => {
                count += 1;
                good += len;
            }
            (Frame::End, _) => break,
            (Frame::Damaged(why), _) => {
                stats.damaged.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    path = %path.display(),
                    offset = good,
                    dropped_bytes = total - good,
                    "spool segment ends in a damaged record ({why}), probably a write cut short by a crash: skipping it"
                );
                let f = OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| SpoolError::io(path, e))?;
                f.set_len(good).map_err(|e| SpoolError::io(path, e))?;
                f.sync_all().map_err(|e| SpoolError::io(path, e))?;
                break;
            }
        }
    }
    Ok((count, good))
}
