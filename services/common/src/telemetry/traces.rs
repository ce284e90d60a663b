//! OpenTelemetry traces, exported over OTLP/gRPC as the standard variables say:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns the
//! export on, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
//! and the exporter's own variables (headers, timeout) are honoured, and
//! `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none` turn it off.

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// The process's tracer and its exporter pipeline.
#[derive(Clone)]
pub struct Tracer {
    provider: SdkTracerProvider,
    tracer: opentelemetry_sdk::trace::Tracer,
}

impl Tracer {
    /// A tracer exporting to the collector the environment names, or `None` when the
    /// environment asks for no export.
    pub fn from_env(service: &str, node_id: &str, sample_ratio: f64) -> anyhow::Result<Option<Self>> {
        if !export_requested() {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .build()
            .map_err(|e| anyhow::anyhow!("building the OTLP exporter: {e}"))?;
        let mut resource =
            Resource::builder().with_attribute(KeyValue::new("service.instance.id", node_id.to_string()));
        if env("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name(format!("switchboard-{service}"));
        }
        let mut builder = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build());
        if env("OTEL_TRACES_SAMPLER").is_none() {
            builder = builder.with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(sample_ratio))));
        }
        let provider = builder.build();
        let tracer = provider.tracer("switchboard");
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        Ok(Some(Self { provider, tracer }))
    }

    pub fn tracer(&self) -> opentelemetry_sdk::trace::Tracer {
        self.tracer.clone()
    }

    /// Exports what is buffered and stops. Blocks.
    pub fn shutdown(&self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("trace export did not shut down cleanly: {error}");
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

fn export_requested() -> bool {
    let off = |name: &str, value: &str| env(name).is_some_and(|v| v.eq_ignore_ascii_case(value));
    if off("OTEL_SDK_DISABLED", "true") || off("OTEL_TRACES_EXPORTER", "none") {
        return false;
    }
    env("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
        || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_some()
        || off("OTEL_TRACES_EXPORTER", "otlp")
}
