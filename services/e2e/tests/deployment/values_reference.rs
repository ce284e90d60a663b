//! docs/deployment.md's reference of the chart's values lists exactly the values the
//! chart has (the leaves of values.schema.json, which refuses any other key), each with
//! its default as in values.yaml.

use std::collections::BTreeSet;

fn schema_leaves(schema: &serde_json::Value, prefix: &str, leaves: &mut BTreeSet<String>) {
    match schema["properties"].as_object() {
        Some(properties) => {
            for (key, property) in properties {
                let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
                schema_leaves(property, &path, leaves);
            }
        }
        None => {
            leaves.insert(prefix.to_string());
        }
    }
}

fn value_at<'a>(values: &'a serde_yaml::Value, path: &str) -> &'a serde_yaml::Value {
    path.split('.').fold(values, |value, key| value.get(key).unwrap_or_else(|| panic!("values.yaml has no {path}")))
}

/// A scalar default as the reference writes it: JSON-like, strings quoted.
fn written(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(text) if text.contains('\n') => None,
        serde_yaml::Value::String(text) => Some(format!("`{}`", serde_json::to_string(text).unwrap())),
        serde_yaml::Value::Bool(_) | serde_yaml::Value::Number(_) => {
            Some(format!("`{}`", serde_yaml::to_string(value).unwrap().trim()))
        }
        _ => None,
    }
}

#[test]
fn the_values_reference_matches_the_chart() {
    let read = |path: &str| std::fs::read_to_string(e2e::repository_path(path)).unwrap();
    let schema: serde_json::Value = serde_json::from_str(&read("helm/switchboard/values.schema.json")).unwrap();
    let values: serde_yaml::Value = serde_yaml::from_str(&read("helm/switchboard/values.yaml")).unwrap();
    let mut leaves = BTreeSet::new();
    schema_leaves(&schema, "", &mut leaves);

    let doc = read("docs/deployment.md");
    let section = doc.split("## Chart values").nth(1).expect("a `## Chart values` section");
    let section = section.split("\n## ").next().unwrap();
    let mut documented = BTreeSet::new();
    for row in section.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = row.split(" | ").collect();
        let key = cells[0].trim_start_matches("| ").trim_matches('`');
        assert!(documented.insert(key.to_string()), "{key} is listed twice");
        assert!(leaves.contains(key), "the reference lists {key}, which the chart does not have");
        if let Some(default) = written(value_at(&values, key)) {
            assert_eq!(cells[1], default, "default of {key}");
        }
    }
    let missing: Vec<&String> = leaves.difference(&documented).collect();
    assert!(missing.is_empty(), "values missing from docs/deployment.md's reference: {missing:?}");
}
