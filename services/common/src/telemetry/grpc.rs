//! gRPC calls measured and traced: a tower layer for the server (around tonic's
//! router) and for the client (around the channel), so both sides record the same
//! metrics (`switchboard_grpc_{server,client}_*`) and a call's span on the server is
//! the child of the caller's, through the `traceparent` metadata.
//!
//! The status of a call is read from the response headers: tonic answers an error
//! "trailers-only", with `grpc-status` in the headers, while a success carries it in
//! the trailers, so a response without it in the headers is counted as `OK`. The
//! duration ends with the response headers, which for a unary call is its end.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::Instrument;

use super::{FLOW, propagation};

/// Which end of the call this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl Side {
    fn requests(self) -> &'static str {
        match self {
            Self::Server => "switchboard_grpc_server_requests_total",
            Self::Client => "switchboard_grpc_client_requests_total",
        }
    }

    fn duration(self) -> &'static str {
        match self {
            Self::Server => "switchboard_grpc_server_request_duration_seconds",
            Self::Client => "switchboard_grpc_client_request_duration_seconds",
        }
    }
}

/// Registers the descriptions of the metrics of `side`.
pub fn describe(side: Side) {
    let who = match side {
        Side::Server => "served",
        Side::Client => "made",
    };
    metrics::describe_counter!(side.requests(), format!("gRPC calls {who}, by method and status code."));
    metrics::describe_histogram!(
        side.duration(),
        metrics::Unit::Seconds,
        format!("Duration of the gRPC calls {who}, by method.")
    );
}

/// Measures and traces every call through the wrapped service. `methods` lists the full
/// paths (`/package.Service/Method`) the label may take; any other path is labelled
/// `other`, so that no caller can grow the number of series.
#[derive(Debug, Clone, Copy)]
pub struct GrpcTelemetryLayer {
    side: Side,
    methods: &'static [&'static str],
}

impl GrpcTelemetryLayer {
    pub fn new(side: Side, methods: &'static [&'static str]) -> Self {
        Self { side, methods }
    }
}

impl<S> tower::Layer<S> for GrpcTelemetryLayer {
    type Service = GrpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcTelemetry { inner, side: self.side, methods: self.methods }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcTelemetry<S> {
    inner: S,
    side: Side,
    methods: &'static [&'static str],
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, R> tower::Service<http::Request<B>> for GrpcTelemetry<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let method = method_label(self.methods, request.uri().path());
        let span = match self.side {
            Side::Server => {
                let span = tracing::info_span!(target: FLOW, "grpc.server", rpc.method = method, otel.kind = "server");
                propagation::set_parent_from_headers(&span, request.headers());
                span
            }
            Side::Client => {
                let span = tracing::info_span!(target: FLOW, "grpc.client", rpc.method = method, otel.kind = "client");
                propagation::to_headers(&span, request.headers_mut());
                span
            }
        };
        let future = span.in_scope(|| self.inner.call(request));
        let mut call = Call { side: self.side, method, started: Instant::now(), finished: false };
        Box::pin(async move {
            let result = future.instrument(span).await;
            let code = match &result {
                Ok(response) => response
                    .headers()
                    .get("grpc-status")
                    .and_then(|value| value.to_str().ok()?.parse::<i32>().ok())
                    .map_or("OK", code_name),
                // The client's channel could not carry the call at all.
                Err(_) => "Unavailable",
            };
            call.finish(code);
            result
        })
    }
}

/// One call being measured; a call dropped before it finished (its caller gave up) is
/// counted as `Cancelled`.
struct Call {
    side: Side,
    method: &'static str,
    started: Instant,
    finished: bool,
}

impl Call {
    fn finish(&mut self, code: &'static str) {
        self.finished = true;
        metrics::counter!(self.side.requests(), "method" => self.method, "code" => code).increment(1);
        metrics::histogram!(self.side.duration(), "method" => self.method).record(self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.finished {
            self.finish("Cancelled");
        }
    }
}

/// The method name of a known path (`/pkg.Service/Method` → `Method`), else `other`.
fn method_label(methods: &'static [&'static str], path: &str) -> &'static str {
    methods
        .iter()
        .find(|known| **known == path)
        .map_or("other", |known| known.rsplit_once('/').map_or(*known, |(_, method)| method))
}

/// The canonical name of a gRPC status code.
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "Cancelled",
        2 => "Unknown",
        3 => "InvalidArgument",
        4 => "DeadlineExceeded",
        5 => "NotFound",
        6 => "AlreadyExists",
        7 => "PermissionDenied",
        8 => "ResourceExhausted",
        9 => "FailedPrecondition",
        10 => "Aborted",
        11 => "OutOfRange",
        12 => "Unimplemented",
        13 => "Internal",
        14 => "Unavailable",
        15 => "DataLoss",
        16 => "Unauthenticated",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_methods_become_labels() {
        const METHODS: &[&str] = &["/signaling.room.v1.RoomService/Join"];
        assert_eq!(method_label(METHODS, "/signaling.room.v1.RoomService/Join"), "Join");
        assert_eq!(method_label(METHODS, "/signaling.room.v1.RoomService/Join2"), "other");
        assert_eq!(method_label(METHODS, "/x"), "other");
    }
}
