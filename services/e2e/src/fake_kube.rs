//! A fake Kubernetes API on a loopback port, serving just what the gateway's discovery
//! uses: listing and watching EndpointSlices. No Kubernetes API server can run here; this
//! speaks the same HTTP API (a list with a `resourceVersion`, then a watch streaming one
//! JSON event per line from that version on), and the test changes the slices.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// One change: its resource version, `ADDED`/`MODIFIED`/`DELETED`, the object.
type Change = (u64, &'static str, Value);

#[derive(Default)]
struct Objects {
    slices: BTreeMap<String, Value>,
    version: u64,
    history: Vec<Change>,
}

struct Shared {
    objects: Mutex<Objects>,
    changes: broadcast::Sender<Change>,
}

/// The fake API; stops with the test's runtime.
pub struct FakeKube {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeKube {
    pub async fn start() -> Self {
        let shared = Arc::new(Shared { objects: Mutex::default(), changes: broadcast::channel(1024).0 });
        let router = Router::new()
            .route("/apis/discovery.k8s.io/v1/namespaces/{namespace}/endpointslices", get(endpoint_slices))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the fake API");
        let addr = listener.local_addr().expect("fake API address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, shared }
    }

    /// The value for `room_service.kubernetes.api_url`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates or replaces an EndpointSlice (by `metadata.name`).
    pub fn apply(&self, slice: Value) {
        let name = slice["metadata"]["name"].as_str().expect("a named slice").to_string();
        let mut objects = self.shared.objects.lock().expect("fake API lock");
        let kind = if objects.slices.contains_key(&name) { "MODIFIED" } else { "ADDED" };
        let slice = self.record(&mut objects, kind, slice);
        objects.slices.insert(name, slice);
    }

    /// Deletes an EndpointSlice.
    pub fn delete(&self, name: &str) {
        let mut objects = self.shared.objects.lock().expect("fake API lock");
        let Some(slice) = objects.slices.remove(name) else { return };
        self.record(&mut objects, "DELETED", slice);
    }

    /// A change gets the next resource version, joins the history (for watches that
    /// start from an older version) and goes to the watches open now. Returns the
    /// slice with its new version.
    fn record(&self, objects: &mut Objects, kind: &'static str, mut slice: Value) -> Value {
        objects.version += 1;
        slice["metadata"]["resourceVersion"] = json!(objects.version.to_string());
        let change = (objects.version, kind, slice.clone());
        objects.history.push(change.clone());
        let _ = self.shared.changes.send(change);
        slice
    }
}

/// An EndpointSlice of Service `service` in `namespace` with one port `grpc`; each
/// endpoint is (address, ready, terminating).
pub fn endpoint_slice(
    name: &str,
    namespace: &str,
    service: &str,
    port: u16,
    endpoints: &[(&str, bool, bool)],
) -> Value {
    json!({
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"kubernetes.io/service-name": service},
        },
        "addressType": "IPv4",
        "ports": [{"name": "grpc", "port": port, "protocol": "TCP"}],
        "endpoints": endpoints.iter().map(|(address, ready, terminating)| json!({
            "addresses": [address],
            "conditions": {"ready": ready, "serving": *ready || *terminating, "terminating": terminating},
        })).collect::<Vec<_>>(),
    })
}

/// `GET …/endpointslices`: a list, or with `watch=true` a stream of changes after
/// `resourceVersion`. (The label selector is not evaluated: the test only creates
/// slices of the watched Service.)
async fn endpoint_slices(
    State(shared): State<Arc<Shared>>,
    Path(_namespace): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    let objects = shared.objects.lock().expect("fake API lock");
    if !watch {
        let items: Vec<Value> = objects.slices.values().cloned().collect();
        let list = json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSliceList",
            "metadata": {"resourceVersion": objects.version.to_string()},
            "items": items,
        });
        return axum::Json(list).into_response();
    }
    let after: u64 = query.get("resourceVersion").and_then(|v| v.parse().ok()).unwrap_or(0);
    // Subscribed under the lock: nothing falls between the history and the live changes.
    let live = shared.changes.subscribe();
    let backlog: Vec<Change> = objects.history.iter().filter(|(version, ..)| *version > after).cloned().collect();
    drop(objects);
    let backlog = futures_util::stream::iter(backlog);
    let live = futures_util::stream::unfold(live, |mut live| async move { Some((live.recv().await.ok()?, live)) });
    let stream = futures_util::StreamExt::map(futures_util::StreamExt::chain(backlog, live), |(_, kind, object)| {
        Ok::<_, std::io::Error>(Bytes::from(format!("{}\n", json!({"type": kind, "object": object}))))
    });
    Response::builder().header("content-type", "application/json").body(Body::from_stream(stream)).expect("response")
}
