//! Which WebSocket upgrades a gateway accepts. Checked before the upgrade, so a refused
//! client costs one HTTP response: no socket task, no buffers, no session.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::TokenBucket;
use crate::config::GatewayConfig;

/// Most source addresses whose attempts are counted at once. Each costs about 60 bytes;
/// beyond this (a flood from very many addresses), new addresses are not counted and
/// only the connection cap holds.
const MAX_TRACKED_SOURCES: usize = 100_000;
/// How often addresses that have been quiet long enough to be forgotten are dropped.
const SWEEP_PERIOD: Duration = Duration::from_secs(1);

/// Why an upgrade was refused; answered over plain HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The gateway holds `limits.max_connections` already: 503 with Retry-After.
    Full { retry_after: Duration },
    /// The source address made too many attempts: 429 with Retry-After.
    TooManyAttempts { retry_after: Duration },
    /// The page's `Origin` is not allowed: 403.
    Origin(String),
}

impl Refusal {
    /// A short fixed name, for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Full { .. } => "full",
            Self::TooManyAttempts { .. } => "source_rate",
            Self::Origin(_) => "origin",
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let retry = |status: StatusCode, after: Duration, message: &'static str| {
            let seconds = after.as_secs_f64().ceil().max(1.0) as u64;
            (status, [(header::RETRY_AFTER, HeaderValue::from(seconds))], message).into_response()
        };
        match self {
            Self::Full { retry_after } => {
                retry(StatusCode::SERVICE_UNAVAILABLE, retry_after, "this gateway is at its connection limit")
            }
            Self::TooManyAttempts { retry_after } => {
                retry(StatusCode::TOO_MANY_REQUESTS, retry_after, "too many connection attempts from this address")
            }
            Self::Origin(origin) => {
                (StatusCode::FORBIDDEN, format!("origin {origin:?} is not allowed")).into_response()
            }
        }
    }
}

/// Held by a connection for its whole life: one of `limits.max_connections`.
pub struct Slot(#[allow(dead_code, reason = "held for its Drop")] OwnedSemaphorePermit);

pub struct Admission {
    slots: Arc<Semaphore>,
    full_retry_after: Duration,
    sources: Mutex<SourceTable>,
    attempts_per_second: u32,
    attempt_burst: u32,
    client_ip_header: Option<HeaderName>,
    origins: Origins,
}

impl Admission {
    pub fn new(config: &GatewayConfig) -> anyhow::Result<Self> {
        let limits = &config.limits;
        let client_ip_header = limits.client_ip_header.as_deref().map(HeaderName::try_from).transpose()?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            full_retry_after: limits.retry_after,
            sources: Mutex::new(SourceTable::default()),
            attempts_per_second: limits.connections_per_ip_per_second,
            attempt_burst: limits.connection_burst_per_ip,
            client_ip_header,
            origins: Origins::from_config(&config.ws.allowed_origins),
        })
    }

    /// Admits an upgrade from `peer` with `headers`, or says why not.
    pub fn admit(&self, peer: SocketAddr, headers: &HeaderMap) -> Result<Slot, Refusal> {
        let origin = headers.get(header::ORIGIN).map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
        let host = headers.get(header::HOST).and_then(|value| value.to_str().ok());
        if let Some(origin) = origin.filter(|origin| !self.origins.allow(origin, host)) {
            return Err(Refusal::Origin(origin));
        }
        if self.attempts_per_second > 0 {
            let source = source_key(self.client_ip(peer, headers));
            let mut sources = self.sources.lock().expect("source table lock");
            sources.attempt(source, Instant::now(), self.attempts_per_second, self.attempt_burst)?;
        }
        let permit = self.slots.clone().try_acquire_owned();
        permit.map(Slot).map_err(|_| Refusal::Full { retry_after: self.full_retry_after })
    }

    /// The client's address: the peer's, or, behind a proxy configured to say so, the
    /// last address in `limits.client_ip_header` (the one the nearest proxy added).
    fn client_ip(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        let from_header = self.client_ip_header.as_ref().and_then(|name| headers.get(name));
        let forwarded = from_header
            .and_then(|value| value.to_str().ok())
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse().ok());
        forwarded.unwrap_or(peer.ip())
    }
}

/// What attempts are counted by: an IPv4 address, or an IPv6 /64 (a single host
/// commonly gets a whole /64, so counting single IPv6 addresses would count nothing).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
        v4 => v4,
    }
}

#[derive(Default)]
struct SourceTable {
    buckets: HashMap<IpAddr, TokenBucket>,
    swept: Option<Instant>,
}

impl SourceTable {
    /// Counts an attempt from `source`; refused with how long until one would pass.
    fn attempt(&mut self, source: IpAddr, now: Instant, rate: u32, burst: u32) -> Result<(), Refusal> {
        let due = self.swept.is_none_or(|swept| now.duration_since(swept) >= SWEEP_PERIOD);
        if due || self.buckets.len() >= MAX_TRACKED_SOURCES {
            // A full bucket is what a new address gets anyway.
            self.buckets.retain(|_, bucket| !bucket.is_full(now));
            self.swept = Some(now);
        }
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_TRACKED_SOURCES {
            return Ok(());
        }
        let bucket = self.buckets.entry(source).or_insert_with(|| TokenBucket::new(rate, burst, now));
        if bucket.try_take(1, now) {
            Ok(())
        } else {
            Err(Refusal::TooManyAttempts { retry_after: bucket.wait_for(1, now) })
        }
    }
}

/// `ws.allowed_origins`: which pages may open a WebSocket to the gateway.
#[derive(Debug, Clone, PartialEq)]
enum Origins {
    /// Not configured: only pages served from the host the socket connects to.
    SameHost,
    /// `*`, said explicitly.
    Any,
    /// Exactly these, as `scheme://host[:port]`, lowercase.
    Listed(Vec<String>),
}

impl Origins {
    fn from_config(allowed: &[String]) -> Self {
        if allowed.is_empty() {
            Self::SameHost
        } else if allowed.iter().any(|origin| origin == "*") {
            Self::Any
        } else {
            Self::Listed(allowed.iter().map(|origin| origin.trim_end_matches('/').to_ascii_lowercase()).collect())
        }
    }

    /// Whether a page of `origin` may connect. Requests without an `Origin` header
    /// (native apps, servers) are not asked: the check exists against pages of other
    /// sites riding on a user's browser.
    fn allow(&self, origin: &str, host: Option<&str>) -> bool {
        let origin = origin.to_ascii_lowercase();
        match self {
            Self::Any => true,
            Self::Listed(listed) => listed.contains(&origin),
            Self::SameHost => {
                let authority = origin.split_once("://").map(|(_, authority)| authority);
                authority.is_some_and(|authority| host.is_some_and(|host| host.eq_ignore_ascii_case(authority)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        let same = Origins::from_config(&[]);
        assert!(same.allow("http://gw.example:8080", Some("gw.example:8080")));
        assert!(same.allow("HTTPS://GW.example", Some("gw.example")));
        assert!(!same.allow("https://evil.example", Some("gw.example")));
        assert!(!same.allow("null", Some("gw.example")));
        assert!(!same.allow("https://gw.example", None));

        let listed = Origins::from_config(&["https://app.example/".into(), "http://localhost:3000".into()]);
        assert!(listed.allow("https://app.example", Some("gw.example")));
        assert!(listed.allow("http://localhost:3000", Some("gw.example")));
        assert!(!listed.allow("http://app.example", Some("gw.example")), "the scheme counts");
        assert!(!listed.allow("https://gw.example", Some("gw.example")), "a list replaces same-host");

        assert!(Origins::from_config(&["*".into()]).allow("null", None));
    }

    #[test]
    fn sources_are_counted_per_address_and_ipv6_per_64() {
        let v6 = |text: &str| source_key(text.parse().unwrap());
        assert_eq!(v6("2001:db8:1:2:aaaa::1"), v6("2001:db8:1:2:bbbb::2"));
        assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
        assert_eq!(v6("::ffff:10.0.0.1"), "10.0.0.1".parse::<IpAddr>().unwrap());

        let now = Instant::now();
        let mut table = SourceTable::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(table.attempt(a, now, 1, 2).is_ok());
        assert!(table.attempt(a, now, 1, 2).is_ok());
        let Err(Refusal::TooManyAttempts { retry_after }) = table.attempt(a, now, 1, 2) else { panic!("refused") };
        assert_eq!(retry_after, Duration::from_secs(1));
        assert!(table.attempt(b, now, 1, 2).is_ok(), "another address has its own budget");
        let later = now + Duration::from_secs(5);
        assert!(table.attempt(b, later, 1, 2).is_ok());
        assert_eq!(table.buckets.len(), 1, "the quiet address was forgotten");
    }
}
