//! The plain manifests (k8s/): every overlay renders with `kubectl kustomize`, passes
//! the Kubernetes schemas and holds what docs/deployment.md promises, and the
//! configuration it ships is a valid configuration of the services.

use serde_yaml::Value;

use crate::TOOL_TIME;
use crate::objects::{
    assert_drain_fits, assert_hardened, assert_reads_endpoint_slices_only, check_config, container_env, named, objects,
    parse, scratch, str_of, validate_schemas,
};

/// The objects of an overlay, rendered and validated against the schemas.
async fn render(overlay: &str) -> Vec<Value> {
    let yaml = e2e::run_tool("kubectl", &["kustomize", &format!("k8s/overlays/{overlay}")], TOOL_TIME).await;
    let unchecked = validate_schemas(&yaml, &scratch(&format!("kustomize-{overlay}"))).await;
    assert!(unchecked.is_empty(), "kinds without a schema: {unchecked:?}");
    parse(&yaml)
}

/// What both overlays must hold.
async fn check_common(all: &[Value], overlay: &str) {
    assert_hardened(all);
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
    let dir = scratch(&format!("kustomize-{overlay}-config"));
    let file = ("gateway.toml", str_of(&config_map["data"]["gateway.toml"]));
    let config = check_config("gateway", &container_env(container, all), file, &dir).await;
    assert_eq!(config["mode"], "cluster");
    assert_eq!(config["room_service"]["discovery"], "kubernetes");
    assert_eq!(config["room_service"]["kubernetes"]["service"], "room-service");
    assert_drain_fits(gateway, &config);

    let room_config = objects(all, "ConfigMap")
        .into_iter()
        .find(|map| str_of(&map["metadata"]["name"]).starts_with("room-service-config-"))
        .expect("the room service's ConfigMap");
    let room = &named(all, "Deployment", "room-service")["spec"]["template"]["spec"]["containers"][0];
    let file = ("room-service.toml", str_of(&room_config["data"]["room-service.toml"]));
    check_config("room-service", &container_env(room, all), file, &dir).await;

    // The headless Service the gateways discover, with the port they look for.
    let service = named(all, "Service", "room-service");
    assert_eq!(service["spec"]["clusterIP"], "None");
    assert_eq!(service["spec"]["ports"][0]["name"], "grpc");

    // The gateways may read EndpointSlices, and nothing else.
    assert_reads_endpoint_slices_only(named(all, "Role", "gateway-endpoints-reader"));
    let binding = named(all, "RoleBinding", "gateway-endpoints-reader");
    let subject = &binding["subjects"][0];
    assert_eq!(subject["name"], "gateway");
    assert_eq!(subject["namespace"], binding["metadata"]["namespace"], "the gateways' own service account");
}

#[tokio::test]
async fn the_dev_overlay_runs_everything_once_with_a_bundled_redis() {
    let all = render("dev").await;
    check_common(&all, "dev").await;
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
    check_common(&all, "prod").await;
    assert!(objects(&all, "StatefulSet").is_empty(), "no bundled Redis");
    assert!(objects(&all, "Secret").is_empty(), "the operator creates the Secret");
    // The autoscalers own the counts; a count in a Deployment would undo their scaling
    // at every apply.
    for deployment in objects(&all, "Deployment") {
        assert!(deployment["spec"].get("replicas").is_none(), "{:?}", deployment["metadata"]["name"]);
    }
    assert_eq!(named(&all, "HorizontalPodAutoscaler", "gateway")["spec"]["minReplicas"], 3);
    assert_eq!(named(&all, "HorizontalPodAutoscaler", "room-service")["spec"]["minReplicas"], 2);
    assert_eq!(named(&all, "PodDisruptionBudget", "gateway")["spec"]["maxUnavailable"], 1);
    named(&all, "PodDisruptionBudget", "room-service");
    let spread = &named(&all, "Deployment", "gateway")["spec"]["template"]["spec"]["topologySpreadConstraints"];
    let keys: Vec<&str> =
        spread.as_sequence().expect("constraints").iter().map(|c| str_of(&c["topologyKey"])).collect();
    assert_eq!(keys, ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
}
