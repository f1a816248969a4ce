//! Explaining a component the host refused to link: which of its imports the
//! host does not provide, and how to build the plugin without them.

/// The contract (`wit/check.wit`) this host implements; its `package` line gives
/// the version components must be built against.
const CHECK_WIT: &str = include_str!("../../../wit/check.wit");

/// WASI 0.2 packages the host links (granting nothing: no files, sockets,
/// environment); anything else a component imports cannot be satisfied.
const WASI_PACKAGES: [&str; 6] = ["cli", "clocks", "filesystem", "io", "random", "sockets"];

/// The `sitewatch:check` package version the host provides, e.g. `0.1.0`.
pub fn host_wit_version() -> &'static str {
    CHECK_WIT
        .lines()
        .find_map(|l| l.trim().strip_prefix("package sitewatch:check@"))
        .and_then(|rest| rest.strip_suffix(';'))
        .unwrap_or("unknown")
}

/// What to tell the author of a component whose `imports` could not all be linked.
/// `None` when every import is one the host provides (the problem is elsewhere,
/// e.g. a type that does not match).
pub fn explain(imports: &[String]) -> Option<String> {
    let host = host_wit_version();
    let mut problems = Vec::new();
    let mut hints = Vec::new();
    for name in imports {
        let (interface, version) = name.split_once('@').unwrap_or((name, ""));
        let Some((package, _)) = interface.split_once('/') else {
            problems.push(format!("`{name}`"));
            continue;
        };
        match package {
            "sitewatch:check" if compatible(version, host) => {}
            "sitewatch:check" => {
                problems.push(format!("`{name}`"));
                push_once(
                    &mut hints,
                    format!(
                        "it was built against sitewatch:check@{version}, this agent provides \
                     sitewatch:check@{host}: rebuild it against this agent's wit/check.wit"
                    ),
                );
            }
            p if p
                .strip_prefix("wasi:")
                .is_some_and(|p| WASI_PACKAGES.contains(&p))
                && version.starts_with("0.2.") => {}
            "wasi:http" => {
                problems.push(format!("`{name}`"));
                push_once(
                    &mut hints,
                    "plugins get no network, so wasi:http is not provided: \
                     build JavaScript with `componentize-js -d http fetch-event`, and leave \
                     HTTP clients out of Rust and Python plugins"
                        .to_string(),
                );
            }
            p if p.starts_with("wasi:") && !version.starts_with("0.2.") => {
                problems.push(format!("`{name}`"));
                push_once(
                    &mut hints,
                    "only WASI 0.2 is provided: build for wasm32-wasip2 \
                     (WASI 0.2), not another WASI version"
                        .to_string(),
                );
            }
            _ => problems.push(format!("`{name}`")),
        }
    }
    if problems.is_empty() {
        return None;
    }
    if hints.is_empty() {
        hints.push(format!(
            "the host provides only sitewatch:check@{host} and WASI 0.2 ({}): build the plugin \
             without the others",
            WASI_PACKAGES.join(", ")
        ));
    }
    Some(format!(
        "it imports {} which this agent does not provide; {}",
        problems.join(", "),
        hints.join("; ")
    ))
}

/// Semver compatibility as the linker applies it: same major, and for 0.x the
/// same minor.
fn compatible(version: &str, host: &str) -> bool {
    let parts = |v: &str| -> Vec<u64> { v.split('.').map_while(|p| p.parse().ok()).collect() };
    let (a, b) = (parts(version), parts(host));
    match (a.as_slice(), b.as_slice()) {
        ([0, minor_a, ..], [0, minor_b, ..]) => minor_a == minor_b,
        ([major_a, ..], [major_b, ..]) => major_a == major_b,
        _ => version.is_empty(),
    }
}

fn push_once(hints: &mut Vec<String>, hint: String) {
    if !hints.contains(&hint) {
        hints.push(hint);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_host_version_comes_from_the_wit_file() {
        assert!(CHECK_WIT.contains(&format!("package sitewatch:check@{};", host_wit_version())));
        assert_ne!(host_wit_version(), "unknown");
    }

    #[test]
    fn what_the_host_provides_needs_no_explaining() {
        let host = host_wit_version();
        let ok = names(&[
            &format!("sitewatch:check/log@{host}"),
            "wasi:io/poll@0.2.9",
            "wasi:cli/stdout@0.2.12",
            "wasi:sockets/tcp@0.2.0",
        ]);
        assert_eq!(explain(&ok), None);
    }

    #[test]
    fn wasi_http_gets_the_build_flag() {
        let e = explain(&names(&["wasi:io/poll@0.2.3", "wasi:http/types@0.2.3"])).unwrap();
        assert!(e.contains("`wasi:http/types@0.2.3`"), "{e}");
        assert!(!e.contains("wasi:io"), "{e}");
        assert!(e.contains("-d http fetch-event"), "{e}");
    }

    #[test]
    fn a_contract_version_mismatch_names_both_versions() {
        let e = explain(&names(&["sitewatch:check/log@0.2.0"])).unwrap();
        assert!(e.contains("sitewatch:check@0.2.0"), "{e}");
        assert!(
            e.contains(&format!("sitewatch:check@{}", host_wit_version())),
            "{e}"
        );
    }

    #[test]
    fn anything_else_is_named_with_what_is_provided() {
        let e = explain(&names(&["acme:db/query@1.0.0", "wasi:cli/stdout@0.3.0"])).unwrap();
        assert!(e.contains("`acme:db/query@1.0.0`"), "{e}");
        assert!(e.contains("only WASI 0.2"), "{e}");
        let e = explain(&names(&["acme:db/query@1.0.0"])).unwrap();
        assert!(e.contains("provides only sitewatch:check@"), "{e}");
    }

    #[test]
    fn semver_compatibility_follows_the_linker() {
        assert!(compatible("0.1.3", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.4.0", "1.0.0"));
        assert!(!compatible("2.0.0", "1.0.0"));
    }
}
