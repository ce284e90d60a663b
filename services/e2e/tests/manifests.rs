//! The plain Kubernetes manifests (k8s/): every overlay renders with `kubectl
//! kustomize` and holds what docs/deployment.md promises, the configuration they ship is
//! a valid configuration of the services, and the repository's YAML is lint-clean.
//! (No cluster runs here: what is checked is the rendered objects, not a deployment.)

use std::time::Duration;

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use gateway::GatewayConfig;
use gateway::config::{Discovery, Mode};
use room_service::config::RoomServiceConfig;
use serde::Deserialize;
use serde_yaml::Value;

/// How long a tool (kubectl, yamllint) may take; both need about a second.
const TOOL_TIME: Duration = Duration::from_secs(60);

/// The objects of an overlay, rendered.
async fn render(overlay: &str) -> Vec<Value> {
    let yaml = e2e::run_tool("kubectl", &["kustomize", &format!("k8s/overlays/{overlay}")], TOOL_TIME).await;
    serde_yaml::Deserializer::from_str(&yaml).map(|document| Value::deserialize(document).expect("YAML")).collect()
}

fn objects<'a>(all: &'a [Value], kind: &str) -> Vec<&'a Value> {
    all.iter().filter(|object| object["kind"] == kind).collect()
}

fn named<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects(all, kind)
        .into_iter()
        .find(|object| object["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn str_of(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

/// What both overlays must hold.
fn check_common(all: &[Value]) {
    for deployment in objects(all, "Deployment") {
        let name = str_of(&deployment["metadata"]["name"]);
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{name}: non-root");
        for container in pod["containers"].as_sequence().expect("containers") {
            let security = &container["securityContext"];
            assert_eq!(security["readOnlyRootFilesystem"], true, "{name}: read-only root");
            assert_eq!(security["allowPrivilegeEscalation"], false, "{name}");
            assert_eq!(security["capabilities"]["drop"][0], "ALL", "{name}: capabilities dropped");
            assert!(container["resources"]["requests"].is_mapping(), "{name}: resource requests");
        }
    }
    let gateway = &named(all, "Deployment", "gateway")["spec"]["template"]["spec"];
    let container = &gateway["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(gateway["serviceAccountName"], "gateway");

    // The configuration shipped is one the gateway accepts, in the mode intended.
    let config_map = objects(all, "ConfigMap")
        .into_iter()
        .find(|map| str_of(&map["metadata"]["name"]).starts_with("gateway-config-"))
        .expect("the gateway's ConfigMap, with its content hash in the name");
    let mounted = gateway["volumes"][0]["configMap"]["name"].clone();
    assert_eq!(mounted, config_map["metadata"]["name"], "the pods mount it by its hashed name (a change rolls them)");
    let config: GatewayConfig = Figment::from(Serialized::defaults(GatewayConfig::default()))
        .merge(Toml::string(str_of(&config_map["data"]["gateway.toml"])))
        .merge(Serialized::defaults(serde_json::json!({
            "redis": {"url": "redis://redis:6379"},
            "auth": {"jwt_secret": "from-the-secret"},
        })))
        .extract()
        .expect("gateway.toml is a valid gateway configuration");
    config.validate().expect("and a consistent one");
    assert_eq!(config.mode().unwrap(), Mode::Cluster);
    assert_eq!(config.room_service.discovery, Discovery::Kubernetes);
    assert_eq!(config.room_service.kubernetes.service.as_deref(), Some("room-service"));
    // The pod may take longer to stop than the drain takes.
    let pause = container["lifecycle"]["preStop"]["sleep"]["seconds"].as_u64().expect("a preStop pause");
    let grace = gateway["terminationGracePeriodSeconds"].as_u64().expect("a grace period");
    let drain = config.drain.timeout + config.drain.client_grace;
    assert!(grace > pause + drain.as_secs(), "terminationGracePeriodSeconds {grace} ≤ {pause} + {drain:?}");

    let room_config = objects(all, "ConfigMap")
        .into_iter()
        .find(|map| str_of(&map["metadata"]["name"]).starts_with("room-service-config-"))
        .expect("the room service's ConfigMap");
    let _: RoomServiceConfig = Figment::from(Serialized::defaults(RoomServiceConfig::default()))
        .merge(Toml::string(str_of(&room_config["data"]["room-service.toml"])))
        .extract()
        .expect("room-service.toml is a valid room-service configuration");

    // The headless Service the gateways discover, with the port they look for.
    let service = named(all, "Service", "room-service");
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["ports"][0]["name"], "grpc");

    // The gateways may read EndpointSlices, and nothing else.
    let rules = named(all, "Role", "gateway-endpoints-reader")["rules"].as_sequence().expect("rules").clone();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0]["resources"], serde_yaml::to_value(["endpointslices"]).unwrap());
    assert_eq!(rules[0]["verbs"], serde_yaml::to_value(["get", "list", "watch"]).unwrap());
    let binding = named(all, "RoleBinding", "gateway-endpoints-reader");
    let subject = &binding["subjects"][0];
    assert_eq!(subject["name"], "gateway");
    assert_eq!(subject["namespace"], binding["metadata"]["namespace"], "the gateways' own service account");
}

#[tokio::test]
async fn the_dev_overlay_runs_everything_once_with_a_bundled_redis() {
    let all = render("dev").await;
    check_common(&all);
    for deployment in objects(&all, "Deployment") {
        assert_eq!(deployment["spec"]["replicas"], 1);
    }
    assert_eq!(named(&all, "StatefulSet", "redis")["spec"]["replicas"], 1);
    let secret = objects(&all, "Secret");
    assert_eq!(secret.len(), 1, "development secrets are generated");
    for object in &all {
        if object["kind"] != "Namespace" {
            assert_eq!(object["metadata"]["namespace"], "switchboard-dev", "{:?}", object["metadata"]["name"]);
        }
    }
}

#[tokio::test]
async fn the_prod_overlay_uses_an_external_redis_and_scales() {
    let all = render("prod").await;
    check_common(&all);
    assert!(objects(&all, "StatefulSet").is_empty(), "no bundled Redis");
    assert!(objects(&all, "Secret").is_empty(), "the operator creates the Secret");
    assert_eq!(named(&all, "Deployment", "gateway")["spec"]["replicas"], 3);
    assert_eq!(named(&all, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"], 3);
    named(&all, "HorizontalPodAutoscaler", "room-service");
    assert_eq!(named(&all, "PodDisruptionBudget", "gateway")["spec"]["maxUnavailable"], 1);
    named(&all, "PodDisruptionBudget", "room-service");
    let spread = &named(&all, "Deployment", "gateway")["spec"]["template"]["spec"]["topologySpreadConstraints"];
    let keys: Vec<&str> =
        spread.as_sequence().expect("constraints").iter().map(|c| str_of(&c["topologyKey"])).collect();
    assert_eq!(keys, ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
}

#[tokio::test]
async fn the_repository_yaml_is_lint_clean() {
    e2e::run_tool("yamllint", &["--strict", "k8s", "helm", "docs/observability/alerts.test.yaml"], TOOL_TIME).await;
}
