//! The real binaries: a room-service process and two gateway processes, configured
//! through the environment as a deployment would be, complete a negotiation.

use e2e::processes::ServiceProcess;
use protocol::client::Client;
use serde_json::json;
use testkit::RedisServer;

use crate::expect;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binaries_negotiate_across_two_gateway_processes() {
    let redis = RedisServer::start().await;
    let room_service =
        ServiceProcess::start("room-service", &["--redis-url", &redis.url()], &[], "room service ready").await;
    let env = [
        ("GATEWAY_REDIS__URL", redis.url()),
        ("GATEWAY_ROOM_SERVICE__URL", format!("http://{}", room_service.addr())),
        ("GATEWAY_AUTH__JWT_SECRET", e2e::SECRET.to_string()),
        // Bob does not resume after the drain; his session ends after this.
        ("GATEWAY_DRAIN__CLIENT_GRACE", "200ms".to_string()),
        ("GATEWAY_DRAIN__TIMEOUT", "1s".to_string()),
    ];
    let gateway_a = ServiceProcess::start("gateway", &[], &env, "gateway ready").await;
    let gateway_b = ServiceProcess::start("gateway", &[], &env, "gateway ready").await;

    let token = |identity: &str| {
        gateway::auth::mint(
            e2e::SECRET,
            &gateway::auth::Claims::new(identity, vec!["call".into()], std::time::Duration::from_secs(60)),
        )
    };
    let mut alice = Client::connect(&format!("ws://{}/ws", gateway_a.addr()), Some(&token("alice"))).await.unwrap();
    let mut bob = Client::connect(&format!("ws://{}/ws", gateway_b.addr()), Some(&token("bob"))).await.unwrap();
    assert_ne!(alice.welcome().server.node, bob.welcome().server.node, "two different gateway nodes");
    alice.join("call", None).await.unwrap();
    bob.join("call", None).await.unwrap();
    expect::peer_joined(&mut alice, "call").await;
    let bob_id = bob.peer_id().to_string();
    alice.signal("call", &bob_id, "offer", json!({"sdp": "o"})).await.unwrap();
    assert_eq!(expect::signal(&mut bob).await.2, "offer");
    bob.signal("call", alice.peer_id(), "answer", json!({"sdp": "a"})).await.unwrap();
    assert_eq!(expect::signal(&mut alice).await.2, "answer");

    // SIGTERM: the gateway asks its clients to reconnect elsewhere, closes their sockets
    // with 1001, and exits 0 once their sessions are handed over or ended.
    let status = gateway_b.terminate().await;
    assert!(status.success(), "gateway exit status {status}");
    let (code, _) = bob.closed().await.unwrap();
    assert_eq!(code, protocol::CloseCode::GoingAway.code());
    assert!(
        matches!(bob.next_message().await, Ok(protocol::ServerMessage::Reconnect { ref reason }) if reason == "draining"),
        "the close was preceded by a reconnect instruction"
    );
    expect::peer_left(&mut alice, "call", &bob_id, protocol::LeaveReason::Disconnected).await;
    assert!(gateway_a.terminate().await.success());
    assert!(room_service.terminate().await.success());
}

/// README command 1: the gateway binary with no configuration at all is a working,
/// embedded signaling server that accepts anonymous clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_binary_is_an_embedded_server() {
    let gateway = ServiceProcess::start("gateway", &[], &[], "gateway ready").await;
    let url = format!("ws://{}/ws", gateway.addr());
    let mut alice = Client::connect(&url, None).await.unwrap();
    let mut bob = Client::connect(&url, None).await.unwrap();
    assert!(alice.welcome().identity.starts_with("anon-"), "{:?}", alice.welcome());
    alice.join("any-room", None).await.unwrap();
    bob.join("any-room", None).await.unwrap();
    expect::peer_joined(&mut alice, "any-room").await;
    bob.signal("any-room", alice.peer_id(), "offer", json!({"sdp": "o"})).await.unwrap();
    assert_eq!(expect::signal(&mut alice).await.1, bob.peer_id());
    assert_eq!(e2e::http_get(&format!("http://{}", gateway.addr()), "/readyz").await.0, 200);
    assert!(gateway.terminate().await.success());
}
