//! What one transaction stores: the decoded results of a run of Kafka messages and the
//! messages that did not decode.

use chrono::{DateTime, Utc};
use sitewatch_checks::catalog::SiteDefinition;
use sitewatch_checks::{CheckResult, ErrorKind};

/// A decoded message with where it came from.
#[derive(Debug, Clone)]
pub struct Row {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// The result (boxed: a batch's rows are moved when it grows or is split, and a
    /// decoded result is several hundred bytes).
    pub result: Box<CheckResult>,
    /// The error kind's name as sent, when this build does not know it
    /// ([`ErrorKind::Other`]): a newer agent's kind is stored under its own name.
    pub unknown_error_kind: Option<String>,
}

impl Row {
    /// A result whose error kind (if any) this build knows.
    pub fn new(partition: i32, offset: i64, result: CheckResult) -> Self {
        Row {
            partition,
            offset,
            result: Box::new(result),
            unknown_error_kind: None,
        }
    }

    /// The error kind's name to store, if the result has an error.
    pub fn error_kind(&self) -> Option<&str> {
        let error = self.result.error.as_ref()?;
        match (error.kind, &self.unknown_error_kind) {
            (ErrorKind::Other, Some(name)) => Some(name),
            (kind, _) => Some(kind.as_str()),
        }
    }
}

/// A message that could not be decoded.
#[derive(Debug, Clone)]
pub struct Rejected {
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Why it was rejected.
    pub error: String,
    /// The raw value.
    pub payload: Vec<u8>,
}

/// A message of the site catalog topic: a site's definition, or its removal.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogEntry {
    /// The site (the message key).
    pub site: String,
    /// The definition; `None` for a tombstone (the site was removed).
    pub definition: Option<SiteDefinition>,
    /// The message's Kafka timestamp: when a tombstone was sent.
    pub timestamp: DateTime<Utc>,
}

/// What one transaction stores.
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// Decoded results.
    pub rows: Vec<Row>,
    /// Undecodable messages.
    pub rejected: Vec<Rejected>,
    /// Site catalog entries, in the order consumed.
    pub catalog: Vec<CatalogEntry>,
}

impl Batch {
    /// Messages in the batch.
    pub fn len(&self) -> usize {
        self.rows.len() + self.rejected.len() + self.catalog.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Splits the batch into `parts` batches by site: a site's results and catalog entries
    /// all land in one part, in the order they had, so parts touch disjoint sites. Undecodable
    /// messages go to the first part. Fewer than two parts: the batch as it is.
    pub fn split_by_site(self, parts: usize) -> Vec<Batch> {
        if parts < 2 {
            return vec![self];
        }
        let part_of = |site: &str| {
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(site, &mut hasher);
            (std::hash::Hasher::finish(&hasher) % parts as u64) as usize
        };
        // Room for an even share and some: growing a part's rows moves them.
        let share = self.rows.len() / parts + self.rows.len() / (parts * 8) + 16;
        let mut split: Vec<Batch> = (0..parts)
            .map(|_| Batch {
                rows: Vec::with_capacity(share),
                ..Batch::default()
            })
            .collect();
        for row in self.rows {
            split[part_of(&row.result.site)].rows.push(row);
        }
        for entry in self.catalog {
            split[part_of(&entry.site)].catalog.push(entry);
        }
        split[0].rejected = self.rejected;
        split
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn row(site: &str, offset: i64) -> Row {
        Row::new(0, offset, sitewatch_tests::fixtures::result(site))
    }

    #[test]
    fn a_split_keeps_each_site_whole_and_in_order() {
        let sites: Vec<String> = (0..40).map(|i| format!("site-{i}")).collect();
        let batch = Batch {
            rows: (0..400).map(|i| row(&sites[i % 40], i as i64)).collect(),
            rejected: vec![Rejected {
                topic: "t".into(),
                partition: 0,
                offset: 7,
                error: "not json".into(),
                payload: b"x".to_vec(),
            }],
            catalog: sites
                .iter()
                .map(|s| CatalogEntry {
                    site: s.clone(),
                    definition: None,
                    timestamp: Utc::now(),
                })
                .collect(),
        };
        let parts = batch.clone().split_by_site(3);
        assert_eq!(parts.len(), 3);
        assert!(
            parts.iter().all(|p| !p.rows.is_empty()),
            "40 sites over 3 parts"
        );
        assert_eq!(parts[0].rejected.len(), 1);
        assert!(parts[1..].iter().all(|p| p.rejected.is_empty()));
        for site in &sites {
            let holding: Vec<&Batch> = parts
                .iter()
                .filter(|p| p.rows.iter().any(|r| &r.result.site == site))
                .collect();
            assert_eq!(holding.len(), 1, "{site} in one part");
            let offsets: Vec<i64> = holding[0]
                .rows
                .iter()
                .filter(|r| &r.result.site == site)
                .map(|r| r.offset)
                .collect();
            let whole: Vec<i64> = batch
                .rows
                .iter()
                .filter(|r| &r.result.site == site)
                .map(|r| r.offset)
                .collect();
            assert_eq!(offsets, whole, "{site}'s rows keep their order");
            assert!(
                holding[0].catalog.iter().any(|c| &c.site == site),
                "{site}'s catalog entry goes with its results"
            );
        }
        let total: usize = parts.iter().map(Batch::len).sum();
        assert_eq!(total, batch.len());
        assert_eq!(batch.clone().split_by_site(1).len(), 1);
    }
}
