//! `${VAR}` / `${VAR:-default}` substitution in the raw config text, before YAML parsing.
//!
//! Substituted values are treated as secrets: they are collected so that
//! `--check-config` can mask them wherever they appear.

/// The text after substitution and the values that were substituted.
#[derive(Debug, Default)]
pub struct Interpolated {
    /// Config text with every `${…}` replaced.
    pub text: String,
    /// Non-empty values that came from the environment (to be masked when printed).
    pub secrets: Vec<String>,
}

/// One unresolvable `${…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationError {
    /// 1-based line of the reference.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Replaces `${VAR}` and `${VAR:-default}` using `lookup`; `$${` stands for a literal `${`.
pub fn interpolate(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> (Interpolated, Vec<InterpolationError>) {
    let mut out = Interpolated {
        text: String::with_capacity(text.len()),
        secrets: Vec::new(),
    };
    let mut errors = Vec::new();
    let mut rest = text;
    let mut line = 1;
    while let Some(pos) = rest.find('$') {
        let (before, after) = rest.split_at(pos);
        line += before.matches('\n').count();
        out.text.push_str(before);
        if let Some(tail) = after.strip_prefix("$${") {
            out.text.push_str("${");
            rest = tail;
            continue;
        }
        let Some(body_start) = after.strip_prefix("${") else {
            out.text.push('$');
            rest = &after[1..];
            continue;
        };
        let Some(end) = body_start.find('}') else {
            errors.push(InterpolationError {
                line,
                message: "`${` without a closing `}`".into(),
            });
            out.text.push_str(after);
            rest = "";
            break;
        };
        let expr = &body_start[..end];
        let (name, default) = match expr.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (expr, None),
        };
        let valid_name = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !name.starts_with(|c: char| c.is_ascii_digit());
        if !valid_name {
            errors.push(InterpolationError {
                line,
                message: format!("`${{{expr}}}` is not a valid variable reference"),
            });
        } else {
            match lookup(name).or_else(|| default.map(str::to_string)) {
                Some(value) => {
                    if !value.is_empty() {
                        out.secrets.push(value.clone());
                    }
                    out.text.push_str(&value);
                }
                None => errors.push(InterpolationError {
                    line,
                    message: format!(
                        "environment variable `{name}` is not set (use `${{{name}:-default}}` for a default)"
                    ),
                }),
            }
        }
        rest = &body_start[end + 1..];
    }
    out.text.push_str(rest);
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("s3cret".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn substitutes_defaults_and_escapes() {
        let (out, errs) = interpolate("a: ${TOKEN}\nb: ${NOPE:-dflt}\nc: $${LIT}\nd: $5", env);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(out.text, "a: s3cret\nb: dflt\nc: ${LIT}\nd: $5");
        assert_eq!(out.secrets, vec!["s3cret".to_string(), "dflt".to_string()]);
    }

    #[test]
    fn reports_missing_variables_with_their_line() {
        let (_, errs) = interpolate("a: 1\nb: ${MISSING}\nc: ${bad-name}\nd: ${OPEN", env);
        assert_eq!(errs.len(), 3);
        assert_eq!(errs[0].line, 2);
        assert!(errs[0].message.contains("MISSING"));
        assert_eq!(errs[1].line, 3);
        assert_eq!(errs[2].line, 4);
    }
}
