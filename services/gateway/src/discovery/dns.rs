//! Replicas from DNS: every address each host name of the configured URLs resolves to
//! (a headless Service's name resolves to one address per ready pod).

use std::time::Duration;

use anyhow::Context;
use tokio::sync::watch;

use super::{Replicas, publish};

/// Resolves the hosts of `urls` now and then every `refresh`.
pub fn start(urls: Vec<String>, refresh: Duration) -> Replicas {
    let (sender, replicas) = watch::channel(Vec::new());
    tokio::spawn(async move {
        loop {
            match resolve_all(&urls).await {
                Ok(resolved) => {
                    if !publish(&sender, resolved) {
                        return;
                    }
                }
                // A failed lookup (DNS itself down) must not empty the list: the last
                // complete answer stays until a new one comes.
                Err(error) => tracing::warn!(%error, "cannot resolve a room-service name"),
            }
            tokio::select! {
                _ = tokio::time::sleep(refresh) => {}
                _ = sender.closed() => return,
            }
        }
    });
    replicas
}

/// Every URL of every name in `urls`; a failure, or no address at all, is an error.
async fn resolve_all(urls: &[String]) -> anyhow::Result<Vec<String>> {
    let mut resolved = Vec::new();
    for url in urls {
        resolved.extend(resolve(url).await.with_context(|| format!("resolving {url}"))?);
    }
    anyhow::ensure!(!resolved.is_empty(), "no address for {urls:?}");
    Ok(resolved)
}

/// `http://name:7070` → one URL per address of `name`.
async fn resolve(url: &str) -> anyhow::Result<Vec<String>> {
    let uri: http::Uri = url.parse()?;
    let scheme = uri.scheme_str().unwrap_or("http");
    let host = uri.host().ok_or_else(|| anyhow::anyhow!("no host in {url}"))?;
    let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let addresses = tokio::net::lookup_host((host, port)).await?;
    Ok(addresses.map(|address| format!("{scheme}://{address}")).collect())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_name_becomes_one_url_per_address() {
        let urls = super::resolve("http://localhost:7070").await.unwrap();
        assert!(urls.iter().any(|url| url == "http://127.0.0.1:7070"), "{urls:?}");
    }
}
