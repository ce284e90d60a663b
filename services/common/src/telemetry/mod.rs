//! What a service reports about itself: logs, metrics and traces, set up once at start.
//!
//! - [`logs`]: the tracing subscriber, text or JSON, with a filter that can be changed
//!   while the process runs (through the admin port, [`crate::admin`]).
//! - [`traces`]: OpenTelemetry spans exported over OTLP when the standard `OTEL_*`
//!   variables ask for it; [`propagation`] carries their context across nodes (bus
//!   envelopes, gRPC metadata); [`grpc`] traces and measures gRPC calls on both sides.
//! - Metrics go through the `metrics` facade to a Prometheus recorder rendered by the
//!   admin port; [`process`] adds the process's CPU and memory.
//!
//! Spans that follow one message or request across the cluster use the target
//! [`FLOW`]. They exist only while traces are exported: otherwise the log filter turns
//! them off, so the hot path pays nothing for them.

pub mod grpc;
pub mod logs;
pub mod process;
pub mod propagation;
pub mod traces;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};

pub use logs::LogFilter;

/// The target of the spans that make up cross-node traces.
pub const FLOW: &str = "switchboard::flow";

/// Histogram buckets of every `_seconds` histogram: 100 µs to 5 s.
const LATENCY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How often histograms and idle metrics are maintained.
const UPKEEP_PERIOD: Duration = Duration::from_secs(5);

/// Whether spans are exported; checked before building trace context by hand.
static TRACING: AtomicBool = AtomicBool::new(false);

/// True while spans are exported (see [`traces`]).
pub fn tracing_enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// Observability settings shared by every service (the `telemetry` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Admin HTTP address: `/metrics` (Prometheus) and `/log-level`. Keep it off the
    /// public network: it can change the log level.
    pub admin_listen: SocketAddr,
    /// The log filter at start (`RUST_LOG` syntax, e.g. `info,gateway=debug`);
    /// `RUST_LOG` overrides it. Changeable at run time through the admin port.
    pub log_filter: String,
    /// Fraction of new traces sampled when spans are exported; a span whose parent was
    /// sampled (or not) follows its parent. `OTEL_TRACES_SAMPLER` overrides it.
    pub trace_sample_ratio: f64,
}

impl TelemetryConfig {
    /// The defaults of a service whose admin port is `admin_port` on loopback.
    pub fn with_admin_port(admin_port: u16) -> Self {
        Self {
            admin_listen: SocketAddr::from(([127, 0, 0, 1], admin_port)),
            log_filter: "info".into(),
            trace_sample_ratio: 1.0,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            (0.0..=1.0).contains(&self.trace_sample_ratio),
            "telemetry.trace_sample_ratio must be between 0 and 1"
        );
        logs::parse_filter(&self.log_filter).map_err(|e| anyhow::anyhow!("telemetry.log_filter: {e}"))?;
        Ok(())
    }
}

/// Only for `serde(default)`: each service's configuration sets its own admin port.
impl Default for TelemetryConfig {
    fn default() -> Self {
        Self::with_admin_port(0)
    }
}

/// The installed logs, metrics and traces of the process.
pub struct Telemetry {
    pub metrics: PrometheusHandle,
    pub log_filter: LogFilter,
    tracer: Option<traces::Tracer>,
}

impl Telemetry {
    /// Installs the global subscriber, metrics recorder and (if `OTEL_*` asks for it)
    /// trace exporter. `service` names the service in traces (unless
    /// `OTEL_SERVICE_NAME` does) and in `switchboard_build_info`; `node_id` tells its
    /// instances apart. Call once, inside the Tokio runtime.
    pub fn install(service: &str, node_id: &str, config: &TelemetryConfig, log_json: bool) -> anyhow::Result<Self> {
        let tracer = traces::Tracer::from_env(service, node_id, config.trace_sample_ratio)?;
        TRACING.store(tracer.is_some(), Ordering::Relaxed);
        let log_filter = logs::install(&config.log_filter, log_json, tracer.as_ref())?;
        let metrics = PrometheusBuilder::new()
            .set_buckets(LATENCY_BUCKETS)
            .map_err(|e| anyhow::anyhow!("metric buckets: {e}"))?
            .install_recorder()
            .map_err(|e| anyhow::anyhow!("installing the metrics recorder: {e}"))?;
        let upkeep = metrics.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(UPKEEP_PERIOD).await;
                upkeep.run_upkeep();
            }
        });
        metrics::describe_gauge!("switchboard_build_info", "Always 1; the labels say which service and version.");
        metrics::gauge!("switchboard_build_info", "service" => service.to_string(), "version" => env!("CARGO_PKG_VERSION"))
            .set(1.0);
        if tracer.is_some() {
            tracing::info!("exporting traces over OTLP");
        }
        Ok(Self { metrics, log_filter, tracer })
    }

    /// Exports the spans still buffered. Call before the process exits.
    pub async fn shutdown(&self) {
        if let Some(tracer) = self.tracer.clone() {
            // The SDK's shutdown blocks; on the runtime's threads it could stall the very
            // tasks that export.
            let _ = tokio::task::spawn_blocking(move || tracer.shutdown()).await;
        }
    }
}
