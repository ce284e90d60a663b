//! Rendered Kubernetes objects: parsing, looking up, schema validation, and the
//! configuration their pods hand the services.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde_yaml::Value;

use crate::TOOL_TIME;

/// The Kubernetes versions whose schemas the objects must satisfy: the oldest with
/// every field used here (the preStop `sleep` action is on by default from 1.30) and a
/// recent one.
const KUBERNETES_VERSIONS: [&str; 2] = ["1.30.0", "1.33.0"];

/// The objects of a multi-document YAML stream (empty documents left out).
pub fn parse(yaml: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(yaml)
        .map(|document| Value::deserialize(document).expect("YAML"))
        .filter(|object| !object.is_null())
        .collect()
}

pub fn objects<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|object| object["kind"] == kind).collect()
}

pub fn named<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
    find(all, kind, name).unwrap_or_else(|| panic!("no {kind} {name}"))
}

pub fn find<'a>(all: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    objects(all, kind).into_iter().find(|object| object["metadata"]["name"] == name)
}

pub fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// Validates every object of the stream against the strict Kubernetes schemas
/// (unknown fields are errors) with kubernetes-validate, which carries the schemas of
/// each Kubernetes release. Kinds it has no schema for (custom resources) are returned
/// for the caller to check.
pub async fn validate_schemas(yaml: &str, scratch: &Path) -> Vec<String> {
    let file = scratch.join("rendered.yaml");
    std::fs::write(&file, yaml).unwrap();
    let path = file.to_str().unwrap();
    let mut unchecked = Vec::new();
    for version in KUBERNETES_VERSIONS {
        let output = e2e::tool_output("kubernetes-validate", &["--strict", "-k", version, path], TOOL_TIME).await;
        let report = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "objects invalid for Kubernetes {version}:\n{report}");
        for line in report.lines().filter(|line| line.contains("Couldn't find schema for kind")) {
            let kind = line.split("kind ").nth(1).and_then(|rest| rest.split_whitespace().next()).unwrap_or(line);
            unchecked.push(kind.to_string());
        }
    }
    unchecked.sort();
    unchecked.dedup();
    unchecked
}

/// The environment a container starts with, among the objects `all`: literal values as
/// given, pod fields as `<field:PATH>`, secret keys as stand-ins. A key of a
/// Secret rendered with the objects must be in it (an optional one is left out when
/// missing, as the kubelet does); a Secret from elsewhere is taken to hold every key.
pub fn container_env(container: &Value, all: &[Value]) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for variable in container["env"].as_sequence().into_iter().flatten() {
        let name = str_of(&variable["name"]).to_string();
        let secret = &variable["valueFrom"]["secretKeyRef"];
        let value = if let Some(value) = variable["value"].as_str() {
            value.to_string()
        } else if secret.is_mapping() {
            let key = str_of(&secret["key"]);
            if let Some(rendered) = find(all, "Secret", str_of(&secret["name"]))
                && rendered["data"].get(key).is_none()
            {
                assert_eq!(secret["optional"], true, "{name}: the Secret has no key {key}");
                continue;
            }
            secret_stand_in(key)
        } else {
            format!("<field:{}>", str_of(&variable["valueFrom"]["fieldRef"]["fieldPath"]))
        };
        env.insert(name, value);
    }
    env
}

/// What a Secret's key stands for in a check: the shape the service expects (a URL for
/// the plain manifests' `redis-url`), else a marker naming the key.
fn secret_stand_in(key: &str) -> String {
    match key {
        "redis-url" => "redis://redis-from-the-secret:6379".into(),
        _ => format!("<secret:{key}>"),
    }
}

/// Runs a service binary with `--check-config`, as the pod would start it: the
/// container's environment (nothing of this process's) and its configuration file
/// written to `config_dir`. Returns the effective configuration it prints.
pub async fn check_config(
    binary: &str,
    env: &BTreeMap<String, String>,
    config_file: (&str, &str),
    config_dir: &Path,
) -> serde_json::Value {
    let (file_name, content) = config_file;
    std::fs::write(config_dir.join(file_name), content).unwrap();
    let mut command = tokio::process::Command::new(e2e::processes::binary_path(binary));
    command.env_clear().arg("--check-config").kill_on_drop(true);
    for (name, value) in env {
        // The pod's file path, mapped to where the test put the file.
        let value = value.replace("/etc/switchboard", config_dir.to_str().unwrap());
        command.env(name, value);
    }
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .expect("--check-config answers at once")
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "{binary} refuses the configuration its pod would get: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("--check-config prints JSON")
}

/// A fresh, empty folder for one test's files, under the target directory.
pub fn scratch(name: &str) -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deployment").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every pod of every workload runs as non-root with a read-only root filesystem, no
/// privilege escalation, no capabilities, and resource requests.
pub fn assert_hardened(all: &[Value]) {
    let pods = all.iter().filter_map(|object| match str_of(&object["kind"]) {
        "Deployment" | "StatefulSet" | "Job" => Some((object, &object["spec"]["template"]["spec"])),
        "Pod" => Some((object, &object["spec"])),
        _ => None,
    });
    for (object, pod) in pods {
        let name = format!("{} {}", str_of(&object["kind"]), str_of(&object["metadata"]["name"]));
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}: non-root");
        for container in pod["containers"].as_sequence().expect("containers") {
            let security = &container["securityContext"];
            assert_eq!(security["readOnlyRootFilesystem"], true, "{name}: read-only root");
            assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(security["capabilities"]["drop"][0], "ALL", "{name}: capabilities dropped");
            assert!(container["resources"]["requests"].is_mapping(), "{name}: resource requests");
        }
    }
}

/// A terminating gateway pod has the time to drain: its grace period exceeds the
/// preStop pause plus the drain settings of its effective configuration `config` (as
/// `--check-config` prints it).
pub fn assert_drain_fits(pod: &Value, config: &serde_json::Value) {
    let pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().expect("a preStop pause");
    let grace = pod["terminationGracePeriodSeconds"].as_u64().expect("a grace period");
    let setting = |name: &str| humantime::parse_duration(config["drain"][name].as_str().expect(name)).unwrap();
    let drain = setting("timeout") + setting("client_grace");
    assert!(grace > pause + drain.as_secs(), "terminationGracePeriodSeconds {grace} ≤ {pause} + {drain:?}");
}

/// The gateways' Role: `get`, `list` and `watch` on EndpointSlices, nothing else.
pub fn assert_reads_endpoint_slices_only(role: &Value) {
    let rules = role["rules"].as_sequence().expect("rules");
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["resources"], serde_yaml::to_value(["endpointslices"]).unwrap());
    assert_eq!(rules[0]["verbs"], serde_yaml::to_value(["get", "list", "watch"]).unwrap());
}
