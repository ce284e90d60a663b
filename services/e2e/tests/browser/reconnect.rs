//! The SDK's reconnection: Alice's connection is cut (her gateway "dies" behind the load
//! balancer, which sends her to another one); her page reconnects with backoff, joins
//! the room again, and the call comes back.

use e2e::browser::{Browsers, Page};
use e2e::tls_proxy::TlsProxy;

use crate::{CONNECT_TIMEOUT, TestCluster, connected_to, demo_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_is_re_established_and_the_call_resumes() {
    let cluster = TestCluster::redis(2).await;
    let browsers = Browsers::start().await;
    let balancer = TlsProxy::start(cluster.gateway_addr(0)).await;
    let alice_token = cluster.token_named("alice", "Alice", &["room"]);
    let bob_token = cluster.token_named("bob", "Bob", &["room"]);
    let alice = browsers.open("alice", &demo_url(&balancer.https_url(), "room", "Alice", Some(&alice_token))).await;
    let bob = browsers.open("bob", &demo_url(&cluster.http_url(1), "room", "Bob", Some(&bob_token))).await;
    let before = Page::wait_all(&[&alice, &bob], &connected_to(1), CONNECT_TIMEOUT).await;
    let old_alice = before[0]["peerId"].as_str().unwrap().to_string();

    balancer.switch_backend(cluster.gateway_addr(1));

    // Without resume the reconnected Alice is a new peer: Bob sees the old one leave and
    // the new one arrive, and both negotiate again.
    let reconnected = format!("s.status === 'open' && s.peerId !== '{old_alice}' && {}", connected_to(1));
    let after = alice.wait_for(&reconnected, CONNECT_TIMEOUT).await;
    let new_alice = after["peerId"].as_str().unwrap();
    let bob_sees = format!(
        "s.departed.some((d) => d.peerId === '{old_alice}') && s.peers.length === 1 && s.peers[0].peerId === '{new_alice}' && {}",
        connected_to(1)
    );
    bob.wait_for(&bob_sees, CONNECT_TIMEOUT).await;
    alice.close().await;
    bob.close().await;
    cluster.shutdown().await;
}
