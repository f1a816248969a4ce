//! The example plugin components (`examples/plugins/`), built for `wasm32-wasip2`
//! once per test process (cargo's own lock serialises concurrent builds).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Path of the built component for crate `name` (e.g. `json-field`).
pub fn component(name: &str) -> PathBuf {
    built_dir().join(format!("{}.wasm", name.replace('-', "_")))
}

fn built_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = repo_root();
        let target = root.join("target").join("plugins");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args([
                "build",
                "--release",
                "--target",
                "wasm32-wasip2",
                "--manifest-path",
            ])
            .arg(root.join("examples/plugins/Cargo.toml"))
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("run cargo to build the example plugins");
        assert!(
            out.status.success(),
            "building examples/plugins failed (is the wasm32-wasip2 target installed? \
             `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("wasm32-wasip2").join("release")
    })
}

/// Which toolchain builds an example plugin in another language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    /// `examples/plugins/python/NAME`, built by componentize-py.
    Python,
    /// `examples/plugins/javascript/NAME`, built by componentize-js.
    JavaScript,
}

impl Language {
    fn dir(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::JavaScript => "javascript",
        }
    }

    /// The toolchain `scripts/setup` installs into `.build/`, with its stamp file.
    fn toolchain_stamp(self) -> PathBuf {
        let tool = match self {
            Language::Python => "componentize-py",
            Language::JavaScript => "componentize-js",
        };
        repo_root().join(".build").join(tool).join(".installed")
    }
}

/// The component of the example `examples/plugins/<lang>/<name>`, built by the
/// example's own `build` script with the toolchain `scripts/setup` pinned into
/// `.build/`. Built once and kept in `target/plugins/<lang>/` until a source file,
/// the contract or the toolchain changes (these builds take tens of seconds);
/// concurrent test processes wait for one build.
pub fn script_component(lang: Language, name: &str) -> PathBuf {
    let root = repo_root();
    let source = root.join("examples/plugins").join(lang.dir()).join(name);
    let out_dir = root.join("target/plugins").join(lang.dir());
    let out = out_dir.join(format!("{}.wasm", name.replace('-', "_")));
    let stamp = lang.toolchain_stamp();
    assert!(
        stamp.exists(),
        "{} is missing: run scripts/setup to install the {lang:?} plugin toolchain",
        stamp.display()
    );
    std::fs::create_dir_all(&out_dir).unwrap();
    let lock = std::fs::File::create(out_dir.join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    let mut inputs = vec![root.join("wit/check.wit"), stamp];
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wasm") && path.is_file() {
            inputs.push(path);
        }
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let newest_input = inputs.iter().filter_map(|p| modified(p)).max();
    if modified(&out).is_none() || modified(&out) < newest_input {
        let started = std::time::Instant::now();
        let built = Command::new(source.join("build"))
            .arg(&out)
            .output()
            .unwrap();
        assert!(
            built.status.success(),
            "building {} failed:\n{}{}",
            source.display(),
            String::from_utf8_lossy(&built.stdout),
            String::from_utf8_lossy(&built.stderr)
        );
        eprintln!(
            "built {} in {:.1}s",
            out.display(),
            started.elapsed().as_secs_f64()
        );
    }
    out
}

/// A compiled-code cache directory shared by every test (and test process) that
/// loads the large Python and JavaScript components, so each is compiled once
/// per build of the host rather than once per test.
pub fn shared_plugin_cache() -> PathBuf {
    repo_root().join("target/plugin-cache")
}

/// A component whose only content is one empty-instance import per name: what a
/// component importing interfaces the host may lack looks like to the linker.
pub fn component_importing(names: &[&str]) -> Vec<u8> {
    let mut bytes = b"\0asm\x0d\0\x01\0".to_vec();
    // Type section: one instance type with no exports.
    bytes.extend([7, 3, 1, 0x42, 0]);
    let mut imports = vec![names.len() as u8];
    for name in names {
        imports.push(0); // a plain name
        imports.push(name.len() as u8);
        imports.extend(name.as_bytes());
        imports.extend([0x05, 0]); // an instance of type 0
    }
    bytes.push(10);
    bytes.push(imports.len() as u8);
    bytes.extend(imports);
    bytes
}
