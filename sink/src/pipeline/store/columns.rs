//! The `results` columns, each declared once here with its type and how a result fills it.
//! The COPY statement, its type list and the staging table follow from this list; migration
//! 0002 creates the table, and `sink/tests/migrations.rs` checks the two agree.

use chrono::{DateTime, Utc};
use sitewatch_checks::schema::PluginResult;
use tokio_postgres::types::{Json, ToSql, Type};

use super::super::batch::Row;
use crate::codes;

macro_rules! columns {
    ($l:lifetime; $($name:ident: $ty:ty => $pg:ident,)*) => {
        /// One `results` row as COPY sends it.
        pub(super) struct Compact<$l> {
            $(pub(super) $name: $ty,)*
        }

        /// The column names, in COPY order.
        pub const NAMES: &[&str] = &[$(stringify!($name)),*];

        /// The column types, in COPY order.
        pub const TYPES: &[Type] = &[$(Type::$pg),*];

        impl Compact<'_> {
            /// The values, in COPY order.
            pub(super) fn values(&self) -> [&(dyn ToSql + Sync); NAMES.len()] {
                [$(&self.$name),*]
            }
        }
    };
}

columns! { 'a;
    started_at: DateTime<Utc> => TIMESTAMPTZ,
    site_id: i32 => INT4,
    total_us: i32 => INT4,
    dns_us: Option<i32> => INT4,
    connect_us: Option<i32> => INT4,
    tls_us: Option<i32> => INT4,
    ttfb_us: Option<i32> => INT4,
    body_bytes: Option<i32> => INT4,
    agent_id: i16 => INT2,
    outcome: i16 => INT2,
    error_kind: Option<i16> => INT2,
    http_status: Option<i16> => INT2,
    http_version: Option<i16> => INT2,
    tls_days_left: Option<i16> => INT2,
    regex_matched: Option<bool> => BOOL,
    regex_absent_matched: Option<bool> => BOOL,
    body_truncated: Option<bool> => BOOL,
    error_message: Option<&'a str> => TEXT,
    plugins: Option<Json<&'a [PluginResult]>> => JSONB,
}

impl<'a> Compact<'a> {
    /// `row` with its dimension ids.
    pub(super) fn new(row: &'a Row, site_id: i32, agent_id: i16, error_kind: Option<i16>) -> Self {
        let r = &row.result;
        let http = r.http.as_ref();
        let t = &r.timings_ms;
        Compact {
            started_at: r.started_at,
            site_id,
            total_us: codes::micros(t.total),
            dns_us: t.dns.map(codes::micros),
            connect_us: t.connect.map(codes::micros),
            tls_us: t.tls.map(codes::micros),
            ttfb_us: t.ttfb.map(codes::micros),
            body_bytes: http.map(|h| codes::int4(h.body_bytes)),
            agent_id,
            outcome: codes::outcome(r.outcome),
            error_kind,
            http_status: http.map(|h| codes::int2(i64::from(h.status))),
            http_version: http.and_then(|h| codes::http_version(&h.version)),
            tls_days_left: r.tls.as_ref().map(|t| codes::int2(t.days_left)),
            regex_matched: r.regex.as_ref().map(|g| g.matched),
            regex_absent_matched: r.regex_absent.as_ref().map(|g| g.matched),
            body_truncated: http.map(|h| h.body_truncated),
            error_message: r.error.as_ref().map(|e| e.message.as_str()),
            plugins: (!r.plugins.is_empty()).then_some(Json(r.plugins.as_slice())),
        }
    }
}

/// The column list for SQL (`started_at, site_id, …`).
pub(super) fn list() -> String {
    NAMES.join(", ")
}
