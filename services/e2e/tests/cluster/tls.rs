//! A gateway serving TLS itself (`tls.cert_file`, `tls.key_file`), for deployments
//! without a TLS-terminating ingress: a client that trusts the certificate gets its
//! `welcome` over wss; a plain connection to the TLS port fails without harm.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use gateway::GatewayConfig;
use protocol::ServerMessage;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

use crate::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_wss_with_the_configured_certificate() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let dir = std::env::temp_dir().join(format!("switchboard-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, certified.cert.pem()).unwrap();
    std::fs::write(&key_file, certified.key_pair.serialize_pem()).unwrap();
    let cluster = TestCluster::embedded_with(|config: &mut GatewayConfig| {
        config.tls.cert_file = Some(cert_file.clone());
        config.tls.key_file = Some(key_file.clone());
    })
    .await;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client_config));
    let addr = cluster.gateway_addr(0);
    let token = cluster.token("alice", &["r"]);

    let welcome_over_wss = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect("TLS handshake");
        let url = format!("wss://localhost:{}/ws?token={token}", addr.port());
        let (mut socket, _) = tokio_tungstenite::client_async(url, tls).await.expect("upgrade over TLS");
        match socket.next().await {
            Some(Ok(Message::Text(text))) => serde_json::from_str::<ServerMessage>(&text).unwrap(),
            other => panic!("expected welcome, got {other:?}"),
        }
    };
    let first = tokio::time::timeout(Duration::from_secs(5), welcome_over_wss).await.expect("within 5 s");
    assert!(matches!(first, ServerMessage::Welcome(ref welcome) if welcome.identity == "alice"), "{first:?}");

    // Plain HTTP to the TLS port: no upgrade, and the gateway serves on.
    let plain = tokio::time::timeout(Duration::from_secs(5), tokio_tungstenite::connect_async(cluster.ws_url(0)));
    assert!(plain.await.expect("an answer within 5 s").is_err(), "plain WebSocket to a TLS port");
    let again = async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await
    };
    assert!(tokio::time::timeout(Duration::from_secs(5), again).await.unwrap().is_ok(), "still serving TLS");
    cluster.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}
