//! `hostile`: a test-only component that misbehaves on request, to prove the host
//! contains it. Never deploy it. Config `mode` picks the behaviour:
//! - `pass`: the trivial plugin (benchmarks use it): passes at once.
//! - `echo`: passes and reports what it was given as labels and metrics.
//! - `sandbox`: tries files, environment, network and reports what it could reach.
//! - `loop`: spins forever. `sleep`: sleeps for an hour. `oom`: allocates until refused.
//! - `trap`: panics. `err`: returns `err`. `huge`: a 4 MiB message, 10,000 metrics and a NaN.
//! - `log-flood`: writes 10,000 log lines, then passes.

wit_bindgen::generate!({ path: "../../../wit", world: "checker" });

use sitewatch::check::log::{log, Level};
use sitewatch::check::types::{Metric, Outcome};

struct Hostile;

impl Guest for Hostile {
    fn check(response: Response, config: Vec<(String, String)>) -> Result<Verdict, String> {
        let mode = config
            .iter()
            .find(|(k, _)| k == "mode")
            .map(|(_, v)| v.as_str())
            .unwrap_or("pass");
        match mode {
            "pass" => Ok(verdict("ok".into(), Vec::new(), Vec::new())),
            "echo" => {
                let mut labels = vec![
                    ("url".to_string(), response.url.clone()),
                    ("status".to_string(), response.status.to_string()),
                    ("version".to_string(), response.http_version.clone()),
                    (
                        "body".to_string(),
                        String::from_utf8_lossy(&response.body).into_owned(),
                    ),
                ];
                labels.extend(
                    response
                        .headers
                        .iter()
                        .map(|(k, v)| (format!("header:{k}"), v.clone())),
                );
                labels.extend(
                    config
                        .iter()
                        .map(|(k, v)| (format!("config:{k}"), v.clone())),
                );
                let metrics = vec![
                    Metric {
                        name: "body_bytes".into(),
                        value: response.body.len() as f64,
                    },
                    Metric {
                        name: "total_ms".into(),
                        value: response.timings.total,
                    },
                ];
                Ok(verdict("echo".into(), metrics, labels))
            }
            "sandbox" => {
                let files = std::fs::read_dir("/")
                    .map(|_| "reachable")
                    .unwrap_or("denied");
                let env = std::env::vars().count().to_string();
                let net = std::net::TcpStream::connect("127.0.0.1:5432")
                    .map(|_| "reachable")
                    .unwrap_or("denied");
                let labels = vec![
                    ("files".to_string(), files.to_string()),
                    ("env_vars".to_string(), env),
                    ("network".to_string(), net.to_string()),
                ];
                Ok(verdict("sandbox".into(), Vec::new(), labels))
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(verdict("woke up".into(), Vec::new(), Vec::new()))
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(std::hint::black_box(vec![1u8; 1 << 20]));
                }
            }
            "trap" => panic!("deliberate trap"),
            "err" => Err("deliberate error".into()),
            "huge" => {
                let metrics = (0..10_000)
                    .map(|i| Metric {
                        name: format!("m{i}"),
                        value: if i == 0 { f64::NAN } else { i as f64 },
                    })
                    .collect();
                Ok(verdict("x".repeat(4 << 20), metrics, Vec::new()))
            }
            "log-flood" => {
                for i in 0..10_000 {
                    log(Level::Warn, &format!("flood line {i}"));
                }
                Ok(verdict("flooded".into(), Vec::new(), Vec::new()))
            }
            other => Err(format!("unknown mode `{other}`")),
        }
    }
}

fn verdict(message: String, metrics: Vec<Metric>, labels: Vec<(String, String)>) -> Verdict {
    Verdict {
        outcome: Outcome::Pass,
        message,
        metrics,
        labels,
    }
}

export!(Hostile);
