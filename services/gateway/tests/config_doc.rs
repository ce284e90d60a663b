//! docs/configuration.md is checked against the configuration structs: every setting of
//! both services is listed with its environment variable and its actual default.

use room_service::config::RoomServiceConfig;
use serde_json::Value;

const DOC: &str = include_str!("../../../docs/configuration.md");

/// Every leaf setting as (dotted key, default rendered as the doc shows it).
fn settings(value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(fields) => {
            for (key, value) in fields {
                let key = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                settings(value, &key, out);
            }
        }
        Value::Null => out.push((prefix.to_string(), "unset".into())),
        Value::Array(items) if items.is_empty() => out.push((prefix.to_string(), "none".into())),
        Value::String(text) => out.push((prefix.to_string(), format!("`{text}`"))),
        other => out.push((prefix.to_string(), format!("`{other}`"))),
    }
}

fn check(section: &str, env_prefix: &str, defaults: Value) {
    let section_text = DOC.split("\n## ").find(|part| part.starts_with(section)).expect("the section exists");
    let mut all = Vec::new();
    settings(&defaults, "", &mut all);
    let mut problems = Vec::new();
    for (key, default) in all {
        let env = format!("{env_prefix}{}", key.replace('.', "__").to_uppercase());
        let Some(row) = section_text.lines().find(|line| line.starts_with(&format!("| `{key}` "))) else {
            problems.push(format!("{section}: no row for `{key}`"));
            continue;
        };
        if !row.contains(&format!("`{env}`")) {
            problems.push(format!("{section}: row `{key}` lacks {env}"));
        }
        if !row.contains(&format!("| {default} |")) {
            problems.push(format!("{section}: row `{key}` should show the default {default}"));
        }
    }
    assert!(problems.is_empty(), "docs/configuration.md is out of date:\n{}", problems.join("\n"));
}

#[test]
fn gateway_settings_are_documented() {
    check("Gateway", "GATEWAY_", serde_json::to_value(gateway::GatewayConfig::default()).unwrap());
}

#[test]
fn room_service_settings_are_documented() {
    check("Room service", "ROOM_SERVICE_", serde_json::to_value(RoomServiceConfig::default()).unwrap());
}
