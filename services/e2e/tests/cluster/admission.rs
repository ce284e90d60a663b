//! Which upgrades a gateway accepts: its connection cap (503 + Retry-After), attempts per
//! source address (429 + Retry-After), and the `Origin` allow-list (403). Admission is
//! decided by each gateway alone, so one embedded gateway shows it.

use std::time::Duration;

use gateway::GatewayConfig;
use protocol::client::Client;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, http};

use crate::TestCluster;

/// Opens a WebSocket to gateway 0 with `headers` added: `Ok` if upgraded (the socket is
/// kept in `keep`), else the HTTP status and `Retry-After`.
async fn upgrade(cluster: &TestCluster, token: Option<&str>, headers: &[(&str, &str)]) -> Result<(), (u16, String)> {
    let url = match token {
        Some(token) => format!("{}?token={token}", cluster.ws_url(0)),
        None => cluster.ws_url(0),
    };
    let mut request = url.into_client_request().unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            http::HeaderValue::from_str(value).unwrap(),
        );
    }
    let attempt = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(request));
    match attempt.await.expect("an answer within 5 s") {
        Ok(_) => Ok(()),
        Err(tungstenite::Error::Http(response)) => {
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            Err((response.status().as_u16(), retry_after.unwrap_or_default()))
        }
        Err(other) => panic!("upgrade failed without an HTTP answer: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_max_connections_upgrades_get_503_until_a_slot_frees() {
    let cluster = TestCluster::embedded_with(|config: &mut GatewayConfig| config.limits.max_connections = 2).await;
    let first = cluster.connect(0, "a", &["r"]).await;
    let mut second = cluster.connect(0, "b", &["r"]).await;
    let token = cluster.token("c", &["r"]);
    assert_eq!(upgrade(&cluster, Some(&token), &[]).await, Err((503, "5".into())), "the documented Retry-After");
    second.ping().await.unwrap();

    // A connection that ends gives its slot back.
    first.close().await.unwrap();
    let admitted = testkit::eventually("a slot frees", Duration::from_secs(5), || async {
        Client::connect(&cluster.ws_url(0), Some(&token)).await.ok()
    })
    .await;
    drop(admitted);
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attempts_per_source_address_are_limited() {
    let cluster = TestCluster::embedded_with(|config: &mut GatewayConfig| {
        config.limits.connections_per_ip_per_second = 1;
        config.limits.connection_burst_per_ip = 3;
        config.limits.client_ip_header = Some("x-forwarded-for".into());
    })
    .await;
    // Every attempt counts, also one that fails authentication.
    assert_eq!(upgrade(&cluster, None, &[]).await, Ok(()), "upgraded, then refused by auth");
    let token = cluster.token("a", &["r"]);
    for _ in 0..2 {
        assert_eq!(upgrade(&cluster, Some(&token), &[]).await, Ok(()));
    }
    assert_eq!(upgrade(&cluster, Some(&token), &[]).await, Err((429, "1".into())), "one a second");

    // Behind the configured proxy header, the last address (the nearest proxy's view)
    // is the source: a forged first entry changes nothing.
    let via = |chain: &'static str| [("x-forwarded-for", chain)];
    for _ in 0..3 {
        assert_eq!(upgrade(&cluster, Some(&token), &via("10.0.0.1, 192.0.2.7")).await, Ok(()));
    }
    assert_eq!(upgrade(&cluster, Some(&token), &via("10.0.0.2, 192.0.2.7")).await, Err((429, "1".into())));
    assert_eq!(upgrade(&cluster, Some(&token), &via("192.0.2.8")).await, Ok(()), "another client");
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_other_origins_are_refused_unless_allowed() {
    let cluster = TestCluster::embedded().await;
    let token = cluster.token("a", &["r"]);
    let own = format!("http://{}", cluster.gateway_addr(0));
    assert_eq!(upgrade(&cluster, Some(&token), &[("origin", &own)]).await, Ok(()), "same host");
    assert_eq!(upgrade(&cluster, Some(&token), &[]).await, Ok(()), "not a browser: no Origin");
    let evil = [("origin", "https://evil.example")];
    assert_eq!(upgrade(&cluster, Some(&token), &evil).await, Err((403, String::new())));
    cluster.shutdown().await;

    let allowed = |config: &mut GatewayConfig| config.ws.allowed_origins = vec!["https://app.example".into()];
    let cluster = TestCluster::embedded_with(allowed).await;
    let token = cluster.token("a", &["r"]);
    assert_eq!(upgrade(&cluster, Some(&token), &[("origin", "https://app.example")]).await, Ok(()));
    assert_eq!(upgrade(&cluster, Some(&token), &evil).await, Err((403, String::new())));
    let own = format!("http://{}", cluster.gateway_addr(0));
    assert_eq!(upgrade(&cluster, Some(&token), &[("origin", &own)]).await, Err((403, String::new())), "list only");
    cluster.shutdown().await;

    let cluster =
        TestCluster::embedded_with(|config: &mut GatewayConfig| config.ws.allowed_origins = vec!["*".into()]).await;
    let token = cluster.token("a", &["r"]);
    assert_eq!(upgrade(&cluster, Some(&token), &evil).await, Ok(()), "`*` said explicitly");
    cluster.shutdown().await;
}

/// Slowloris: sockets that send part of a request and then nothing hold a connection
/// until `ws.handshake_timeout`, and at most `limits.max_http_connections` of them at
/// once; past the cap, new sockets are closed unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_never_finish_their_request_are_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cluster = TestCluster::embedded_with(|config: &mut GatewayConfig| {
        config.ws.handshake_timeout = Duration::from_millis(500);
        config.limits.max_http_connections = 4;
    })
    .await;
    let addr = cluster.gateway_addr(0);
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
        socket.write_all(b"GET /ws HTTP/1.1\r\nHost: gateway\r\n").await.unwrap();
        slow.push(socket);
    }
    let read_all = |mut socket: tokio::net::TcpStream| async move {
        let mut answer = Vec::new();
        let outcome = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
        outcome.expect("the gateway ends the connection within 5 s").map(|_| answer)
    };
    let mut fifth = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = fifth.write_all(b"GET /healthz HTTP/1.1\r\nHost: gateway\r\n\r\n").await;
    let answer = read_all(fifth).await.unwrap_or_default();
    assert!(answer.is_empty(), "past the cap: closed unanswered, got {:?}", String::from_utf8_lossy(&answer));
    // The slow ones lose their connections at the deadline, without a response to read.
    for socket in slow {
        let answer = read_all(socket).await.unwrap_or_default();
        assert!(!String::from_utf8_lossy(&answer).contains("101"), "never upgraded");
    }
    let token = cluster.token("a", &["r"]);
    testkit::eventually("the gateway admits again", Duration::from_secs(5), || async {
        Client::connect(&cluster.ws_url(0), Some(&token)).await.ok()
    })
    .await;
    cluster.shutdown().await;
}
