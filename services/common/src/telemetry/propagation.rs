//! W3C trace context (`traceparent`, `tracestate`) across process boundaries: into and
//! out of bus envelopes (a string map) and gRPC metadata (HTTP/2 headers). Without
//! trace export everything here does nothing.

use std::collections::HashMap;

use opentelemetry::propagation::{Extractor, Injector};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::tracing_enabled;

/// The context of `span`, for an envelope (empty without trace export).
pub fn to_map(span: &Span) -> HashMap<String, String> {
    let mut map = HashMap::new();
    if tracing_enabled() {
        let context = span.context();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut map));
    }
    map
}

/// Makes the context carried in an envelope the parent of `span`.
pub fn set_parent_from_map(span: &Span, map: &HashMap<String, String>) {
    if tracing_enabled() && !map.is_empty() {
        let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(map));
        let _ = span.set_parent(context);
    }
}

/// Writes the context of `span` into request headers.
pub fn to_headers(span: &Span, headers: &mut http::HeaderMap) {
    if tracing_enabled() {
        let context = span.context();
        opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut HeaderInjector(headers)));
    }
}

/// Makes the context carried in request headers the parent of `span`.
pub fn set_parent_from_headers(span: &Span, headers: &http::HeaderMap) {
    if tracing_enabled() {
        let context = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
        let _ = span.set_parent(context);
    }
}

/// The trace id of `span` as 32 hex digits, for log fields; `None` without export.
pub fn trace_id(span: &Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    if !tracing_enabled() || span.is_disabled() {
        return None;
    }
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) =
            (http::header::HeaderName::from_bytes(key.as_bytes()), http::HeaderValue::from_str(&value))
        {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|name| name.as_str()).collect()
    }
}
