//! A latency histogram with fixed logarithmic buckets (each at most ~4.1% wider than the
//! one below), good for any quantile within 2.1% of the true (nearest-rank) value. It merges
//! by adding counts, so a rollup's sketch is exactly the sketch of its checks, whatever order
//! they were added in. Bucket bounds come from integer arithmetic alone: the same on every
//! machine and build, so a rebuild cannot put a value in a different bucket.
//!
//! Stored as `bytea`: for each non-empty bucket in order, the bucket's index minus the
//! previous one's, then its count, both as LEB128 varints.

use std::sync::OnceLock;

/// Per-mille growth of a bucket's upper bound over the previous one's.
const GROWTH_PER_MILLE: u64 = 41;

/// Upper bounds (inclusive, µs) of the buckets: 0, 1, 2, …, then growing by ~4.1% up to
/// beyond `i32::MAX`.
fn bounds() -> &'static [u64] {
    static BOUNDS: OnceLock<Vec<u64>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        let mut b = vec![0u64];
        let mut next = 1u64;
        while next <= i32::MAX as u64 {
            b.push(next);
            next += (next * GROWTH_PER_MILLE / 1000).max(1);
        }
        b.push(next);
        b
    })
}

/// The bucket a value (µs; negative counts as 0) falls in.
fn bucket(us: i64) -> u16 {
    let us = u64::try_from(us).unwrap_or(0);
    let b = bounds();
    // The first bound at or above the value; values above every bound go in the last.
    let i = b.partition_point(|&bound| bound < us).min(b.len() - 1);
    u16::try_from(i).unwrap_or(u16::MAX)
}

/// A value standing for bucket `i`: its only value when it holds one integer, else the
/// harmonic mean of its bounds (which halves the worst relative error).
fn representative(i: u16) -> f64 {
    let b = bounds();
    let i = usize::from(i).min(b.len() - 1);
    let high = b[i] as f64;
    if i == 0 || b[i] - b[i - 1] == 1 {
        return high;
    }
    let low = b[i - 1] as f64;
    2.0 * low * high / (low + high)
}

/// Counts per bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sketch {
    /// (bucket, count), buckets ascending, counts non-zero.
    bins: Vec<(u16, u64)>,
}

/// Bytes that are not an encoded sketch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a latency sketch: {0}")]
pub struct CorruptSketch(&'static str);

impl Sketch {
    /// Adds one value (µs).
    pub fn add(&mut self, us: i64) {
        self.add_count(bucket(us), 1);
    }

    fn add_count(&mut self, bin: u16, count: u64) {
        match self.bins.binary_search_by_key(&bin, |(b, _)| *b) {
            Ok(at) => self.bins[at].1 += count,
            Err(at) => self.bins.insert(at, (bin, count)),
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        for &(bin, count) in &other.bins {
            self.add_count(bin, count);
        }
    }

    /// Values added.
    pub fn count(&self) -> u64 {
        self.bins.iter().map(|(_, c)| c).sum()
    }

    /// The `q`-quantile (0..=1, nearest rank) in µs, within 2.1%; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for &(bin, count) in &self.bins {
            seen += count;
            if seen >= rank {
                return Some(representative(bin));
            }
        }
        None
    }

    /// The stored form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.bins.len() * 3);
        let mut previous = 0u64;
        for &(bin, count) in &self.bins {
            varint(&mut out, u64::from(bin) - previous);
            varint(&mut out, count);
            previous = u64::from(bin);
        }
        out
    }

    /// Reads the stored form.
    pub fn decode(mut bytes: &[u8]) -> Result<Sketch, CorruptSketch> {
        let mut bins = Vec::new();
        let mut bin = 0u64;
        while !bytes.is_empty() {
            let delta = read_varint(&mut bytes)?;
            let count = read_varint(&mut bytes)?;
            if (!bins.is_empty() && delta == 0) || count == 0 {
                return Err(CorruptSketch("buckets out of order or empty"));
            }
            bin += delta;
            let bin = u16::try_from(bin).map_err(|_| CorruptSketch("bucket out of range"))?;
            bins.push((bin, count));
        }
        Ok(Sketch { bins })
    }
}

/// Many stored sketches added up: counts in a plain array, so adding thousands of rows
/// (a report over months) costs a pass over their bytes and nothing more.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    counts: Vec<u64>,
}

impl Totals {
    /// Adds an encoded sketch.
    pub fn add_encoded(&mut self, mut bytes: &[u8]) -> Result<(), CorruptSketch> {
        if self.counts.is_empty() {
            self.counts = vec![0; bounds().len()];
        }
        let mut bin = 0usize;
        while !bytes.is_empty() {
            bin += usize::try_from(read_varint(&mut bytes)?).unwrap_or(usize::MAX);
            let count = read_varint(&mut bytes)?;
            let slot = self
                .counts
                .get_mut(bin)
                .ok_or(CorruptSketch("bucket out of range"))?;
            *slot += count;
        }
        Ok(())
    }

    /// The sum as a sketch.
    pub fn sketch(&self) -> Sketch {
        let bins = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .filter_map(|(i, c)| Some((u16::try_from(i).ok()?, *c)))
            .collect();
        Sketch { bins }
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Result<u64, CorruptSketch> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = bytes.split_first().ok_or(CorruptSketch("truncated"))?;
        *bytes = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(CorruptSketch("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_represented_within_the_promised_error() {
        let b = bounds();
        assert!(b.len() < 600, "{} buckets", b.len());
        assert!(*b.last().unwrap() > i32::MAX as u64);
        for us in (0..2_000_000i64).step_by(7).chain([i32::MAX as i64]) {
            let r = representative(bucket(us));
            let err = if us == 0 {
                r
            } else {
                (r - us as f64).abs() / us as f64
            };
            assert!(err <= 0.021, "{us} µs -> {r}: {err}");
        }
    }

    #[test]
    fn quantiles_are_nearest_rank_within_the_error_and_merging_is_adding() {
        let values: Vec<i64> = (1..=1000).map(|i| i * i * 37 % 500_000 + 100).collect();
        let (mut all, mut a, mut b) = (Sketch::default(), Sketch::default(), Sketch::default());
        for (i, v) in values.iter().enumerate() {
            all.add(*v);
            if i % 3 == 0 {
                a.add(*v)
            } else {
                b.add(*v)
            }
        }
        let mut merged = b.clone();
        merged.merge(&a);
        assert_eq!(merged, all);
        let mut sorted = values.clone();
        sorted.sort();
        for q in [0.5, 0.95, 0.99] {
            let exact = sorted[((q * 1000.0_f64).ceil() as usize) - 1] as f64;
            let got = all.quantile(q).unwrap();
            assert!(
                (got - exact).abs() / exact <= 0.021,
                "q{q}: {got} vs {exact}"
            );
        }
        assert_eq!(Sketch::decode(&all.encode()).unwrap(), all);
        let mut totals = Totals::default();
        totals.add_encoded(&a.encode()).unwrap();
        totals.add_encoded(&b.encode()).unwrap();
        assert_eq!(totals.sketch(), all);
        assert_eq!(Sketch::default().quantile(0.5), None);
        assert!(Sketch::decode(&[0x80]).is_err());
        assert!(Sketch::decode(&[1, 0]).is_err());
    }
}
