//! Reading config files: which files a list of paths means, and each file's text
//! (UTF-8, interpolated) parsed into its untyped top-level sections.

use std::path::{Path, PathBuf};

use super::interpolate::interpolate;
use super::raw::RawFile;
use super::report::Report;

/// The files named, and every `*.yaml` / `*.yml` in the directories named, in order.
pub(super) fn discover(paths: &[PathBuf], report: &mut Report) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(entries) => entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| {
                        p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml")
                    })
                    .collect(),
                Err(e) => {
                    report.push(path, None, "", format!("cannot read directory: {e}"));
                    continue;
                }
            };
            found.sort();
            if found.is_empty() {
                report.push(path, None, "", "directory has no *.yaml or *.yml files");
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    files
}

/// The file's text: UTF-8 without a byte-order mark, `${VAR}`s interpolated.
pub(super) fn read_text(
    file: &Path,
    secrets: &mut Vec<String>,
    report: &mut Report,
) -> Option<String> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            report.push(file, None, "", format!("cannot read: {e}"));
            return None;
        }
    };
    let text = match String::from_utf8(bytes) {
        // Editors on Windows start files with a byte-order mark; YAML does not want it.
        Ok(t) => match t.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_string(),
            None => t,
        },
        Err(e) => {
            let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            let column =
                good.len() - good.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1) + 1;
            report.push(
                file,
                Some(line),
                "",
                format!("not UTF-8 text: invalid byte at column {column}"),
            );
            return None;
        }
    };
    let (interpolated, missing) = interpolate(&text, |name| std::env::var(name).ok());
    for m in missing {
        report.push(file, Some(m.line), "${…}", m.message);
    }
    secrets.extend(interpolated.secrets);
    Some(interpolated.text)
}

/// The file's top-level sections, each still untyped.
pub(super) fn parse_sections(file: &Path, text: &str, report: &mut Report) -> Option<RawFile> {
    if text.trim().is_empty() {
        return Some(RawFile::default());
    }
    match serde_yaml::from_str(text) {
        Ok(raw) => Some(raw),
        Err(e) => {
            // "More than one document" comes without a location: point at the marker.
            let line = e.location().map(|l| l.line()).or_else(|| {
                text.lines()
                    .enumerate()
                    .filter(|(_, l)| {
                        // Document markers, directives, or a stray byte-order mark.
                        ["---", "...", "%"].iter().any(|m| l.starts_with(m))
                            || l.contains('\u{feff}')
                    })
                    .last()
                    .map(|(i, _)| i + 1)
            });
            report.push(file, line, "", e.to_string());
            None
        }
    }
}
