//! Finding the line of a field in a config file's text, for error messages.
//!
//! serde_yaml locates syntax errors but not values, so errors found after parsing
//! (a bad regex, a duplicate name) are located by scanning block-style YAML:
//! the top-level key, the `- ` item of a list entry, and the key inside that entry.
//! Flow-style YAML falls back to the nearest enclosing line found.

/// A 1-based inclusive range of lines.
pub type Span = (usize, usize);

/// Line index of one file's (interpolated) text.
pub struct Outline<'a> {
    lines: Vec<&'a str>,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn is_content(line: &str) -> bool {
    let t = line.trim_start();
    !t.is_empty() && !t.starts_with('#')
}

/// Whether `line` (already stripped of indentation and a leading `- `) starts with `key:`.
fn starts_with_key(t: &str, key: &str) -> bool {
    for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
        if let Some(rest) = t.strip_prefix(quoted.as_str()) {
            if rest.trim_start().starts_with(':') {
                return true;
            }
        }
    }
    false
}

impl<'a> Outline<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        Outline {
            lines: text.lines().collect(),
        }
    }

    /// The whole file.
    pub fn all(&self) -> Span {
        (1, self.lines.len().max(1))
    }

    fn line(&self, n: usize) -> &str {
        self.lines.get(n.wrapping_sub(1)).copied().unwrap_or("")
    }

    /// Lines of the top-level section `key:` (its key line through its last line).
    pub fn section(&self, key: &str) -> Option<Span> {
        let start = (1..=self.lines.len()).find(|&n| {
            let l = self.line(n);
            indent(l) == 0 && starts_with_key(l, key)
        })?;
        let end = (start + 1..=self.lines.len())
            .find(|&n| {
                let l = self.line(n);
                is_content(l) && indent(l) == 0 && !l.starts_with('-')
            })
            .map_or(self.lines.len(), |n| n - 1);
        Some((start, end))
    }

    /// Spans of the blocks inside `span` that start on a line matching `starts`,
    /// at the shallowest indentation such lines have; each runs to the next one.
    fn blocks(&self, span: Span, starts: impl Fn(&str) -> bool) -> Vec<Span> {
        let candidates: Vec<(usize, usize)> = (span.0 + 1..=span.1)
            .filter(|&n| starts(self.line(n)))
            .map(|n| (n, indent(self.line(n))))
            .collect();
        let Some(level) = candidates.iter().map(|&(_, i)| i).min() else {
            return Vec::new();
        };
        let firsts: Vec<usize> = candidates
            .into_iter()
            .filter(|&(_, i)| i == level)
            .map(|(n, _)| n)
            .collect();
        firsts
            .iter()
            .enumerate()
            .map(|(i, &s)| (s, firsts.get(i + 1).map_or(span.1, |&next| next - 1)))
            .collect()
    }

    /// Spans of the items of the block list inside `span` (each from its `- ` line).
    pub fn items(&self, span: Span) -> Vec<Span> {
        self.blocks(span, |l| l.trim_start().starts_with('-'))
    }

    /// Spans of the entries of the block mapping inside `span` (each from its `key:` line).
    pub fn entries(&self, span: Span) -> Vec<(String, Span)> {
        self.blocks(span, |l| is_content(l) && l.contains(':'))
            .into_iter()
            .filter_map(|block| {
                let key = self.line(block.0).trim().split(':').next()?.trim();
                Some((
                    key.trim_matches(|c| c == '"' || c == '\'').to_string(),
                    block,
                ))
            })
            .collect()
    }

    /// Line of `key:` within `span` (also as the first key of a `- ` item), else the span's first line.
    pub fn key(&self, span: Span, key: &str) -> usize {
        (span.0..=span.1)
            .find(|&n| {
                let t = self.line(n).trim_start();
                let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
                starts_with_key(t, key)
            })
            .unwrap_or(span.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment
defaults:
  interval: 30s
sites:
  - name: a
    url: http://a/
    headers:
      - x
  - name: b
    regex: '('
plugins:
  p1:
    path: x.wasm
  p2: { path: y.wasm }
";

    #[test]
    fn finds_sections_items_and_keys() {
        let o = Outline::new(TEXT);
        assert_eq!(o.section("defaults"), Some((2, 3)));
        let sites = o.section("sites").unwrap();
        assert_eq!(sites, (4, 10));
        let items = o.items(sites);
        assert_eq!(items, vec![(5, 8), (9, 10)]);
        assert_eq!(o.key(items[1], "regex"), 10);
        assert_eq!(o.key(items[1], "name"), 9);
        assert_eq!(o.key(items[0], "missing"), 5);
        let plugins = o.entries(o.section("plugins").unwrap());
        assert_eq!(plugins[0], ("p1".to_string(), (12, 13)));
        assert_eq!(plugins[1], ("p2".to_string(), (14, 14)));
    }
}
