//! Counters, gauges and histograms backed by atomics, and their Prometheus text rendering.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A histogram of durations in seconds with fixed bucket bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// Default bounds (seconds) for check and batch durations.
pub const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

impl Default for Histogram {
    fn default() -> Self {
        Self::new(DURATION_BUCKETS)
    }
}

impl Histogram {
    /// A histogram with the given upper bounds (ascending, seconds).
    pub fn new(bounds: &'static [f64]) -> Self {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one observation in seconds.
    pub fn observe(&self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// Observations recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Builds a Prometheus text exposition.
#[derive(Debug, Default)]
pub struct MetricsText(String);

impl MetricsText {
    /// An empty exposition.
    pub fn new() -> Self {
        Self::default()
    }

    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// A counter with one series per label value: `values` is `(label_value, count)`.
    pub fn counter(&mut self, name: &str, help: &str, label: Option<&str>, values: &[(&str, u64)]) {
        self.header(name, help, "counter");
        for (value, n) in values {
            match label {
                Some(l) => {
                    let _ = writeln!(self.0, "{name}{{{l}=\"{}\"}} {n}", escape(value));
                }
                None => {
                    let _ = writeln!(self.0, "{name} {n}");
                }
            }
        }
    }

    /// A counter with one fractional value (e.g. seconds).
    pub fn counter_f64(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "counter");
        let _ = writeln!(self.0, "{name} {value}");
    }

    /// A single gauge value.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.header(name, help, "gauge");
        let _ = writeln!(self.0, "{name} {value}");
    }

    /// A gauge with one series per label set: `series` is `([(label, value)...], number)`.
    pub fn gauge_labelled(&mut self, name: &str, help: &str, series: &[(Vec<(&str, &str)>, f64)]) {
        self.header(name, help, "gauge");
        for (labels, value) in series {
            let labels: Vec<String> = labels
                .iter()
                .map(|(l, v)| format!("{l}=\"{}\"", escape(v)))
                .collect();
            let _ = writeln!(self.0, "{name}{{{}}} {value}", labels.join(","));
        }
    }

    /// A histogram (cumulative buckets, `_sum` in seconds, `_count`).
    pub fn histogram(&mut self, name: &str, help: &str, h: &Histogram) {
        self.header(name, help, "histogram");
        let mut cumulative = 0;
        for (bound, bucket) in h.bounds.iter().zip(&h.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(self.0, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let count = h.count();
        let _ = writeln!(self.0, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(self.0, "{name}_sum {sum}\n{name}_count {count}");
    }

    /// The finished text.
    pub fn finish(self) -> String {
        self.0
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(3.0);
        let mut t = MetricsText::new();
        t.counter("x_total", "X.", Some("outcome"), &[("up", 2), ("down", 1)]);
        t.histogram("d_seconds", "D.", &h);
        let text = t.finish();
        assert!(text.contains("# TYPE x_total counter\n"));
        assert!(text.contains("x_total{outcome=\"up\"} 2\n"));
        assert!(text.contains("d_seconds_bucket{le=\"0.1\"} 1\n"));
        assert!(text.contains("d_seconds_bucket{le=\"1\"} 2\n"));
        assert!(text.contains("d_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("d_seconds_count 3\n"));
        assert!(text.contains("d_seconds_sum 3.55\n"));
        let mut t = MetricsText::new();
        t.gauge_labelled("g", "G.", &[(vec![("site", "a\"b"), ("group", "")], 1.0)]);
        assert!(t.finish().contains("g{site=\"a\\\"b\",group=\"\"} 1\n"));
    }
}
