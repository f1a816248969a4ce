//! A Tansu broker per test, started with `scripts/kafka-dev` and stopped on drop.

use std::process::Command;

/// Path of the project's broker script.
pub const KAFKA_DEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/kafka-dev");

/// A running Tansu broker on 127.0.0.1.
pub struct Broker {
    /// Port it listens on.
    pub port: u16,
}

impl Broker {
    /// Starts one on `port` (a free one if `None`), advertising `advertised` (default: `port`).
    pub fn start_on(port: Option<u16>, advertised: Option<u16>) -> Broker {
        let mut cmd = Command::new(KAFKA_DEV);
        cmd.arg("start");
        if let Some(p) = port {
            cmd.arg(p.to_string());
        }
        if let Some(a) = advertised {
            cmd.env("KAFKA_DEV_ADVERTISED_PORT", a.to_string());
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "kafka-dev start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let addr = String::from_utf8(out.stdout).unwrap();
        let port = addr.trim().rsplit(':').next().unwrap().parse().unwrap();
        Broker { port }
    }

    /// Starts one on a free port.
    pub fn start() -> Broker {
        Self::start_on(None, None)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = Command::new(KAFKA_DEV)
            .arg("stop")
            .arg(self.port.to_string())
            .status();
    }
}
