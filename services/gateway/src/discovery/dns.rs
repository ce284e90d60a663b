//! Replicas from DNS: every address each host name of the configured URLs resolves to
//! (a headless Service's name resolves to one address per ready pod).

use std::time::Duration;

use tokio::sync::watch;

use super::{Replicas, publish};

/// Resolves the hosts of `urls` now and then every `refresh`.
pub fn start(urls: Vec<String>, refresh: Duration) -> Replicas {
    let (sender, replicas) = watch::channel(Vec::new());
    tokio::spawn(async move {
        loop {
            let mut resolved = Vec::new();
            for url in &urls {
                match resolve(url).await {
                    Ok(addresses) => resolved.extend(addresses),
                    // A failed lookup (DNS itself down) must not empty the list: the
                    // last complete answer stays until a new one comes.
                    Err(error) => {
                        tracing::warn!(url, %error, "cannot resolve a room-service name");
                        resolved.clear();
                        break;
                    }
                }
            }
            if !resolved.is_empty() && !publish(&sender, resolved) {
                return;
            }
            if sender.is_closed() {
                return;
            }
            tokio::time::sleep(refresh).await;
        }
    });
    replicas
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
