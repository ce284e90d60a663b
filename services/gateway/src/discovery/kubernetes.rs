//! Replicas from Kubernetes: the ready endpoints of the room service's Service, from
//! its EndpointSlices (label `kubernetes.io/service-name`), watched through the API.
//!
//! An endpoint counts while it is ready and not terminating: a pod being deleted (a
//! rolling update, a scale-down) leaves the list as soon as it is marked terminating,
//! so it gets no new calls while it finishes the ones it has.
//!
//! The gateway needs `get`, `list` and `watch` on `endpointslices.discovery.k8s.io` in
//! the room service's namespace (the chart's Role grants exactly that).

use std::collections::BTreeMap;

use futures_util::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;

use super::{Replicas, publish};
use crate::config::KubernetesDiscoveryConfig;

/// How long the last endpoints stay listed after they disappear, unless others come:
/// a slice replaced by another (deleted, then created) would otherwise leave the list
/// empty in between, and calls made then would fail for nothing.
const EMPTY_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// The namespace of the pod the gateway runs in, when it does.
const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

pub fn start(config: &KubernetesDiscoveryConfig) -> anyhow::Result<Replicas> {
    let service = config.service.clone().ok_or_else(|| anyhow::anyhow!("room_service.kubernetes.service is unset"))?;
    let api_url = config.api_url.as_deref().map(str::parse::<http::Uri>).transpose()?;
    let (sender, replicas) = watch::channel(Vec::new());
    let (namespace, port) = (config.namespace.clone(), config.port.clone());
    tokio::spawn(async move {
        if let Err(error) = follow(api_url, namespace, &service, &port, sender).await {
            tracing::error!(%error, service, "cannot watch the room service's endpoints");
        }
    });
    Ok(replicas)
}

/// Watches the Service's EndpointSlices until nobody listens. The watcher relists and
/// rewatches by itself (with backoff) when the API connection breaks.
async fn follow(
    api_url: Option<http::Uri>,
    namespace: Option<String>,
    service: &str,
    port: &str,
    sender: watch::Sender<Vec<String>>,
) -> anyhow::Result<()> {
    let config = match api_url {
        Some(url) => {
            // `infer` reads a pod's namespace by itself; a given API URL does not.
            let mut config = kube::Config::new(url);
            if let Ok(own) = std::fs::read_to_string(POD_NAMESPACE_FILE) {
                config.default_namespace = own.trim().to_string();
            }
            config
        }
        None => kube::Config::infer().await?,
    };
    let namespace = namespace.unwrap_or_else(|| config.default_namespace.clone());
    let client = kube::Client::try_from(config)?;
    let slices: kube::Api<EndpointSlice> = kube::Api::namespaced(client, &namespace);
    let selector = format!("kubernetes.io/service-name={service}");
    tracing::info!(namespace, service, port, "watching the room service's endpoints");
    let mut events = watcher(slices, watcher::Config::default().labels(&selector)).default_backoff().boxed();
    // Slice name → its ready endpoints; during a relist the new set is built aside.
    let mut current: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut relisting: Option<BTreeMap<String, Vec<String>>> = None;
    // When the last endpoints go, the empty list waits until then (see EMPTY_GRACE).
    let mut empty_at: Option<tokio::time::Instant> = None;
    loop {
        let event = tokio::select! {
            event = events.next() => match event {
                Some(event) => event,
                None => return Ok(()),
            },
            _ = tokio::time::sleep_until(empty_at.unwrap_or_else(tokio::time::Instant::now)), if empty_at.is_some() => {
                empty_at = None;
                if !publish(&sender, Vec::new()) {
                    return Ok(());
                }
                continue;
            }
        };
        match event {
            Ok(watcher::Event::Init) => relisting = Some(BTreeMap::new()),
            Ok(watcher::Event::InitApply(slice)) => {
                relisting.get_or_insert_default().insert(name(&slice), ready_urls(&slice, port));
            }
            Ok(watcher::Event::InitDone) => current = relisting.take().unwrap_or_default(),
            Ok(watcher::Event::Apply(slice)) => {
                current.insert(name(&slice), ready_urls(&slice, port));
            }
            Ok(watcher::Event::Delete(slice)) => {
                current.remove(&name(&slice));
            }
            Err(error) => {
                tracing::warn!(%error, "watching EndpointSlices failed; retrying");
                continue;
            }
        }
        if relisting.is_some() {
            continue;
        }
        let urls: Vec<String> = current.values().flatten().cloned().collect();
        if urls.is_empty() && !sender.borrow().is_empty() {
            empty_at.get_or_insert_with(|| tokio::time::Instant::now() + EMPTY_GRACE);
            continue;
        }
        empty_at = None;
        if !publish(&sender, urls) {
            return Ok(());
        }
    }
}

fn name(slice: &EndpointSlice) -> String {
    slice.metadata.name.clone().unwrap_or_default()
}

/// `http://<address>:<port>` of every endpoint that is ready and not terminating
/// (a condition left unset means ready and not terminating, as the API defines).
/// `port` is the port's name in the slice, or a number.
fn ready_urls(slice: &EndpointSlice, port: &str) -> Vec<String> {
    let named = slice.ports.iter().flatten().find(|p| p.name.as_deref() == Some(port)).and_then(|p| p.port);
    let named = named.and_then(|number| u16::try_from(number).ok());
    let Some(port) = named.or_else(|| port.parse().ok()) else { return Vec::new() };
    slice
        .endpoints
        .iter()
        .filter(|endpoint| {
            let conditions = endpoint.conditions.as_ref();
            conditions.and_then(|c| c.ready).unwrap_or(true) && !conditions.and_then(|c| c.terminating).unwrap_or(false)
        })
        .flat_map(|endpoint| endpoint.addresses.iter())
        .map(|address| match address.parse::<std::net::IpAddr>() {
            Ok(ip) => format!("http://{}", std::net::SocketAddr::new(ip, port)),
            Err(_) => format!("http://{address}:{port}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(json: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn only_ready_endpoints_that_are_not_terminating_count() {
        let slice = slice(serde_json::json!({
            "metadata": {"name": "rs-abc"},
            "addressType": "IPv4",
            "ports": [{"name": "grpc", "port": 7070}, {"name": "admin", "port": 9070}],
            "endpoints": [
                {"addresses": ["10.0.0.1"], "conditions": {"ready": true}},
                {"addresses": ["10.0.0.2"], "conditions": {"ready": false}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": false, "serving": true, "terminating": true}},
                {"addresses": ["10.0.0.4"]},
            ],
        }));
        assert_eq!(ready_urls(&slice, "grpc"), ["http://10.0.0.1:7070", "http://10.0.0.4:7070"]);
        assert_eq!(ready_urls(&slice, "7070"), ["http://10.0.0.1:7070", "http://10.0.0.4:7070"]);
        assert!(ready_urls(&slice, "metrics").is_empty(), "an unknown port name matches nothing");
    }

    #[test]
    fn ipv6_addresses_are_bracketed() {
        let slice = slice(serde_json::json!({
            "metadata": {"name": "rs-v6"},
            "addressType": "IPv6",
            "ports": [{"name": "grpc", "port": 7070}],
            "endpoints": [{"addresses": ["fd00::1"], "conditions": {"ready": true}}],
        }));
        assert_eq!(ready_urls(&slice, "grpc"), ["http://[fd00::1]:7070"]);
    }
}
