//! Where the clients connect: WebSocket URLs given one by one, or every address a DNS
//! name resolves to (in Kubernetes, a headless Service lists one address per gateway
//! pod, where the ordinary Service would hand each connection to a random pod).

use anyhow::{Context, bail};

/// The gateways' WebSocket URLs: `urls` as given, then one `ws://ADDRESS:PORT/ws` per
/// address of each `host:port` in `dns`, each address once.
pub async fn gateway_urls(urls: &[String], dns: &[String]) -> anyhow::Result<Vec<String>> {
    let mut all = urls.to_vec();
    for name in dns {
        let mut addresses: Vec<_> =
            tokio::net::lookup_host(name.as_str()).await.with_context(|| format!("resolving {name}"))?.collect();
        addresses.sort();
        addresses.dedup();
        all.extend(addresses.into_iter().map(|address| format!("ws://{address}/ws")));
    }
    all.dedup();
    if all.is_empty() {
        bail!("no gateway: give --gateway URL or --gateway-dns HOST:PORT");
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_every_address_once() {
        let urls = gateway_urls(&["ws://127.0.0.9:1/ws".into()], &["127.0.0.1:8080".into(), "127.0.0.1:8080".into()])
            .await
            .unwrap();
        assert_eq!(urls, ["ws://127.0.0.9:1/ws", "ws://127.0.0.1:8080/ws"]);
    }

    #[tokio::test]
    async fn nothing_to_connect_to_is_an_error() {
        assert!(gateway_urls(&[], &[]).await.is_err());
    }
}
