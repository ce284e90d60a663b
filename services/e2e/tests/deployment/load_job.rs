//! The in-cluster load test (k8s/loadtest): the Job renders and passes the schemas, its
//! pods reach every gateway of the base through the headless Service with the secret
//! the gateways check tokens with, and its pods' command, run here once per pod at the
//! same time against real processes (Redis, a room service, two gateways) with only the
//! target and the size changed, produces reports that `switchboard-loadtest merge`
//! adds up as the documented command does.

use std::time::Duration;

use e2e::processes::{ProcessCluster, binary_path};
use serde_yaml::Value;

use crate::TOOL_TIME;
use crate::objects::{assert_hardened, named, parse, scratch, str_of, validate_schemas};

/// Each tester process: a short run of few rooms at a modest rate (the Job's 2000
/// messages per second per pod would be for a real cluster, not a shared CI core).
const OVERRIDES: [&str; 6] = ["--duration", "2s", "--rooms", "4", "--rate", "200"];

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().expect("a list").iter().map(|item| str_of(item).to_string()).collect()
}

#[tokio::test]
async fn the_load_test_job_runs_parallel_testers_whose_reports_merge() {
    let yaml = e2e::run_tool("kubectl", &["kustomize", "k8s/loadtest"], TOOL_TIME).await;
    let unchecked = validate_schemas(&yaml, &scratch("load-job")).await;
    assert!(unchecked.is_empty(), "kinds without a schema: {unchecked:?}");
    let all = parse(&yaml);
    assert_hardened(&all);
    let job = named(&all, "Job", "loadtest");
    let spec = &job["spec"];
    let pods = spec["parallelism"].as_u64().expect("parallelism");
    assert!(pods > 1, "several tester pods");
    assert_eq!(spec["completions"], spec["parallelism"], "every pod runs once, all at the same time");
    assert_eq!(spec["backoffLimit"], 0, "a failed run is a result, not retried");
    assert_eq!(spec["template"]["spec"]["restartPolicy"], "Never");
    assert!(spec["ttlSecondsAfterFinished"].as_u64().expect("kept a while") >= 3600, "logs outlive the run");

    let container = &spec["template"]["spec"]["containers"][0];
    assert_eq!(strings(&container["command"]), ["/usr/local/bin/switchboard-loadtest"]);
    let args = strings(&container["args"]);
    assert_eq!(args[0], "negotiate");
    let rate: f64 = args.iter().find_map(|arg| arg.strip_prefix("--rate=")).expect("an offered rate").parse().unwrap();

    // The target is the base's headless Service: one address per ready gateway pod.
    let target = args.iter().find_map(|arg| arg.strip_prefix("--gateway-dns=")).expect("--gateway-dns=");
    let base = parse(&e2e::run_tool("kubectl", &["kustomize", "k8s/base"], TOOL_TIME).await);
    let headless = named(&base, "Service", "gateway-headless");
    assert_eq!(headless["spec"]["clusterIP"], "None");
    assert_eq!(target, format!("gateway-headless:{}", headless["spec"]["ports"][0]["port"].as_u64().unwrap()));
    let gateway_pod = &named(&base, "Deployment", "gateway")["spec"]["template"];
    assert_eq!(headless["spec"]["selector"], gateway_pod["metadata"]["labels"]);

    // The tokens are signed with the secret the gateways check them with.
    let secret_of = |env: &Value, name: &str| {
        let variable = env.as_sequence().unwrap().iter().find(|variable| variable["name"] == name).cloned();
        variable.unwrap_or_else(|| panic!("no {name}"))["valueFrom"]["secretKeyRef"].clone()
    };
    assert_eq!(
        secret_of(&container["env"], "SWITCHBOARD_JWT_SECRET"),
        secret_of(&gateway_pod["spec"]["containers"][0]["env"], "GATEWAY_AUTH__JWT_SECRET")
    );

    // One tester per pod, all at once, as the Job runs them.
    let cluster = ProcessCluster::start(2, &[], "1s").await;
    let (a, b) = (cluster.ws_url(0), cluster.ws_url(1));
    let pod_args: Vec<&str> =
        args.iter().filter(|arg| !arg.starts_with("--gateway-dns=")).map(String::as_str).collect();
    let runs = (0..pods).map(|_| {
        tokio::process::Command::new(binary_path("switchboard-loadtest"))
            .args(&pod_args)
            .args(["--gateway", &a, "--gateway", &b])
            .args(OVERRIDES)
            .env_clear()
            .env("SWITCHBOARD_JWT_SECRET", e2e::SECRET)
            .kill_on_drop(true)
            .output()
    });
    let outputs = tokio::time::timeout(Duration::from_secs(90), futures_util::future::join_all(runs))
        .await
        .expect("every tester ends by itself");
    let mut logs = String::new();
    let mut reports = Vec::new();
    for output in outputs {
        let output = output.expect("the tester runs");
        let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "a tester failed:\n{stderr}\n{stdout}");
        let report: serde_json::Value = serde_json::from_str(stdout.lines().last().expect("a report")).unwrap();
        assert_eq!(report["ok"], true, "{stderr}");
        // A pod's log: what it wrote to standard error, then its report.
        logs.push_str(&stderr);
        logs.push_str(&stdout);
        reports.push(report);
    }

    // The documented `kubectl logs -l job-name=loadtest --tail=-1 | switchboard-loadtest merge`.
    let merged = merge(&logs).await;
    let total = |path: &[&str]| reports.iter().map(|report| at(report, path).as_u64().unwrap()).sum::<u64>();
    assert_eq!(merged["ok"], true);
    assert_eq!(merged["sources"], pods);
    assert_eq!(merged["settings"]["rooms"], 4 * pods);
    assert_eq!(merged["settings"]["rate_msgs_per_s"].as_f64(), Some(200.0 * pods as f64), "not the Job's {rate}");
    assert_eq!(merged["nodes"].as_array().unwrap().len(), 2, "both gateways served the testers");
    for path in [
        &["connections"][..],
        &["negotiations"],
        &["messages", "sent"],
        &["messages", "received"],
        &["latency_us", "count"],
        &["join_us", "count"],
    ] {
        assert_eq!(at(&merged, path).as_u64().unwrap(), total(path), "{path:?}");
    }
    assert!(total(&["messages", "sent"]) > 0, "the testers sent messages");
    let slowest = reports.iter().map(|report| report["latency_us"]["max_us"].as_u64().unwrap()).max().unwrap();
    assert_eq!(merged["latency_us"]["max_us"].as_u64().unwrap(), slowest, "the histograms were merged, not averaged");
}

fn at<'a>(value: &'a serde_json::Value, path: &[&str]) -> &'a serde_json::Value {
    path.iter().fold(value, |value, key| &value[*key])
}

/// `switchboard-loadtest merge` reading `logs` on its standard input.
async fn merge(logs: &str) -> serde_json::Value {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(binary_path("switchboard-loadtest"))
        .arg("merge")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(logs.as_bytes()).await.unwrap();
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.unwrap().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("the merged report")
}
