//! What the gateways say about themselves on their admin port (`/metrics`): resident
//! memory and CPU seconds of the process, and the connections they hold. Read before
//! and after a run, so a report holds the servers' cost of it.

use std::time::Duration;

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One gateway's process, as its metrics describe it at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub resident_bytes: f64,
    pub cpu_seconds: f64,
    pub connections: f64,
}

/// A gateway's sample before the load and at its peak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerStats {
    pub metrics_url: String,
    pub before: Sample,
    pub after: Sample,
}

/// Samples every URL, in order.
pub async fn sample_all(urls: &[String]) -> anyhow::Result<Vec<Sample>> {
    let mut samples = Vec::with_capacity(urls.len());
    for url in urls {
        samples.push(sample(url).await?);
    }
    Ok(samples)
}

/// Each URL's samples before and after, paired.
pub fn pair(urls: &[String], before: Vec<Sample>, after: Vec<Sample>) -> Vec<ServerStats> {
    let pairs = urls.iter().zip(before).zip(after);
    pairs.map(|((url, before), after)| ServerStats { metrics_url: url.clone(), before, after }).collect()
}

/// CPU seconds the servers spent between their samples, summed.
pub fn cpu_seconds(servers: &[ServerStats]) -> f64 {
    servers.iter().map(|server| server.after.cpu_seconds - server.before.cpu_seconds).sum()
}

/// Reads `http://host:port/metrics`.
pub async fn sample(url: &str) -> anyhow::Result<Sample> {
    let text = tokio::time::timeout(Duration::from_secs(5), get(url))
        .await
        .with_context(|| format!("{url}: no answer within 5 s"))??;
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok())
            .with_context(|| format!("{url} has no {name}"))
    };
    Ok(Sample {
        resident_bytes: value("process_resident_memory_bytes")?,
        cpu_seconds: value("process_cpu_seconds_total")?,
        // Older gateways export the gauge only once a connection has come.
        connections: value("switchboard_gateway_connections").unwrap_or(0.0),
    })
}

/// A bare HTTP/1.1 GET: the admin port serves plain text, and one request per run
/// does not justify an HTTP client.
async fn get(url: &str) -> anyhow::Result<String> {
    let Some(rest) = url.strip_prefix("http://") else { bail!("{url}: only http:// metrics URLs") };
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(host, path)| (host, path));
    let path = if path == "/" { "/metrics".to_string() } else { format!("/{path}") };
    let mut stream = tokio::net::TcpStream::connect(host).await.with_context(|| format!("connecting to {host}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").with_context(|| format!("{url}: not an HTTP answer"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{url}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_server_is_an_error() {
        assert!(sample("http://127.0.0.1:1/metrics").await.is_err());
        assert!(sample("https://example/metrics").await.is_err());
    }
}
