//! Without trace export, the spans that follow each message ([`FLOW`]) are not made at
//! all: the relay path creates two or three per message, and a span nobody records
//! still costs its creation and close (about 4 % of a gateway's self time in a profile,
//! docs/benchmarks.md).
//! Its own test binary: it installs the process's global subscriber.

use common::telemetry::{FLOW, Telemetry, TelemetryConfig};

#[tokio::test]
async fn flow_spans_are_off_unless_traces_are_exported() {
    // SAFETY: set before anything else of this test binary runs or reads the
    // environment (it has this one test).
    unsafe { std::env::remove_var("OTEL_EXPORTER_OTLP_ENDPOINT") };
    unsafe { std::env::remove_var("RUST_LOG") };
    let config = TelemetryConfig { log_filter: "info".into(), ..TelemetryConfig::with_admin_port(0) };
    let _telemetry = Telemetry::install("test", "node", &config, false).expect("installed");
    assert!(tracing::info_span!(target: FLOW, "signal").is_disabled(), "a flow span is not made");
    assert!(!tracing::info_span!("ordinary").is_disabled(), "while spans the log filter lets through are");
    assert!(tracing::debug_span!("detail").is_disabled(), "and those it does not are not");
}
