//! The dashboard's main panels, drawn from a real Prometheus after a load run (no Grafana
//! runs on this machine). Three gateway processes, a room service and Redis; a real
//! Prometheus scrapes their admin ports every second with the alert rules loaded.
//!
//! The run, 90 s: pairs of clients on different gateways negotiate (a trickle candidate
//! each way) every 100 ms; after 30 s every 25 ms; at 60 s gateway 2 is killed with
//! SIGKILL (its clients are gone, the room service cleans up after its lease expires).
//! Another client joins and leaves a room all along. Then the panels' queries are run
//! over the whole run and drawn into one SVG.
//!
//! Bounded: fixed client count and phases, the whole run capped at 3 minutes.
//! Run: `cargo build --release --bins && cargo run --release -p e2e --example dashboard_plot`
//! (writes docs/images/observability-load.svg).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use e2e::processes::ProcessCluster;
use e2e::prometheus::{Prometheus, Series};
use plotters::prelude::*;
use serde_json::json;

const PAIRS: usize = 30;
const PHASE: Duration = Duration::from_secs(30);
/// What the dashboard calls `$__rate_interval`, here.
const RATE: &str = "10s";

/// One panel: title, unit, and its lines as (legend template, query).
type Panel = (&'static str, &'static str, &'static [(&'static str, &'static str)]);

/// The panels drawn.
const PANELS: &[Panel] = &[
    ("Connections per gateway", "", &[("{{instance}}", "sum by (instance) (switchboard_gateway_connections)")]),
    (
        "Messages from clients, by type",
        "/s",
        &[("{{type}}", "sum by (type) (rate(switchboard_gateway_messages_received_total[RATE]))")],
    ),
    (
        "Signal delivery between gateways",
        "ms",
        &[
            (
                "p50",
                "1000 * histogram_quantile(0.5, sum by (le) (rate(switchboard_gateway_signal_delivery_seconds_bucket[RATE])))",
            ),
            (
                "p99",
                "1000 * histogram_quantile(0.99, sum by (le) (rate(switchboard_gateway_signal_delivery_seconds_bucket[RATE])))",
            ),
        ],
    ),
    (
        "Room-service calls p99, gateways' side",
        "ms",
        &[(
            "{{method}}",
            "1000 * histogram_quantile(0.99, sum by (method, le) (rate(switchboard_grpc_client_request_duration_seconds_bucket{method=~\"Join|Leave\"}[RATE])))",
        )],
    ),
    (
        "Signals by path",
        "/s",
        &[("{{type}} via {{path}}", "sum by (type, path) (rate(switchboard_gateway_routed_messages_total[RATE]))")],
    ),
    (
        "Dead gateways cleaned up, and gateways ready",
        "",
        &[
            ("cleaned up (total)", "sum(switchboard_lease_cleanups_total)"),
            ("gateways up", "count(up{job=\"switchboard-gateway\"} == 1)"),
        ],
    ),
];

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tokio::time::timeout(Duration::from_secs(180), run()).await.expect("done within 3 minutes");
}

async fn run() {
    let mut cluster = ProcessCluster::start(3, &[], "2s").await;
    let jobs = [
        ("switchboard-gateway", (0..3).map(|i| cluster.gateway(i).admin_addr()).collect()),
        ("switchboard-room-service", vec![cluster.room_service(0).admin_addr()]),
    ];
    let rules = e2e::repository_path("helm/switchboard/files/prometheus-rules.yaml");
    let prometheus = Prometheus::start(&jobs, &[&rules]).await;
    let started = unix_now();
    let pause_ms = Arc::new(AtomicU64::new(100));
    let deadline = tokio::time::Instant::now() + 3 * PHASE;

    let mut tasks = Vec::new();
    for pair in 0..PAIRS {
        let room = format!("pair-{pair}");
        let mut a = cluster.connect(pair % 3, &format!("a{pair}"), &[&room]).await;
        let mut b = cluster.connect((pair + 1) % 3, &format!("b{pair}"), &[&room]).await;
        a.join(&room, None).await.expect("join");
        b.join(&room, None).await.expect("join");
        let _ = a.next_message().await; // b's peer_joined
        let pause_ms = pause_ms.clone();
        tasks.push(tokio::spawn(async move {
            let (a_id, b_id) = (a.peer_id().to_string(), b.peer_id().to_string());
            let candidate = json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 40000 typ host"});
            // Ends at the deadline, or when a gateway of the pair is killed.
            while tokio::time::Instant::now() < deadline {
                let round = async {
                    a.signal(&room, &b_id, "candidate", candidate.clone()).await.ok()?;
                    b.next_message().await.ok()?;
                    b.signal(&room, &a_id, "candidate", candidate.clone()).await.ok()?;
                    a.next_message().await.ok()
                };
                if round.await.is_none() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(pause_ms.load(Ordering::Relaxed))).await;
            }
        }));
    }
    let mut churner = cluster.connect(0, "churner", &["churn"]).await;
    tasks.push(tokio::spawn(async move {
        while tokio::time::Instant::now() < deadline {
            if churner.join("churn", None).await.is_err() || churner.leave("churn").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }));

    tokio::time::sleep(PHASE).await;
    pause_ms.store(25, Ordering::Relaxed);
    println!("{:>4.0} s: every 25 ms", unix_now() - started);
    tokio::time::sleep(PHASE).await;
    cluster.take_gateway(2).kill().await;
    println!("{:>4.0} s: gateway 2 killed", unix_now() - started);
    for task in tasks {
        let _ = task.await;
    }
    // Two more scrapes and rule evaluations after the end.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ended = unix_now();

    let out = e2e::repository_path("docs/images/observability-load.svg");
    let root = SVGBackend::new(&out, (1500, 1100)).into_drawing_area();
    root.fill(&WHITE).expect("draw");
    for ((title, unit, queries), area) in PANELS.iter().zip(root.split_evenly((3, 2))) {
        let mut lines = Vec::new();
        for (legend, query) in *queries {
            let series =
                prometheus.query_range(&query.replace("[RATE]", &format!("[{RATE}]")), started, ended, 1.0).await;
            let series = series.unwrap_or_else(|error| panic!("{title}: {error}"));
            lines.extend(series.into_iter().map(|s| (label(legend, &s), s.points)));
        }
        draw(&area, title, unit, started, ended, &lines);
        summarize(title, unit, &lines);
    }
    root.present().expect("write the SVG");
    println!("wrote {}", out.display());
}

fn draw(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    title: &str,
    unit: &str,
    start: f64,
    end: f64,
    lines: &[(String, Vec<(f64, f64)>)],
) {
    let top = lines.iter().flat_map(|(_, points)| points.iter().map(|p| p.1)).fold(0.0_f64, f64::max).max(1e-9) * 1.15;
    let caption = if unit.is_empty() { title.to_string() } else { format!("{title} ({unit})") };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(55)
        .build_cartesian_2d(0.0..(end - start), 0.0..top)
        .expect("chart");
    chart.configure_mesh().x_desc("seconds").light_line_style(WHITE.mix(0.0)).draw().expect("mesh");
    for (i, (name, points)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(points.iter().map(|(t, v)| (t - start, *v)), color.stroke_width(2)))
            .expect("series")
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().expect("legend");
}

/// Prints each line's median and maximum, for docs/benchmarks.md.
fn summarize(title: &str, unit: &str, lines: &[(String, Vec<(f64, f64)>)]) {
    println!("{title}:");
    for (name, points) in lines {
        let mut values: Vec<f64> = points.iter().map(|p| p.1).collect();
        values.sort_by(f64::total_cmp);
        let median = values.get(values.len() / 2).copied().unwrap_or(f64::NAN);
        let max = values.last().copied().unwrap_or(f64::NAN);
        println!("  {name}: median {median:.2}{unit}, max {max:.2}{unit}");
    }
}

/// The legend template with the series' labels filled in.
fn label(template: &str, series: &Series) -> String {
    let mut text = template.to_string();
    for (key, value) in &series.labels {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    text
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}
