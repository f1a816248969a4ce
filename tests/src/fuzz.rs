//! Time-boxed fuzzing with proptest: inputs made by mutating valid seeds, run until
//! `SITEWATCH_FUZZ_SECONDS` (default: a short smoke run) has passed. A failing input is
//! shrunk by proptest and printed in the panic message.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;

/// How long each fuzz target runs: `SITEWATCH_FUZZ_SECONDS`, else `default`.
pub fn budget(default: Duration) -> Duration {
    std::env::var("SITEWATCH_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .map(Duration::from_secs_f64)
        .unwrap_or(default)
}

/// Runs `property` on inputs from `strategy` until `budget` has passed; returns the count.
/// Panics (with the shrunk input) on the first failure.
pub fn run_for<S: Strategy>(
    budget: Duration,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) -> u64
where
    S::Value: std::fmt::Debug,
{
    let until = Instant::now() + budget;
    // A runner counts its cases and stops at `cases`: a new one per round, each with its
    // own seed, printed on failure so the run can be repeated with SITEWATCH_FUZZ_SEED.
    let first_seed: u64 = std::env::var("SITEWATCH_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let total = std::cell::Cell::new(0u64);
    let mut round = 0u64;
    while Instant::now() < until {
        let seed = first_seed.wrapping_add(round);
        round += 1;
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&seed.to_le_bytes());
        let config = Config {
            cases: 64,
            failure_persistence: None,
            ..Config::default()
        };
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
        let mut runner = TestRunner::new_with_rng(config, rng);
        if let Err(e) = runner.run(&strategy, |input| {
            total.set(total.get() + 1);
            property(input)
        }) {
            panic!("fuzzing found a failing input (SITEWATCH_FUZZ_SEED={seed}): {e}");
        }
    }
    total.get()
}

/// Fragments that tend to break parsers, spliced into inputs.
const TOKENS: &[&str] = &[
    "\n",
    "- ",
    ": ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!binary ",
    "!!str ",
    "~",
    "null",
    "true",
    "-1",
    "0",
    "1e999",
    "99999999999999999999",
    "${HOME}",
    "${NOPE",
    "\t",
    "\\u0000",
    "\u{0}",
    "\u{feff}",
    "é",
    "\u{10ffff}",
    "#",
    "|\n",
    ">-\n",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "?",
    "@",
    "`",
    "\r\n",
];

/// Byte-level mutations of `seed`: overwrite, insert, delete, duplicate a span, splice a token.
pub fn mutated_bytes(seed: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = seed.len().max(1);
    // Mostly printable bytes: random ones would make most inputs fail UTF-8 decoding
    // before the interesting code is reached.
    let byte = prop_oneof![8 => 0x20u8..0x7f, 1 => any::<u8>()];
    let edit = (0..5u8, 0..len, 0..len, byte, 0..TOKENS.len());
    proptest::collection::vec(edit, 1..4).prop_map(move |edits| {
        let mut b = seed.clone();
        for (kind, at, span, byte, token) in edits {
            let at = at.min(b.len());
            match kind {
                0 if at < b.len() => b[at] = byte,
                1 => b.insert(at, byte),
                2 => {
                    let end = (at + span % 16).min(b.len());
                    b.drain(at..end);
                }
                3 => {
                    let end = (at + span % 64).min(b.len());
                    let copy = b[at..end].to_vec();
                    b.splice(at..at, copy);
                }
                _ => {
                    b.splice(at..at, TOKENS[token].bytes());
                }
            }
        }
        b
    })
}

/// A JSON value of any shape, including the awkward ones (NUL, huge numbers, deep nesting).
pub fn awkward_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(Value::from("\u{0}")),
        Just(Value::from("")),
        Just(Value::from("1970-01-01T00:00:00Z")),
        Just(Value::from("9999-12-31T23:59:59.999Z")),
        Just(Value::from("up")),
        Just(Value::from("down")),
        ".{0,40}".prop_map(Value::from),
        (1usize..5000).prop_map(|n| Value::from("s".repeat(n))),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `seed` with a few values replaced, keys removed or added, then serialised; sometimes
/// byte-mutated on top.
pub fn mutated_json(seed: Value) -> impl Strategy<Value = Vec<u8>> {
    let edit = (
        0..3u8,
        any::<proptest::sample::Index>(),
        awkward_json(),
        ".{0,8}",
    );
    (proptest::collection::vec(edit, 1..4), any::<bool>()).prop_flat_map(move |(edits, bytes)| {
        let mut v = seed.clone();
        for (kind, index, value, key) in edits {
            let mut paths = Vec::new();
            collect_paths(&v, &mut Vec::new(), &mut paths);
            let path = index.get(&paths).clone();
            apply(&mut v, &path, kind, value, key);
        }
        let text = serde_json::to_vec(&v).unwrap_or_default();
        if bytes {
            mutated_bytes(text).boxed()
        } else {
            Just(text).boxed()
        }
    })
}

fn collect_paths(v: &Value, at: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                at.push(k.clone());
                collect_paths(child, at, out);
                at.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                at.push(i.to_string());
                collect_paths(child, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn apply(root: &mut Value, path: &[String], kind: u8, value: Value, key: String) {
    let mut v = root;
    for step in path {
        v = match v {
            Value::Object(m) => m.entry(step.clone()).or_insert(Value::Null),
            Value::Array(items) => {
                match step.parse::<usize>().ok().and_then(|i| items.get_mut(i)) {
                    Some(child) => child,
                    None => return,
                }
            }
            _ => return,
        };
    }
    match (kind, v) {
        (0, v) => *v = value,
        (1, Value::Object(m)) if !m.is_empty() => {
            let first = m.keys().next().cloned().unwrap_or_default();
            m.remove(&first);
        }
        (_, Value::Object(m)) => {
            m.insert(key, value);
        }
        (_, v) => *v = value,
    }
}
