//! The admin port of a service: `GET /metrics` for Prometheus, and `GET`/`PUT
//! /log-level` to read and change the log filter while the process runs. Kept off the
//! client-facing port so that it can be reachable only from inside the cluster.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;

use crate::telemetry::{Telemetry, process};

pub fn router(telemetry: Arc<Telemetry>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/log-level", get(log_level).put(set_log_level))
        .with_state(telemetry)
}

/// Binds the admin port at `addr` and serves it, in the background, until the process
/// ends; logs the address bound (`admin`), which may be port 0's pick.
pub async fn start(addr: SocketAddr, telemetry: Arc<Telemetry>) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await.with_context(|| format!("binding the admin address {addr}"))?;
    tracing::info!(admin = %listener.local_addr()?, "admin port: /metrics, /log-level");
    tokio::spawn(async move {
        if let Err(error) = axum::serve(listener, router(telemetry)).await {
            tracing::error!(%error, "the admin port stopped");
        }
    });
    Ok(())
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> impl IntoResponse {
    let mut body = telemetry.metrics.render();
    body.push_str(&process::render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

async fn log_level(State(telemetry): State<Arc<Telemetry>>) -> String {
    telemetry.log_filter.get() + "\n"
}

/// The body is the new filter, e.g. `info,gateway=debug`.
async fn set_log_level(State(telemetry): State<Arc<Telemetry>>, body: String) -> impl IntoResponse {
    match telemetry.log_filter.set(&body) {
        Ok(()) => (StatusCode::OK, telemetry.log_filter.get() + "\n"),
        Err(error) => (StatusCode::BAD_REQUEST, error + "\n"),
    }
}
