//! Channel configs: unknown fields and types, `${VAR}` from the environment, invalid
//! values naming their field, secrets hidden from `Debug`.

use serde_json::json;
use sitewatch_sink::alerts::channel::{build, build_with, ChannelConfig};

use super::env;

#[test]
fn config_errors_name_the_field_variable_and_channel() {
    let unknown = serde_json::from_value::<ChannelConfig>(
        json!({"type": "webhook", "url": "http://x/", "secrte": "y"}),
    )
    .unwrap_err()
    .to_string();
    assert!(unknown.contains("secrte"), "{unknown}");
    let kind = serde_json::from_value::<ChannelConfig>(json!({"type": "pigeon", "url": "x"}))
        .unwrap_err()
        .to_string();
    assert!(kind.contains("pigeon"), "{kind}");
    // From the real environment: a variable nobody sets.
    let config: ChannelConfig = serde_json::from_value(
        json!({"type": "pagerduty", "routing_key": "${SITEWATCH_TEST_UNSET_ROUTING_KEY}"}),
    )
    .unwrap();
    let e = build("pager", &config).err().unwrap().to_string();
    assert!(
        e.contains("SITEWATCH_TEST_UNSET_ROUTING_KEY") && e.contains("`pager`"),
        "{e}"
    );
    let bad = [
        json!({"type": "webhook", "url": "ftp://x/"}),
        json!({"type": "pagerduty", "routing_key": "k", "severity": "fatal"}),
        json!({"type": "alertmanager", "url": "http://x", "labels": {"site": "a"}}),
        json!({"type": "email", "host": "h", "from": "not an address", "to": ["a@b.c"]}),
        json!({"type": "email", "host": "h", "from": "a@b.c", "to": []}),
        json!({"type": "email", "host": "h", "from": "a@b.c", "to": ["a@b.c"], "username": "u"}),
    ];
    for (config, field) in
        bad.into_iter()
            .zip(["url", "severity", "labels.site", "from", "to", "password"])
    {
        let config: ChannelConfig = serde_json::from_value(config).unwrap();
        let e = build_with("c", &config, &env(&[]))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&format!("field `{field}`")), "{e}");
    }
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let config: ChannelConfig = serde_json::from_value(json!({
        "type": "webhook", "url": "https://hooks.example/T0KEN1", "secret": "hunter2",
        "headers": {"Authorization": "Bearer T0KEN2"}
    }))
    .unwrap();
    let shown = format!("{config:?}");
    for secret in ["T0KEN1", "hunter2", "T0KEN2"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    let config: ChannelConfig = serde_json::from_value(json!({
        "type": "email", "host": "h", "from": "a@b.c", "to": ["a@b.c"],
        "username": "u", "password": "pa55word"
    }))
    .unwrap();
    assert!(!format!("{config:?}").contains("pa55word"));
}
