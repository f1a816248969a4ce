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
    /// The result.
    pub result: CheckResult,
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
            result,
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
}
