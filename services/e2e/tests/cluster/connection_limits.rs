//! Limits of one connection that need no flood to show: rooms per connection, the time
//! to authenticate, and keepalive freeing a peer that stopped answering. Each is
//! decided by the client's own gateway, so one embedded gateway shows it.

use std::time::Duration;

use gateway::GatewayConfig;
use protocol::{CloseCode, ErrorCode, LeaveReason, ServerMessage};
use tokio_tungstenite::tungstenite::Message;

use crate::{TestCluster, expect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_may_be_in_so_many_rooms() {
    let cluster =
        TestCluster::embedded_with(|config: &mut GatewayConfig| config.limits.max_rooms_per_connection = 2).await;
    let mut client = cluster.connect(0, "alice", &["a", "b", "c"]).await;
    client.join("a", None).await.unwrap();
    client.join("b", None).await.unwrap();
    let refused = client.join("c", None).await.unwrap_err();
    assert_eq!(refused.code(), Some(ErrorCode::Forbidden), "{refused}");
    assert!(refused.to_string().contains("at most 2 rooms"), "{refused}");
    client.leave("a").await.unwrap();
    client.join("c", None).await.unwrap();
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_authenticates_is_closed() {
    // The test clusters give 2 s to authenticate.
    let cluster = TestCluster::embedded_with(|config: &mut GatewayConfig| config.auth.anonymous = Some(false)).await;
    let (mut socket, _) = tokio_tungstenite::connect_async(cluster.ws_url(0)).await.unwrap();
    let mut error = None;
    let close = tokio::time::timeout(Duration::from_secs(5), async {
        use futures_util::StreamExt;
        while let Some(message) = socket.next().await {
            match message.unwrap() {
                Message::Text(text) => error = Some(serde_json::from_str::<ServerMessage>(&text).unwrap()),
                Message::Close(frame) => return frame.map(|frame| u16::from(frame.code)),
                _ => {}
            }
        }
        None
    })
    .await
    .expect("closed within 5 s");
    assert_eq!(close, Some(CloseCode::Unauthorized.code()));
    match error {
        Some(ServerMessage::Error { code: ErrorCode::Unauthorized, message, .. }) => {
            assert!(message.contains("no auth message within the handshake timeout"), "{message}")
        }
        other => panic!("expected the reason first, got {other:?}"),
    }
    cluster.shutdown().await;
}

/// A peer whose connection stays open but that answers nothing (not even pings) is
/// closed after the idle timeout, and with resume off its room-mates see it go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_frees_a_peer_that_stopped_answering() {
    let cluster = TestCluster::embedded_with(|config: &mut GatewayConfig| {
        config.ws.ping_interval = Duration::from_millis(200);
        config.ws.idle_timeout = Duration::from_secs(1);
        config.session.resume_window = Duration::ZERO;
    })
    .await;
    let mut alice = cluster.connect(0, "alice", &["r"]).await;
    alice.join("r", None).await.unwrap();
    let mut frozen = cluster.connect(0, "frozen", &["r"]).await;
    frozen.join("r", None).await.unwrap();
    expect::peer_joined(&mut alice, "r").await;
    // `frozen` is never read from again: its pings go unanswered (a client answers them
    // while reading), as with a peer whose machine went away.
    let frozen_id = frozen.peer_id().to_string();
    alice.set_reply_timeout(Duration::from_secs(5));
    expect::peer_left(&mut alice, "r", &frozen_id, LeaveReason::Disconnected).await;
    let (code, _) = frozen.closed().await.unwrap();
    assert_eq!(code, CloseCode::IdleTimeout.code());
    // Alice, who answers her pings while she waits, is still there.
    alice.ping().await.unwrap();
    cluster.shutdown().await;
}
