//! The Helm chart (helm/switchboard): `helm lint --strict` and a full `helm template`
//! with the default values, a production-like set and a single-node set; the objects
//! pass the Kubernetes schemas, hold what docs/deployment.md promises, and hand the two
//! binaries a configuration they accept (each is run with `--check-config` on exactly
//! the file and environment its pod would get).

use serde_yaml::Value;

use crate::TOOL_TIME;
use crate::objects::{
    assert_drain_fits, assert_hardened, assert_reads_endpoint_slices_only, check_config, container_env, named, objects,
    parse, scratch, str_of, validate_schemas,
};

const CHART: &str = "helm/switchboard";
const RELEASE: &str = "sb";
const NAMESPACE: &str = "signaling";
/// The prefix of every object's name for release `sb`.
const FULLNAME: &str = "sb-switchboard";

/// `helm lint --strict` and `helm template` with these values files and `--set`
/// arguments; the objects, after schema validation, and the kinds without a schema.
async fn render(values_files: &[&str], sets: &[&str], scratch_name: &str) -> (Vec<Value>, Vec<String>) {
    let mut values: Vec<String> = Vec::new();
    for file in values_files {
        values.extend(["-f".into(), format!("{CHART}/ci/{file}")]);
    }
    for set in sets {
        values.extend(["--set-string".into(), set.to_string()]);
    }
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let lint = [&["lint", "--strict", CHART, "--namespace", NAMESPACE][..], &values].concat();
    e2e::run_tool("helm", &lint, TOOL_TIME).await;
    let template = [&["template", RELEASE, CHART, "--namespace", NAMESPACE][..], &values].concat();
    let yaml = e2e::run_tool("helm", &template, TOOL_TIME).await;
    let unchecked = validate_schemas(&yaml, &scratch(scratch_name)).await;
    (parse(&yaml), unchecked)
}

/// `helm template` that must fail; its error output.
async fn render_error(sets: &[&str]) -> String {
    let mut args = vec!["template", RELEASE, CHART];
    for set in sets {
        args.extend(["--set", set]);
    }
    let output = e2e::tool_output("helm", &args, TOOL_TIME).await;
    assert!(!output.status.success(), "helm accepted {sets:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn gateway_name() -> String {
    format!("{FULLNAME}-gateway")
}

fn room_service_name() -> String {
    format!("{FULLNAME}-room-service")
}

fn pod_spec<'a>(all: &'a [Value], deployment: &str) -> &'a Value {
    &named(all, "Deployment", deployment)["spec"]["template"]["spec"]
}

fn container_port(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_sequence()
        .and_then(|ports| ports.iter().find(|port| port["name"] == name))
        .and_then(|port| port["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("no container port {name}"))
}

fn service_port<'a>(service: &'a Value, name: &str) -> &'a Value {
    service["spec"]["ports"]
        .as_sequence()
        .and_then(|ports| ports.iter().find(|port| port["name"] == name))
        .unwrap_or_else(|| panic!("service {:?} has no port {name}", service["metadata"]["name"]))
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector.as_mapping().expect("a selector").iter().all(|(key, value)| labels.get(key) == Some(value))
}

/// What every rendering must hold: hardened pods; gateways and room service started
/// with settings their binaries accept, wired to each other; drain, probes and RBAC.
async fn check_services(all: &[Value], scratch_name: &str) {
    assert_hardened(all);
    let config_map = named(all, "ConfigMap", &format!("{FULLNAME}-config"));
    let dir = scratch(scratch_name);

    // The gateway: the configuration its pod gets, as its binary reads it.
    let gateway_pod = pod_spec(all, &gateway_name());
    let gateway = &gateway_pod["containers"][0];
    let env = container_env(gateway, all);
    let file = ("gateway.toml", str_of(&config_map["data"]["gateway.toml"]));
    let config = check_config("gateway", &env, file, &dir).await;
    assert_eq!(config["mode"], "cluster");
    assert_eq!(config["room_service"]["discovery"], "kubernetes");
    assert!(config["auth"]["jwt_secret"].is_string(), "the JWT secret comes from the Secret");
    assert!(config["room_service"]["api_secret"].is_string(), "and the API secret");
    assert!(config["listen"].as_str().unwrap().ends_with(&format!(":{}", container_port(gateway, "http"))));
    let admin = config["telemetry"]["admin_listen"].as_str().unwrap();
    assert!(admin.starts_with("0.0.0.0:"), "scrapable from outside the pod: {admin}");
    assert!(admin.ends_with(&format!(":{}", container_port(gateway, "admin"))));

    // The Service it watches exists, is headless, selects the room-service pods and
    // has the port it looks for.
    let watched = config["room_service"]["kubernetes"]["service"].as_str().expect("a watched Service");
    let service = named(all, "Service", watched);
    assert_eq!(service["spec"]["clusterIP"], "None", "one endpoint per pod");
    let room_deployment = named(all, "Deployment", &room_service_name());
    assert!(labels_match(&service["spec"]["selector"], &room_deployment["spec"]["template"]["metadata"]["labels"]));
    let port_name = config["room_service"]["kubernetes"]["port"].as_str().unwrap();
    let room_pod = &room_deployment["spec"]["template"]["spec"];
    let room = &room_pod["containers"][0];
    assert_eq!(service_port(service, port_name)["port"].as_u64(), Some(container_port(room, "grpc")));

    // The room service accepts its settings, on the port its Service names.
    let room_env = container_env(room, all);
    let file = ("room-service.toml", str_of(&config_map["data"]["room-service.toml"]));
    let room_config = check_config("room-service", &room_env, file, &dir).await;
    assert!(room_config["listen"].as_str().unwrap().ends_with(&format!(":{}", container_port(room, "grpc"))));
    assert!(room_config["api_secret"].is_string(), "calls are authenticated");
    assert_eq!(room_env.get("ROOM_SERVICE_API_SECRET"), env.get("GATEWAY_ROOM_SERVICE__API_SECRET"), "one secret");
    assert_eq!(room_config["redis"]["key_prefix"], config["redis"]["key_prefix"], "one keyspace");

    assert_drain_fits(gateway_pod, &config);
    assert_eq!(gateway["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(gateway["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(room["readinessProbe"]["grpc"]["port"].as_u64(), Some(container_port(room, "grpc")));

    // The gateways' service account may read EndpointSlices in this namespace, and
    // nothing else; the room service's mounts no token at all.
    assert_reads_endpoint_slices_only(named(all, "Role", &format!("{}-endpoints-reader", gateway_name())));
    let binding = named(all, "RoleBinding", &format!("{}-endpoints-reader", gateway_name()));
    assert_eq!(binding["subjects"][0]["name"], gateway_pod["serviceAccountName"]);
    assert_eq!(binding["subjects"][0]["namespace"], NAMESPACE);
    assert_eq!(room_pod["automountServiceAccountToken"], false);

    // The helm test reaches every gateway pod through the headless Service.
    let test = named(all, "Pod", &format!("{FULLNAME}-smoke-test"));
    assert_eq!(test["metadata"]["annotations"]["helm.sh/hook"], "test");
    let command: Vec<&str> =
        test["spec"]["containers"][0]["command"].as_sequence().expect("a command").iter().map(str_of).collect();
    assert_eq!(command[..2], ["/usr/local/bin/switchboard-loadtest", "smoke"]);
    let target = command[command.iter().position(|arg| *arg == "--gateway-dns").expect("--gateway-dns") + 1];
    let headless = named(all, "Service", &format!("{}-headless", gateway_name()));
    assert_eq!(
        target,
        format!(
            "{}.{NAMESPACE}.svc:{}",
            str_of(&headless["metadata"]["name"]),
            service_port(headless, "http")["port"].as_u64().unwrap()
        )
    );
    assert_eq!(headless["spec"]["clusterIP"], "None");
}

#[tokio::test]
async fn default_values_install_a_complete_try_out_cluster() {
    let (all, unchecked) = render(&[], &[], "chart-default").await;
    assert!(unchecked.is_empty(), "kinds without a schema: {unchecked:?}");
    check_services(&all, "chart-default-config").await;
    // The bundled Redis, and the Secret with generated secrets.
    let redis = named(&all, "StatefulSet", &format!("{FULLNAME}-redis"));
    assert_eq!(redis["spec"]["replicas"], 1);
    let env = container_env(&pod_spec(&all, &gateway_name())["containers"][0], &all);
    assert_eq!(env["GATEWAY_REDIS__URL"], format!("redis://{FULLNAME}-redis:6379"));
    assert!(!env.contains_key("GATEWAY_REDIS__PASSWORD"), "the bundled Redis has no password");
    assert!(!env.contains_key("GATEWAY_LIMITS__CLIENT_IP_HEADER"), "no ingress: the peer address counts");
    let secret = named(&all, "Secret", FULLNAME);
    for key in ["jwt-secret", "api-secret"] {
        let encoded = str_of(&secret["data"][key]);
        assert!(encoded.len() >= 40, "{key} is generated, long: {encoded}");
    }
    for deployment in [gateway_name(), room_service_name()] {
        assert_eq!(named(&all, "Deployment", &deployment)["spec"]["replicas"], 2);
        named(&all, "PodDisruptionBudget", &deployment);
        let spread = &pod_spec(&all, &deployment)["topologySpreadConstraints"];
        let keys: Vec<&str> =
            spread.as_sequence().expect("constraints").iter().map(|c| str_of(&c["topologyKey"])).collect();
        assert_eq!(keys, ["kubernetes.io/hostname", "topology.kubernetes.io/zone"]);
    }
    for kind in ["HorizontalPodAutoscaler", "Ingress", "NetworkPolicy", "ServiceMonitor", "PrometheusRule"] {
        assert!(objects(&all, kind).is_empty(), "{kind} is off by default");
    }
}

#[tokio::test]
async fn production_values_use_external_redis_your_secret_autoscaling_and_policies() {
    let (all, unchecked) = render(&["production-values.yaml"], &[], "chart-production").await;
    assert_eq!(unchecked, ["PrometheusRule", "ServiceMonitor"], "the custom resources are checked below");
    check_services(&all, "chart-production-config").await;
    assert!(objects(&all, "StatefulSet").is_empty(), "no bundled Redis");
    assert!(objects(&all, "Secret").is_empty(), "the operator's own Secret is used");
    for deployment in [gateway_name(), room_service_name()] {
        let object = named(&all, "Deployment", &deployment);
        assert!(object["spec"]["replicas"].is_null(), "{deployment}: the HPA owns the replica count");
        for variable in object["spec"]["template"]["spec"]["containers"][0]["env"].as_sequence().unwrap() {
            if let Some(secret) = variable["valueFrom"]["secretKeyRef"].as_mapping() {
                assert_eq!(secret["name"], "switchboard", "{:?}", variable["name"]);
            }
        }
    }
    let env = container_env(&pod_spec(&all, &gateway_name())["containers"][0], &all);
    assert!(env["GATEWAY_REDIS__URL"].starts_with("redis-sentinel://"));
    assert_eq!(env["GATEWAY_REDIS__PASSWORD"], "<secret:redis-password>");
    assert_eq!(env["GATEWAY_TURN__SECRET"], "<secret:turn-secret>");
    assert_eq!(env["GATEWAY_LIMITS__CLIENT_IP_HEADER"], "x-forwarded-for", "behind the ingress: per client");

    let hpa = named(&all, "HorizontalPodAutoscaler", &gateway_name());
    assert_eq!(hpa["spec"]["minReplicas"], 3);
    let metrics = hpa["spec"]["metrics"].as_sequence().unwrap();
    assert_eq!(metrics[1]["pods"]["metric"]["name"], "switchboard_gateway_connections", "a metric the gateway exports");
    assert_eq!(metrics[1]["pods"]["target"]["averageValue"], "5000");
    named(&all, "HorizontalPodAutoscaler", &room_service_name());

    let ingress = named(&all, "Ingress", &gateway_name());
    assert_eq!(ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"], "3600");
    let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    let gateway_service = named(&all, "Service", &gateway_name());
    assert_eq!(backend["name"], gateway_service["metadata"]["name"]);
    service_port(gateway_service, str_of(&backend["port"]["name"]));

    // The room service admits gRPC from the gateways only.
    let policy = named(&all, "NetworkPolicy", &room_service_name());
    let from = &policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"];
    assert!(labels_match(from, &named(&all, "Deployment", &gateway_name())["spec"]["template"]["metadata"]["labels"]));
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], "grpc");

    // The ServiceMonitor finds both services' admin ports; the PrometheusRule is the
    // rule file promtool tests (docs/observability/alerts.test.yaml).
    let monitor = named(&all, "ServiceMonitor", FULLNAME);
    assert_eq!(monitor["metadata"]["labels"]["release"], "kube-prometheus-stack");
    let selector = &monitor["spec"]["selector"]["matchLabels"];
    let scraped: Vec<&Value> =
        objects(&all, "Service").into_iter().filter(|s| labels_match(selector, &s["metadata"]["labels"])).collect();
    assert_eq!(scraped.len(), 2, "the gateways' and the room service's headless Services");
    for service in scraped {
        service_port(service, str_of(&monitor["spec"]["endpoints"][0]["port"]));
    }
    let rules = named(&all, "PrometheusRule", &format!("{FULLNAME}-rules"));
    let file: Value = serde_yaml::from_str(
        &std::fs::read_to_string(e2e::repository_path(&format!("{CHART}/files/prometheus-rules.yaml"))).unwrap(),
    )
    .unwrap();
    assert_eq!(rules["spec"], file);
    let dashboard = named(&all, "ConfigMap", &format!("{FULLNAME}-grafana-dashboard"));
    let json: serde_json::Value = serde_json::from_str(str_of(&dashboard["data"]["switchboard-cluster.json"])).unwrap();
    assert!(json["panels"].is_array());
}

#[tokio::test]
async fn a_single_node_install_has_no_blocking_budgets_and_tests_on_one_gateway() {
    let (all, _) = render(&["single-node-values.yaml"], &[], "chart-single").await;
    check_services(&all, "chart-single-config").await;
    assert!(objects(&all, "PodDisruptionBudget").is_empty(), "a budget on one pod would block every node drain");
    let test = named(&all, "Pod", &format!("{FULLNAME}-smoke-test"));
    let command = serde_yaml::to_string(&test["spec"]["containers"][0]["command"]).unwrap();
    assert!(command.contains("--allow-same-gateway"), "{command}");
}

#[tokio::test]
async fn a_configuration_change_rolls_the_pods_it_concerns_only() {
    let checksum = |all: &[Value], deployment: &str| {
        str_of(&named(all, "Deployment", deployment)["spec"]["template"]["metadata"]["annotations"]["checksum/config"])
            .to_string()
    };
    let (before, _) = render(&[], &[], "chart-before").await;
    let (after, _) = render(&[], &["gateway.config=[telemetry]\ntrace_sample_ratio = 0.5\n"], "chart-after").await;
    assert!(!checksum(&before, &room_service_name()).is_empty(), "each Deployment carries its checksum");
    assert_ne!(checksum(&before, &gateway_name()), checksum(&after, &gateway_name()));
    assert_eq!(checksum(&before, &room_service_name()), checksum(&after, &room_service_name()));
}

#[tokio::test]
async fn bad_values_are_refused_with_the_reason() {
    let misspelt = render_error(&["gateway.replicas=3"]).await;
    assert!(misspelt.contains("replicas"), "{misspelt}");
    let mistyped = render_error(&["gateway.replicaCount=many"]).await;
    assert!(mistyped.contains("replicaCount"), "{mistyped}");
    let no_redis = render_error(&["redis.enabled=false"]).await;
    assert!(no_redis.contains("redis.url is required"), "{no_redis}");
    let not_redis = render_error(&["redis.enabled=false", "redis.url=http://redis:7000"]).await;
    assert!(not_redis.contains("url"), "{not_redis}");
}

#[tokio::test]
async fn a_redis_cluster_is_given_by_its_url() {
    let url = "redis-cluster://redis-0:6379?node=redis-1:6379&node=redis-2:6379";
    let (all, _) = render(&["production-values.yaml"], &[&format!("redis.url={url}")], "chart-redis-cluster").await;
    assert!(objects(&all, "StatefulSet").is_empty(), "no bundled Redis");
    for deployment in [gateway_name(), room_service_name()] {
        let env = container_env(&pod_spec(&all, &deployment)["containers"][0], &all);
        let variable = env.iter().find(|(name, _)| name.ends_with("REDIS__URL")).map(|(_, value)| value.as_str());
        assert_eq!(variable, Some(url), "{deployment}");
    }
}
