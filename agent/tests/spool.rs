//! The disk spool on its own: order across segments and restarts, the confirmed position,
//! torn and damaged records, the size cap, and one agent per directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic: that is how they fail

use std::path::{Path, PathBuf};

use sitewatch_agent::spool::{self, SpoolError, SpoolReader, SpoolSettings};

fn settings(dir: &Path, max_bytes: u64) -> SpoolSettings {
    SpoolSettings {
        dir: dir.to_path_buf(),
        max_bytes,
    }
}

fn value(i: u64) -> Vec<u8> {
    format!("{{\"check_id\":{i},\"pad\":\"{}\"}}", "x".repeat(200)).into_bytes()
}

fn read_all(reader: &mut SpoolReader) -> Vec<(u64, Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(r) = reader.read_next().unwrap() {
        out.push((r.seq, r.key, r.value));
    }
    out
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    segs.sort();
    segs
}

#[test]
fn records_come_back_in_order_across_segments_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut writer, mut reader, acks) = spool::open(&settings(dir.path(), 1 << 20)).unwrap();
        for i in 0..2000 {
            assert_eq!(
                writer
                    .append(format!("site-{}", i % 7).as_bytes(), &value(i))
                    .unwrap(),
                i
            );
            if i == 5 {
                // Nothing is readable before the writer flushes.
                assert!(reader.read_next().unwrap().is_none());
            }
        }
        writer.flush().unwrap();
        let all = read_all(&mut reader);
        assert_eq!(all.len(), 2000);
        for (i, (seq, key, v)) in all.iter().enumerate() {
            assert_eq!(*seq, i as u64);
            assert_eq!(key, format!("site-{}", i % 7).as_bytes());
            assert_eq!(v, &value(i as u64));
        }
        assert!(
            segments(dir.path()).len() > 2,
            "2000 records span several segments"
        );
        acks.confirm(1500);
        acks.persist().unwrap();
        assert_eq!(acks.backlog(), 500);
        writer.close().unwrap();
    }
    // A restart replays from the confirmed position; fully confirmed segments are gone.
    let (mut writer, mut reader, acks) = spool::open(&settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!(acks.backlog(), 500);
    assert_eq!(
        writer.append(b"new", b"{}").unwrap(),
        2000,
        "sequence numbers continue"
    );
    writer.flush().unwrap();
    let all = read_all(&mut reader);
    let seqs: Vec<u64> = all.iter().map(|r| r.0).collect();
    assert_eq!(seqs, (1500..=2000).collect::<Vec<_>>());
    assert_eq!(all[0].2, value(1500));
    // A rewind reads the same records again.
    reader.seek(1999);
    assert_eq!(
        read_all(&mut reader)
            .iter()
            .map(|r| r.0)
            .collect::<Vec<_>>(),
        vec![1999, 2000]
    );
    acks.confirm(2001);
    assert_eq!(acks.backlog(), 0);
    assert_eq!(
        segments(dir.path()).len(),
        1,
        "only the segment being written remains"
    );
}

#[test]
fn a_torn_last_record_is_skipped_with_a_warning_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut writer, _, _) = spool::open(&settings(dir.path(), 1 << 20)).unwrap();
        for i in 0..10 {
            writer.append(b"site", &value(i)).unwrap();
        }
        writer.close().unwrap();
    }
    // A crash mid-write: the last record is cut short.
    let last = segments(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .unwrap()
        .set_len(len - 3)
        .unwrap();

    let (mut writer, mut reader, acks) = spool::open(&settings(dir.path(), 1 << 20)).unwrap();
    assert_eq!(
        acks.stats()
            .damaged
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    assert_eq!(
        writer.append(b"site", &value(99)).unwrap(),
        9,
        "the torn record's place is reused"
    );
    writer.flush().unwrap();
    let all = read_all(&mut reader);
    assert_eq!(all.len(), 10);
    assert_eq!(all[8].2, value(8));
    assert_eq!(all[9].2, value(99));
}

#[test]
fn a_damaged_record_inside_the_spool_costs_the_rest_of_its_segment_only() {
    let dir = tempfile::tempdir().unwrap();
    let total = 3000;
    {
        let (mut writer, _, _) = spool::open(&settings(dir.path(), 1 << 20)).unwrap();
        for i in 0..total {
            writer.append(b"site", &value(i)).unwrap();
        }
        writer.close().unwrap();
    }
    let segs = segments(dir.path());
    assert!(segs.len() >= 3);
    // Flip a byte in the middle of the first segment (bit rot, a bad sector).
    let mut bytes = std::fs::read(&segs[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&segs[0], bytes).unwrap();

    let (_w, mut reader, acks) = spool::open(&settings(dir.path(), 1 << 20)).unwrap();
    let all = read_all(&mut reader);
    let damaged = acks
        .stats()
        .damaged
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(damaged > 0);
    assert_eq!(
        all.len() as u64 + damaged,
        total,
        "every record is read or counted"
    );
    assert_eq!(
        all.last().unwrap().0,
        total - 1,
        "later segments are read in full"
    );
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "still in order");
}

#[test]
fn past_the_cap_the_oldest_results_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cap = 1 << 20;
    let (mut writer, mut reader, acks) = spool::open(&settings(dir.path(), cap)).unwrap();
    let total = 15_000u64; // about 3.5 MiB
    for i in 0..total {
        writer.append(b"site", &value(i)).unwrap();
        if i % 100 == 0 {
            writer.flush().unwrap();
        }
    }
    writer.flush().unwrap();
    let stats = acks.stats();
    let dropped = stats.dropped.load(std::sync::atomic::Ordering::Relaxed);
    let on_disk: u64 = segments(dir.path())
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(on_disk <= cap, "{on_disk} bytes on disk, cap {cap}");
    assert!(dropped > 0);
    let all = read_all(&mut reader);
    assert_eq!(
        all.len() as u64 + dropped,
        total,
        "every result is kept or counted"
    );
    assert_eq!(all.first().unwrap().0, dropped, "the oldest went first");
    assert_eq!(all.last().unwrap().0, total - 1, "the newest are kept");
}

#[test]
fn two_agents_cannot_share_a_spool_directory() {
    let dir = tempfile::tempdir().unwrap();
    let _first = spool::open(&settings(dir.path(), 1 << 20)).unwrap();
    match spool::open(&settings(dir.path(), 1 << 20)) {
        Err(SpoolError::Locked(d)) => assert_eq!(d, dir.path()),
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a second agent opened a spool in use"),
    }
}
