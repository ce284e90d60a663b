//! The SDK's reconnection: Alice's connection is cut (her gateway "dies" behind the load
//! balancer, which sends her to another one); her page reconnects with backoff and
//! resumes the session there. Same peer id, same room, nobody sees her leave, and the
//! call itself (peer to peer) never drops.

use e2e::browser::{Browsers, Page};
use e2e::tls_proxy::TlsProxy;
use serde_json::Value;

use crate::{CONNECT_TIMEOUT, TestCluster, connected_to, demo_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_resumed_on_another_gateway() {
    let cluster = TestCluster::redis(2).await;
    let browsers = Browsers::start().await;
    let balancer = TlsProxy::start(cluster.gateway_addr(0)).await;
    let alice_token = cluster.token_named("alice", "Alice", &["room"]);
    let bob_token = cluster.token_named("bob", "Bob", &["room"]);
    let alice = browsers.open("alice", &demo_url(&balancer.https_url(), "room", "Alice", Some(&alice_token))).await;
    let bob = browsers.open("bob", &demo_url(&cluster.http_url(1), "room", "Bob", Some(&bob_token))).await;
    let before = Page::wait_all(&[&alice, &bob], &connected_to(1), CONNECT_TIMEOUT).await;
    let alice_id = before[0]["peerId"].as_str().unwrap().to_string();

    balancer.switch_backend(cluster.gateway_addr(1));

    let resumed =
        format!("s.status === 'open' && s.resumes.length === 1 && s.peerId === '{alice_id}' && {}", connected_to(1));
    let after = alice.wait_for(&resumed, CONNECT_TIMEOUT).await;
    assert_eq!(after["resumes"][0]["gap"], false, "her old gateway handed over what it kept");
    // Bob never saw her go, and the chat (over the untouched peer connection, and the
    // resumed signaling for presence) still works both ways.
    assert_eq!(bob.snapshot().await["departed"], Value::Array(Vec::new()));
    assert_eq!(alice.execute("return window.demo.sendChat('still here');").await, Value::from(1));
    bob.wait_for("s.chat.some((m) => m.text === 'still here')", CONNECT_TIMEOUT).await;
    assert_eq!(bob.execute("return window.demo.sendChat('welcome back');").await, Value::from(1));
    alice.wait_for("s.chat.some((m) => m.text === 'welcome back')", CONNECT_TIMEOUT).await;
    alice.close().await;
    bob.close().await;
    cluster.shutdown().await;
}
