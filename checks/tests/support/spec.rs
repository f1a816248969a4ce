//! Building `CheckSpec`s for probe tests.

#![allow(dead_code)] // each test crate uses a different subset

use std::time::Duration;

use sitewatch_checks::spec::{CheckSpec, StatusSet, DEFAULT_MAX_BODY_BYTES};

/// A GET of `url` with the defaults a site gets when it sets nothing.
pub fn spec(url: &str) -> CheckSpec {
    CheckSpec {
        name: "test-site".into(),
        url: url::Url::parse(url).unwrap(),
        method: http::Method::GET,
        headers: http::HeaderMap::new(),
        body: None,
        interval: Duration::from_secs(60),
        timeout: Duration::from_secs(5),
        expect_status: StatusSet::default(),
        regex: None,
        regex_absent: None,
        degraded_after: None,
        max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        follow_redirects: 0,
        tls: None,
        plugins: Vec::new(),
    }
}

pub fn re(p: &str) -> Option<std::sync::Arc<regex::Regex>> {
    Some(std::sync::Arc::new(regex::Regex::new(p).unwrap()))
}
