//! What `welcome` tells a client: its peer id, limits, and the ICE servers, with TURN
//! credentials minted for this connection when a TURN secret is configured.

use gateway::turn;
use protocol::IceServer;

use crate::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn welcome_carries_static_ice_servers_and_fresh_turn_credentials() {
    let cluster = TestCluster::embedded_with(|config| {
        config.ice_servers =
            vec![IceServer { urls: vec!["stun:stun.example.org:3478".into()], username: None, credential: None }];
        config.turn.secret = Some("coturn-shared".into());
        config.turn.urls = vec!["turn:127.0.0.1:3478?transport=udp".into()];
    })
    .await;
    let client = cluster.connect(0, "carol", &["r"]).await;
    let welcome = client.welcome();
    assert_eq!(welcome.protocol, 1);
    assert_eq!(welcome.limits.max_message_bytes, 64 * 1024);
    assert_eq!(welcome.ice_servers.len(), 2);
    assert_eq!(welcome.ice_servers[0].urls, ["stun:stun.example.org:3478"]);
    let relay = &welcome.ice_servers[1];
    assert_eq!(relay.urls, ["turn:127.0.0.1:3478?transport=udp"]);
    let username = relay.username.as_deref().unwrap();
    let (expiry, identity) = username.split_once(':').unwrap();
    assert_eq!(identity, "carol");
    let expiry: u64 = expiry.parse().unwrap();
    assert_eq!(relay.credential.as_deref(), Some(turn::credentials("coturn-shared", "carol", expiry).1.as_str()));
    cluster.shutdown().await;
}
