//! The `sink:` section of the sink's config file: sink settings by their flag names
//! (`brokers`, `database_url`, `batch_max_rows`, ...), applied as if given on the command
//! line, except where the flag itself or its environment variable is given: those win.
//! A list is joined with commas (as the environment variables take them).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::CommandFactory;
use serde_yaml::Value;

use crate::alerts::{FileError, FileErrors};
use crate::cli::Cli;

/// `args` (the program's, first the program name) with the config file's `sink:` settings
/// added where neither the flag nor its environment variable is given. Without a config
/// file (`--config`, `SITEWATCH_CONFIG`), or one that cannot be read (reported where the
/// file is loaded), `args` as they are.
pub fn args_with_file(args: Vec<OsString>) -> Result<Vec<OsString>, FileErrors> {
    let Some(path) = config_path(&args) else {
        return Ok(args);
    };
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(args);
    };
    let Ok(Value::Mapping(top)) = serde_yaml::from_str::<Value>(&text) else {
        return Ok(args);
    };
    let Some(Value::Mapping(sink)) = top.get("sink") else {
        return Ok(args);
    };
    let command = Cli::command();
    let mut errors = Vec::new();
    let mut added = Vec::new();
    for (key, value) in sink {
        let name = key.as_str().unwrap_or_default();
        let long = name.replace('_', "-");
        let line = text
            .lines()
            .position(|l| l.trim_start().starts_with(&format!("{name}:")))
            .map(|i| i + 1);
        let error = |message: String| FileError {
            file: path.clone(),
            line,
            field: format!("sink.{name}"),
            message,
        };
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && long != "config")
        else {
            errors.push(error(
                "not a sink setting (use a flag's name, e.g. brokers)".into(),
            ));
            continue;
        };
        let Some(text) = scalar(value) else {
            errors.push(error("expected a value or a list of values".into()));
            continue;
        };
        let flag = format!("--{long}");
        let on_command_line = args.iter().skip(1).any(|a| {
            a.to_str()
                .is_some_and(|a| a == flag || a.starts_with(&format!("{flag}=")))
        });
        let in_environment = arg.get_env().is_some_and(|e| std::env::var_os(e).is_some());
        if !on_command_line && !in_environment {
            added.push(OsString::from(format!("{flag}={text}")));
        }
    }
    if !errors.is_empty() {
        return Err(FileErrors(errors));
    }
    let mut out = Vec::with_capacity(args.len() + added.len());
    let mut args = args.into_iter();
    out.extend(args.next());
    out.extend(added);
    out.extend(args);
    Ok(out)
}

/// `--config PATH`, `--config=PATH`, else `SITEWATCH_CONFIG`.
fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut iter = args.iter().skip(1);
    while let Some(a) = iter.next() {
        match a.to_str() {
            Some("--config") => return iter.next().map(PathBuf::from),
            Some(a) if a.starts_with("--config=") => {
                return Some(PathBuf::from(&a["--config=".len()..]))
            }
            _ => {}
        }
    }
    std::env::var_os("SITEWATCH_CONFIG").map(PathBuf::from)
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Sequence(items) => {
            let parts: Option<Vec<String>> = items
                .iter()
                .map(|i| match i {
                    Value::Sequence(_) => None,
                    other => scalar(other),
                })
                .collect();
            parts.map(|p| p.join(","))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn file_settings_fill_in_what_flags_do_not_give() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sink.yaml");
        std::fs::write(
            &file,
            "sink:\n  brokers: [a:9092, b:9092]\n  batch_max_rows: 7\n  group: from-file\n",
        )
        .unwrap();
        let config = format!("--config={}", file.display());
        let out = args_with_file(args(&["sink", &config, "--group", "flag", "report"])).unwrap();
        let text: Vec<String> = out.iter().map(|a| a.to_string_lossy().into()).collect();
        assert!(
            text.contains(&"--brokers=a:9092,b:9092".to_string()),
            "{text:?}"
        );
        assert!(text.contains(&"--batch-max-rows=7".to_string()), "{text:?}");
        assert!(
            !text.iter().any(|a| a.contains("from-file")),
            "the flag wins: {text:?}"
        );
        assert_eq!(text[0], "sink");
        assert_eq!(text.last().map(String::as_str), Some("report"));

        std::fs::write(&file, "sink:\n  brokers: x\n  colour: blue\n").unwrap();
        let e = args_with_file(args(&["sink", &config])).unwrap_err();
        assert_eq!(e.0.len(), 1);
        assert_eq!(e.0[0].field, "sink.colour");
        assert_eq!(e.0[0].line, Some(3));
    }
}
