//! Reading the Prometheus text that `/metrics` serves.

/// The value of the unlabelled series `name` in `text` (`None` if it is not there).
pub fn value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}
