//! A small OTLP/gRPC trace collector on a loopback port: the services under test export
//! their spans to it (through `OTEL_EXPORTER_OTLP_ENDPOINT`) and the test reads them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;

/// One exported span, reduced to what the tests check.
#[derive(Debug, Clone)]
pub struct CollectedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// `service.name` of the exporting process.
    pub service: String,
    /// `service.instance.id`: the node id.
    pub instance: String,
    /// The span's string attributes.
    pub attributes: HashMap<String, String>,
}

#[derive(Default)]
struct Received {
    spans: Mutex<Vec<CollectedSpan>>,
    arrived: Notify,
}

/// The collector; stops with the test's runtime.
pub struct Collector {
    addr: SocketAddr,
    received: Arc<Received>,
}

impl Collector {
    /// A collector on a free loopback port.
    pub async fn start() -> Self {
        Self::start_at(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_at(addr: SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind the collector");
        let addr = listener.local_addr().expect("collector address");
        let received = Arc::new(Received::default());
        let service = TraceServiceServer::new(Sink(received.clone()));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        Self { addr, received }
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Waits until the spans received satisfy `done`, for at most `within`; returns them
    /// (also on timeout, for the test to say what was missing).
    pub async fn wait_for(
        &self,
        within: Duration,
        done: impl Fn(&[CollectedSpan]) -> bool,
    ) -> Result<Vec<CollectedSpan>, Vec<CollectedSpan>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let arrived = self.received.arrived.notified();
            let spans = self.received.spans.lock().expect("collector lock").clone();
            if done(&spans) {
                return Ok(spans);
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                return Err(spans);
            }
        }
    }
}

struct Sink(Arc<Received>);

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut collected = Vec::new();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.map(|r| strings(&r.attributes)).unwrap_or_default();
            for scope in resource_spans.scope_spans {
                for span in scope.spans {
                    collected.push(CollectedSpan {
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        service: resource.get("service.name").cloned().unwrap_or_default(),
                        instance: resource.get("service.instance.id").cloned().unwrap_or_default(),
                        attributes: strings(&span.attributes),
                    });
                }
            }
        }
        self.0.spans.lock().expect("collector lock").extend(collected);
        self.0.arrived.notify_waiters();
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

fn strings(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(value) => Some((kv.key.clone(), value.clone())),
            _ => None,
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
