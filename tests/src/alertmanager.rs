//! Debian's `prometheus-alertmanager` (installed by `scripts/setup`) as a real Alertmanager
//! for tests: started on a free loopback port with a temporary config and storage
//! directory, clustering off, ready before it is handed out, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest Alertmanager may take to become ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A config routing every alert to a receiver that sends nothing.
const CONFIG: &str =
    "route:\n  receiver: blackhole\n  group_wait: 0s\nreceivers:\n  - name: blackhole\n";

/// The binary: `$SITEWATCH_ALERTMANAGER`, else `/usr/bin/prometheus-alertmanager`.
pub fn binary() -> PathBuf {
    let path = std::env::var_os("SITEWATCH_ALERTMANAGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/prometheus-alertmanager"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (installs Debian's prometheus-alertmanager as root)",
        path.display()
    );
    path
}

/// A running Alertmanager.
pub struct Alertmanager {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Alertmanager {
    /// Starts one and waits until `/-/ready` answers 200.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("alertmanager.yml");
        std::fs::write(&config, CONFIG).unwrap();
        let storage = dir.path().join("data");
        std::fs::create_dir_all(&storage).unwrap();
        let log = std::fs::File::create(dir.path().join("alertmanager.log")).unwrap();
        let port = crate::free_port();
        let child = Command::new(binary())
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.path={}", storage.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Empty: no cluster (no gossip port, no peers to wait for).
            .arg("--cluster.listen-address=")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut am = Self { child, port, dir };
        am.wait_ready();
        am
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "alertmanager exited ({status}) before it was ready:\n{}",
                    self.log()
                );
            }
            if std::net::TcpStream::connect(self.addr()).is_ok()
                && crate::http::get(&self.addr(), "/-/ready", &[]).status == 200
            {
                return;
            }
            if started.elapsed() > READY_WITHIN {
                panic!(
                    "alertmanager not ready within {READY_WITHIN:?}:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `GET /api/v2/alerts{query}` (e.g. `?active=true`), parsed.
    pub fn alerts(&self, query: &str) -> serde_json::Value {
        let r = crate::http::get(&self.addr(), &format!("/api/v2/alerts{query}"), &[]);
        assert_eq!(r.status, 200, "GET /api/v2/alerts: {}", r.body);
        serde_json::from_str(&r.body).unwrap()
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("alertmanager.log")).unwrap_or_default()
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
