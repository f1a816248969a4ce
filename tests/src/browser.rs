//! Debian's `chromium`, headless, for tests of the web pages: the DOM after the page's
//! scripts ran (`--dump-dom`) and screenshots. Each run gets a fresh profile directory and
//! the flags that keep it from reaching for the network (without them it hangs offline).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest one browser run may take.
const DEADLINE: Duration = Duration::from_secs(90);

/// The browser binary: `$SITEWATCH_CHROMIUM`, else `/usr/bin/chromium` (installed by
/// `scripts/setup`).
pub fn binary() -> PathBuf {
    let path = std::env::var_os("SITEWATCH_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup (installs Debian's chromium as root)",
        path.display()
    );
    path
}

fn run(args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(binary())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        out
    });
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took longer than {DEADLINE:?} with {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// The page's DOM, serialised, once it has loaded and its scripts ran.
pub fn dump_dom(url: &str) -> String {
    run(&["--dump-dom".into(), url.into()])
}

/// A PNG of the page at `width` x `height` into `file`.
pub fn screenshot(url: &str, file: &Path, width: u32, height: u32) {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).unwrap();
    }
    let _ = std::fs::remove_file(file);
    run(&[
        format!("--screenshot={}", file.display()),
        format!("--window-size={width},{height}"),
        url.into(),
    ]);
    let png = std::fs::read(file).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG"),
        "no screenshot of {url} in {}",
        file.display()
    );
}
