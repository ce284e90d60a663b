//! Redis outages, caused for real: redis-server killed (and later started again, empty),
//! frozen with SIGSTOP for a moment, killed behind a Sentinel that fails over to its
//! replica, or a Redis Cluster's master killed and replaced by its replica. The gateway and room-service processes stay up,
//! report themselves unready, answer requests that need Redis with `unavailable`
//! promptly, and work again once Redis is back without anything being restarted.

use std::time::Duration;

use e2e::http_get;
use e2e::processes::ProcessCluster;
use e2e::scrape::Scrape;
use protocol::client::{Backoff, Client, ClientError, ReconnectingClient, Start};
use protocol::{ErrorCode, JsonData, Request, ServerMessage};
use serde_json::json;

/// Long enough for any one request to fail on its own timeouts (2 s by default).
const PROMPT: Duration = Duration::from_secs(5);

async fn client<R>(cluster: &ProcessCluster<R>, identity: &str, gateways: [usize; 2]) -> ReconnectingClient {
    let urls = gateways.iter().map(|index| cluster.ws_url(*index)).collect();
    let backoff = Backoff { give_up_after: Duration::from_secs(40), ..Backoff::default() };
    ReconnectingClient::connect(urls, &cluster.token(identity, &["r", "r2"]), backoff).await.unwrap()
}

/// Reads until `client` learns the peer id of `identity` in room r (from a `joined` or a
/// `peer_joined`), skipping everything else.
async fn learn_peer(client: &mut ReconnectingClient, identity: &str) -> String {
    loop {
        match client.next_message().await.unwrap() {
            ServerMessage::Joined { peers, .. } => {
                if let Some(peer) = peers.into_iter().find(|peer| peer.identity == identity) {
                    return peer.peer_id;
                }
            }
            ServerMessage::PeerJoined { peer, .. } if peer.identity == identity => return peer.peer_id,
            _ => {}
        }
    }
}

/// Reads until a signal of `kind` arrives; returns its data.
async fn signal_of(client: &mut ReconnectingClient, kind: &str) -> serde_json::Value {
    loop {
        if let ServerMessage::Signal { kind: got, data, .. } = client.next_message().await.unwrap()
            && got == kind
        {
            return data.to_value();
        }
    }
}

/// A request that needs Redis (a join: bus subscription, room store) gets `unavailable`.
async fn join_is_refused_promptly(client: &mut Client) {
    let join = Request::Join { room: "r2".into(), metadata: None };
    let outcome = tokio::time::timeout(PROMPT, client.request(join)).await.expect("an answer, promptly");
    assert!(
        matches!(outcome, Err(ClientError::Server { code: ErrorCode::Unavailable, .. })),
        "expected unavailable, got {outcome:?}"
    );
}

/// Alice on gateway 0 and Bob on gateway 1 (each falling back on the other) join room r
/// and a first offer goes from Alice to Bob.
async fn alice_and_bob_signaling<R>(cluster: &ProcessCluster<R>) -> (ReconnectingClient, ReconnectingClient) {
    let mut alice = client(cluster, "alice", [0, 1]).await;
    let mut bob = client(cluster, "bob", [1, 0]).await;
    alice.join("r", None).await.unwrap();
    bob.join("r", None).await.unwrap();
    let bob_id = learn_peer(&mut alice, "bob").await;
    alice.signal("r", &bob_id, "offer", json!(1)).await.unwrap();
    assert_eq!(signal_of(&mut bob, "offer").await, json!(1));
    (alice, bob)
}

/// After they were told to reconnect: both reconnect (each as it reads) and an offer
/// and an answer go through. A client whose session was lost starts a new one and joins
/// again; one whose gateway repaired room r instead resumes its session. A gateway may
/// also do both, one after the other (it repairs the dead master's rooms, then its Redis
/// client notices the dead connection and it drops its whole state), so the exchange is
/// tried again, between the clients' current sessions, until it goes through (bounded).
async fn meet_and_signal_again(alice: &mut ReconnectingClient, bob: &mut ReconnectingClient) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
    for attempt in 2.. {
        assert!(tokio::time::Instant::now() < deadline, "no offer and answer went through within 40 s");
        // Whatever has arrived is read first, so that a `reconnect` already there is
        // followed and the ids are those of the sessions the clients will have.
        for client in [&mut *alice, &mut *bob] {
            while let Ok(Some(_)) = client.poll_message().await {}
        }
        let bob_id = bob.peer_id().to_string();
        if alice.signal("r", &bob_id, "offer", json!(attempt)).await.is_err() || !received(bob, "offer", attempt).await
        {
            continue;
        }
        let alice_id = alice.peer_id().to_string();
        if bob.signal("r", &alice_id, "answer", json!(attempt)).await.is_ok()
            && received(alice, "answer", attempt).await
        {
            eprintln!("offer and answer went through at try {}", attempt - 1);
            return;
        }
    }
}

/// Whether the signal of `kind` numbered `attempt` arrives within a second (reconnecting
/// on the way if the client is told to); false if it does not (it went to a session the
/// peer no longer has, or before the sender's gateway knew the peer's new session).
async fn received(client: &mut ReconnectingClient, kind: &str, attempt: u64) -> bool {
    let arrival = async {
        loop {
            match client.next_message().await {
                Ok(ServerMessage::Signal { kind: got, data, .. })
                    if got == kind && data.to_value() == json!(attempt) =>
                {
                    return true;
                }
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(1), arrival).await.unwrap_or(false)
}

async fn readiness<R>(cluster: &ProcessCluster<R>, index: usize) -> u16 {
    http_get(&cluster.http_url(index), "/readyz").await.0
}

/// Redis is killed: everything that needs it fails fast and the processes stay up; the
/// gateways, no longer able to renew their leases, tell their clients to reconnect.
/// Redis comes back empty: the gateways rejoin, the clients start new sessions, join
/// again, find each other and signal as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_started_again_empty() {
    tokio::time::timeout(Duration::from_secs(90), killed_and_started_again()).await.expect("done within 90 s");
}

async fn killed_and_started_again() {
    let env = [("GATEWAY_LEASE__TTL", "4s"), ("GATEWAY_LEASE__REFRESH", "500ms")];
    let mut cluster = ProcessCluster::start(2, &env, "500ms").await;
    let (mut alice, mut bob) = alice_and_bob_signaling(&cluster).await;

    cluster.redis.kill().await;
    let killed_at = tokio::time::Instant::now();
    join_is_refused_promptly(alice.client()).await;
    eprintln!("a join was answered unavailable {:?} after Redis died", killed_at.elapsed());
    let refused = tokio::time::timeout(PROMPT, Client::connect(&cluster.ws_url(1), Some(&cluster.token("carol", &[]))))
        .await
        .expect("a new connection is answered promptly");
    assert!(
        matches!(&refused, Err(ClientError::Server { code: ErrorCode::Unavailable, .. })),
        "a new session needs Redis: {:?}",
        refused.as_ref().err()
    );
    for index in 0..2 {
        assert_eq!(readiness(&cluster, index).await, 503, "gateway {index} is not ready without Redis");
        assert_eq!(http_get(&cluster.http_url(index), "/healthz").await.0, 200, "but alive");
    }

    // Past the lease's time to live the gateways assume their state is lost and tell
    // their clients, which keep trying to reconnect while Redis is down.
    assert!(
        matches!(alice.client().next_message().await, Ok(ServerMessage::Reconnect { reason }) if reason == "state_lost")
    );
    tokio::time::sleep(Duration::from_secs(2)).await; // an outage of some seconds
    for index in 0..2 {
        assert!(cluster.gateway_running(index), "gateway {index} is still running");
    }
    assert!(cluster.room_service(0).is_running(), "the room service is still running");

    cluster.redis.restart().await;
    let restarted_at = tokio::time::Instant::now();
    meet_and_signal_again(&mut alice, &mut bob).await;
    eprintln!("signaling again {:?} after Redis came back", restarted_at.elapsed());
    for start in alice.starts().iter().chain(bob.starts()) {
        assert!(
            matches!(start, Start::Fresh | Start::Resumed { gap: true, .. }),
            "Redis lost everything: a new session, or a resume that says so ({start:?})"
        );
    }
    for index in 0..2 {
        testkit::eventually("ready again", Duration::from_secs(10), || async {
            (readiness(&cluster, index).await == 200).then_some(())
        })
        .await;
    }
}

/// Redis freezes for a moment shorter than the leases: requests that need it fail fast
/// meanwhile, and afterwards everything goes on as before, same sessions, no reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brief_redis_freeze_changes_nothing_after_it() {
    tokio::time::timeout(Duration::from_secs(60), brief_freeze()).await.expect("done within 60 s");
}

async fn brief_freeze() {
    let cluster = ProcessCluster::start(2, &[], "500ms").await;
    let mut alice = client(&cluster, "alice", [0, 1]).await;
    let mut bob = client(&cluster, "bob", [1, 0]).await;
    alice.join("r", None).await.unwrap();
    bob.join("r", None).await.unwrap();
    let bob_id = learn_peer(&mut alice, "bob").await;
    let alice_id = alice.peer_id().to_string();

    cluster.redis.freeze();
    let frozen_at = tokio::time::Instant::now();
    let (ready, ()) = tokio::join!(readiness(&cluster, 0), join_is_refused_promptly(alice.client()));
    assert_eq!(ready, 503, "not ready while Redis does not answer");
    // Well within the lease, and before the connections are deemed unresponsive (4 s).
    tokio::time::sleep_until(frozen_at + Duration::from_millis(2500)).await;
    cluster.redis.thaw();

    alice.signal("r", &bob_id, "offer", json!({"after": "freeze"})).await.unwrap();
    assert_eq!(signal_of(&mut bob, "offer").await, json!({"after": "freeze"}));
    bob.signal("r", &alice_id, "answer", json!({"after": "freeze"})).await.unwrap();
    assert_eq!(signal_of(&mut alice, "answer").await, json!({"after": "freeze"}));
    assert!(alice.starts().is_empty() && bob.starts().is_empty(), "nobody had to reconnect");
    assert_eq!(alice.peer_id(), alice_id);
    testkit::eventually("ready again", Duration::from_secs(10), || async {
        (readiness(&cluster, 0).await == 200).then_some(())
    })
    .await;
    // The join that failed during the freeze works now.
    let reply = alice
        .client()
        .request(Request::Join { room: "r2".into(), metadata: Some(JsonData::from_value(&json!({}))) })
        .await;
    assert!(matches!(reply, Ok(ServerMessage::Joined { .. })), "{reply:?}");
}

/// Redis behind a Sentinel: a master, a replica and one Sentinel, the services given
/// only the Sentinel's URL (as `redis.url` documents it). The master dies; the Sentinel
/// promotes the replica; the gateways and the room service find the new master through
/// the Sentinel without a restart, and the clients, told their state may be lost,
/// reconnect, join again and signal as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_is_followed_without_a_restart() {
    tokio::time::timeout(Duration::from_secs(90), sentinel_failover()).await.expect("done within 90 s");
}

async fn sentinel_failover() {
    let master = testkit::RedisServer::start().await;
    let _replica = testkit::RedisServer::start_replica_of(&master).await;
    let mut sentinel = testkit::Sentinel::start(&master, "switchboard", 1).await;
    let mut cluster = ProcessCluster::start_on_redis(master, &sentinel.url(), 2).await;
    let (mut alice, mut bob) = alice_and_bob_signaling(&cluster).await;

    cluster.redis.kill().await;
    let killed_at = tokio::time::Instant::now();
    sentinel.wait_for("+switch-master", Duration::from_secs(30)).await;
    eprintln!("the Sentinel promoted the replica {:?} after the master died", killed_at.elapsed());

    signaling_again_without_a_restart(&mut cluster, (&mut alice, &mut bob), killed_at).await;
}

/// After a failover: once both gateways have acted on it and serve again, Alice and
/// Bob meet and signal again, and no process of the cluster was restarted. A gateway
/// acts by dropping its state (its bus reconnected, so messages may have been missed)
/// or, in a Redis Cluster whose slot check saw the promoted replica first, by repairing
/// the rooms of the dead master's slots (room r among them).
///
/// The wait comes first because the two gateways notice the failover at their own
/// moments (each Redis client backs off on its own): a client that met its peer on a
/// gateway yet to notice would see that meeting undone by the later reset, and the
/// test would wait for a peer that is busy reconnecting.
async fn signaling_again_without_a_restart<R>(
    cluster: &mut ProcessCluster<R>,
    (alice, bob): (&mut ReconnectingClient, &mut ReconnectingClient),
    killed_at: tokio::time::Instant,
) {
    for index in 0..2 {
        assert!(cluster.gateway_running(index), "gateway {index} was not restarted");
        testkit::eventually("a gateway that acted on the failover serves again", Duration::from_secs(30), || async {
            (acted_on_failover(cluster, index).await && readiness(cluster, index).await == 200).then_some(())
        })
        .await;
    }
    eprintln!("both gateways serve again {:?} after the master died", killed_at.elapsed());
    meet_and_signal_again(alice, bob).await;
    eprintln!("signaling again {:?} after the master died", killed_at.elapsed());
    assert!(cluster.room_service(0).is_running(), "the room service was not restarted");
}

/// Whether gateway `index` has dropped its state or repaired a room since it started.
async fn acted_on_failover<R>(cluster: &ProcessCluster<R>, index: usize) -> bool {
    let metrics = Scrape::of(cluster.gateway(index).admin_addr()).await;
    metrics.value("switchboard_gateway_state_losses_total") + metrics.value("switchboard_gateway_room_repairs_total")
        > 0.0
}

/// A Redis Cluster of three masters with a replica each, the services given its URL.
/// The master serving room r dies; the cluster promotes its replica; the gateways and
/// the room service follow without a restart (their subscriptions move to the promoted
/// replica), and the clients, told their state may be lost, reconnect, join again and
/// signal as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_failover_is_followed_without_a_restart() {
    tokio::time::timeout(Duration::from_secs(90), redis_cluster_failover()).await.expect("done within 90 s");
}

async fn redis_cluster_failover() {
    let redis = testkit::RedisCluster::start(3, 1).await;
    let url = redis.url();
    let mut cluster = ProcessCluster::start_on_redis(redis, &url, 2).await;
    let (mut alice, mut bob) = alice_and_bob_signaling(&cluster).await;

    let victim = cluster.redis.kill_master_of("sb:room:{r}").await;
    let killed_at = tokio::time::Instant::now();
    cluster.redis.wait_until_healthy(Duration::from_secs(30)).await;
    assert_ne!(cluster.redis.master_of("sb:room:{r}").await, victim, "a replica serves room r now");
    eprintln!("the cluster promoted the replica {:?} after the master died", killed_at.elapsed());

    signaling_again_without_a_restart(&mut cluster, (&mut alice, &mut bob), killed_at).await;
}
