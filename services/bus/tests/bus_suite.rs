//! One suite, run against both bus implementations: the in-memory hub, and Redis pub/sub
//! on a real redis-server started for the test and on a real Redis Cluster of three
//! masters (sharded pub/sub).

use std::time::Duration;

use bus::{Bus, Incoming, MemoryHub, RedisBus, RedisConfig, Topic};
use bytes::Bytes;
use testkit::{RedisCluster, RedisServer};

const WAIT: Duration = Duration::from_secs(5);

async fn next(incoming: &mut Incoming) -> Bytes {
    tokio::time::timeout(WAIT, incoming.recv()).await.expect("an envelope within 5 s").expect("bus open")
}

fn redis_config(server: &RedisServer) -> RedisConfig {
    RedisConfig { url: Some(server.url()), ..RedisConfig::default() }
}

/// Two nodes on one bus.
async fn pair_memory() -> ((impl Bus, Incoming), (impl Bus, Incoming)) {
    let hub = MemoryHub::new();
    (hub.node(1024), hub.node(1024))
}

async fn pair_redis(server: &RedisServer) -> ((RedisBus, Incoming), (RedisBus, Incoming)) {
    let config = redis_config(server);
    (RedisBus::connect(&config, 1024).await.unwrap(), RedisBus::connect(&config, 1024).await.unwrap())
}

async fn pair_cluster(cluster: &RedisCluster) -> ((RedisBus, Incoming), (RedisBus, Incoming)) {
    let config = RedisConfig { url: Some(cluster.url()), ..RedisConfig::default() };
    (RedisBus::connect(&config, 1024).await.unwrap(), RedisBus::connect(&config, 1024).await.unwrap())
}

/// Subscribed rooms are delivered, unsubscribed ones are not, own publications come back.
async fn delivers_only_subscribed_rooms(a: (impl Bus, Incoming), b: (impl Bus, Incoming)) {
    let ((a, mut a_in), (b, mut b_in)) = (a, b);
    b.subscribe(Topic::Room("r1")).await.unwrap();
    a.subscribe(Topic::Room("r1")).await.unwrap();
    a.publish(Topic::Room("r2"), Bytes::from_static(b"nobody listens")).await.unwrap();
    a.publish(Topic::Room("r1"), Bytes::from_static(b"one")).await.unwrap();
    // Had "r2" been delivered it would arrive first: one publisher, one order.
    assert_eq!(next(&mut b_in).await, "one");
    assert_eq!(next(&mut a_in).await, "one", "a node hears its own publications");

    b.unsubscribe(Topic::Room("r1")).await.unwrap();
    b.subscribe(Topic::Room("r3")).await.unwrap();
    a.publish(Topic::Room("r1"), Bytes::from_static(b"after unsubscribe")).await.unwrap();
    a.publish(Topic::Room("r3"), Bytes::from_static(b"three")).await.unwrap();
    assert_eq!(next(&mut b_in).await, "three");
}

/// Every subscriber sees one order of the publishes of two publishers.
async fn one_order_for_all(a: (impl Bus, Incoming), b: (impl Bus, Incoming)) {
    let ((a, mut a_in), (b, mut b_in)) = (a, b);
    a.subscribe(Topic::Room("r")).await.unwrap();
    b.subscribe(Topic::Room("r")).await.unwrap();
    tokio::join!(publish_200(&a, "a"), publish_200(&b, "b"));
    let mut seen_a = Vec::new();
    let mut seen_b = Vec::new();
    for _ in 0..400 {
        seen_a.push(next(&mut a_in).await);
        seen_b.push(next(&mut b_in).await);
    }
    assert_eq!(seen_a, seen_b, "both nodes see one order");
    for origin in ["a", "b"] {
        let own: Vec<_> = seen_a.iter().filter(|m| m.starts_with(origin.as_bytes())).collect();
        let expected: Vec<_> = (0..200).map(|i| Bytes::from(format!("{origin}{i}"))).collect();
        assert_eq!(own, expected.iter().collect::<Vec<_>>(), "publisher {origin}'s order kept");
    }
}

/// Publishes `<origin>0` .. `<origin>199` one after another, as one publisher task would.
async fn publish_200(node: &impl Bus, origin: &str) {
    for i in 0..200 {
        node.publish(Topic::Room("r"), Bytes::from(format!("{origin}{i}"))).await.unwrap();
    }
}

/// The contract the gateway's joins rely on: once `subscribe` returns, a publish from
/// any other connection reaches this node. 300 fresh rooms, each published to by the
/// other node right after the subscription returned.
async fn subscribe_is_active_when_it_returns(a: (impl Bus, Incoming), b: (impl Bus, Incoming)) {
    let ((a, mut a_in), (b, _b_in)) = (a, b);
    for room in 0..300 {
        let room = format!("fresh-{room}");
        a.subscribe(Topic::Room(&room)).await.unwrap();
        b.publish(Topic::Room(&room), Bytes::from(room.clone())).await.unwrap();
        assert_eq!(next(&mut a_in).await, room, "the publish right after subscribe arrived");
        a.unsubscribe(Topic::Room(&room)).await.unwrap();
    }
}

/// A node's channel is heard once some node subscribed to it, from any node; one
/// nobody subscribed to is not (as a crashed node's is not).
async fn a_channel_is_heard_once_subscribed(a: (impl Bus, Incoming), b: (impl Bus, Incoming)) {
    let ((a, _a_in), (b, _b_in)) = (a, b);
    for node in ["gw-1", "gw-2", "gw-3"] {
        assert!(!a.is_heard(Topic::Node(node)).await.unwrap(), "{node}: nobody listens yet");
        b.subscribe(Topic::Node(node)).await.unwrap();
        assert!(a.is_heard(Topic::Node(node)).await.unwrap(), "{node}");
        assert!(b.is_heard(Topic::Node(node)).await.unwrap(), "{node}");
    }
    assert!(!a.is_heard(Topic::Node("gw-gone")).await.unwrap());
}

/// Runs each contract scenario `fn(a, b)` (two nodes on one bus) three times, as
/// `<scenario>::memory`, `<scenario>::redis` (one redis-server) and
/// `<scenario>::cluster` (a Redis Cluster of three masters).
macro_rules! on_every_bus {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            use super::*;

            #[tokio::test]
            async fn memory() {
                let (a, b) = pair_memory().await;
                super::$scenario(a, b).await;
            }

            #[tokio::test]
            async fn redis() {
                let server = RedisServer::start().await;
                let (a, b) = pair_redis(&server).await;
                super::$scenario(a, b).await;
            }

            #[tokio::test]
            async fn cluster() {
                let cluster = RedisCluster::start(3, 0).await;
                let (a, b) = pair_cluster(&cluster).await;
                super::$scenario(a, b).await;
            }
        }
    )*};
}

on_every_bus!(
    delivers_only_subscribed_rooms,
    one_order_for_all,
    subscribe_is_active_when_it_returns,
    a_channel_is_heard_once_subscribed,
);

/// In a Redis Cluster a room's channel is a shard channel: only the master serving the
/// room's hash slot knows the subscription, the others (and classic pub/sub) do not,
/// so a publication is not copied to every master.
#[tokio::test]
async fn cluster_rooms_use_sharded_channels_on_their_own_master() {
    let cluster = RedisCluster::start(3, 0).await;
    let ((bus, mut incoming), _other) = pair_cluster(&cluster).await;
    bus.subscribe(Topic::Room("sharded")).await.unwrap();
    bus.publish(Topic::Room("sharded"), Bytes::from_static(b"hello")).await.unwrap();
    assert_eq!(next(&mut incoming).await, "hello");

    let channel = "sb:room:{sharded}";
    let owner = cluster.master_of(channel).await;
    for port in cluster.master_ports().await {
        let shard_subscribers = redis_cli(port, &["PUBSUB", "SHARDNUMSUB", channel]);
        let expected = if port == owner { "1" } else { "0" };
        assert_eq!(shard_subscribers.lines().nth(1), Some(expected), "master {port} (owner {owner})");
        assert_eq!(redis_cli(port, &["PUBSUB", "NUMSUB", channel]).lines().nth(1), Some("0"), "no classic channel");
    }
}

/// A master dies; its replica takes over its slots. The node is told it may have missed
/// messages, and its subscriptions come back by themselves, on the promoted replica and
/// on the other masters. Which way it is told depends on who notices first: fred, when
/// the dead master's connection fails, reconnects the whole client (an interruption:
/// every room); the slot check, when the slot map names the promoted replica, moves the
/// dead master's channels only (a gap in their rooms). docs/redis-cluster.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_resubscribes_after_a_failover() {
    let mut cluster = RedisCluster::start(3, 1).await;
    let config = RedisConfig { url: Some(cluster.url()), ..RedisConfig::default() };
    let (bus, mut incoming) = RedisBus::connect(&config, 1024).await.unwrap();
    let (mut interruptions, mut gaps) = (bus.interruptions(), bus.room_gaps());
    let victim = cluster.master_of("sb:room:{r}").await;
    let survivor = cluster.name_elsewhere("sb:room:{r}", room_channel).await;
    for room in ["r", survivor.as_str()] {
        bus.subscribe(Topic::Room(room)).await.unwrap();
        bus.publish(Topic::Room(room), Bytes::from(room.to_string())).await.unwrap();
        assert_eq!(next(&mut incoming).await, room);
    }
    assert_eq!(*interruptions.borrow_and_update(), 0, "connecting to every master is no interruption");

    assert_eq!(cluster.kill_master_of("sb:room:{r}").await, victim);
    let killed_at = tokio::time::Instant::now();
    let told = async {
        tokio::select! {
            changed = interruptions.changed() => changed.map(|()| "an interruption").unwrap(),
            gap = gaps.recv() => {
                assert_eq!(&gap.unwrap()[..], ["r".to_string()], "only the dead master's room");
                "a gap in room r"
            }
        }
    };
    let told = tokio::time::timeout(Duration::from_secs(20), told).await.expect("the loss is reported within 20 s");
    eprintln!("{told} reported {:?} after the master died", killed_at.elapsed());
    cluster.wait_until_healthy(Duration::from_secs(20)).await;
    assert_ne!(cluster.master_of("sb:room:{r}").await, victim, "a replica serves the slot now");
    for room in ["r", survivor.as_str()] {
        probe_until_delivered(&bus, &mut incoming, room).await;
    }
    eprintln!("both rooms delivered again {:?} after the master died", killed_at.elapsed());
    bus.check().await.expect("healthy again");
}

/// A room's slot moves to another master (a resharding): the old master drops the
/// channel's subscribers. The node finds the move in the slot map, subscribes on the
/// new master and names the room as a gap; its other rooms are not interrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_follows_a_slot_moved_to_another_master() {
    let cluster = RedisCluster::start(3, 0).await;
    let config = RedisConfig {
        url: Some(cluster.url()),
        cluster_check_interval: Duration::from_millis(100),
        ..RedisConfig::default()
    };
    let (bus, mut incoming) = RedisBus::connect(&config, 1024).await.unwrap();
    let (other_node, _) = RedisBus::connect(&config, 1024).await.unwrap();
    let (interruptions, mut gaps) = (bus.interruptions(), bus.room_gaps());
    let staying = cluster.name_elsewhere("sb:room:{moving}", room_channel).await;
    for room in ["moving", staying.as_str()] {
        bus.subscribe(Topic::Room(room)).await.unwrap();
        other_node.publish(Topic::Room(room), Bytes::from(room.to_string())).await.unwrap();
        assert_eq!(next(&mut incoming).await, room);
    }

    let (from, to) = cluster.move_slot_of("sb:room:{moving}").await;
    let gap = tokio::time::timeout(WAIT, gaps.recv()).await.expect("the move is reported within 5 s").unwrap();
    assert_eq!(&gap[..], ["moving".to_string()], "only the moved room");
    assert_eq!(redis_cli(to, &["PUBSUB", "SHARDNUMSUB", "sb:room:{moving}"]).lines().nth(1), Some("1"));
    assert_eq!(redis_cli(from, &["PUBSUB", "SHARDNUMSUB", "sb:room:{moving}"]).lines().nth(1), Some("0"));
    // Subscribed again before the gap was reported: no probing needed.
    // The other node's publisher still routes "moving" to its old master: Redis answers
    // MOVED, which fred does not follow with the one attempt the bus allows; the bus
    // publishes once more on the new master.
    for room in ["moving", staying.as_str()] {
        let envelope = Bytes::from(format!("{room} after the move"));
        other_node.publish(Topic::Room(room), envelope.clone()).await.expect("published on the new master");
        assert_eq!(next(&mut incoming).await, envelope);
    }
    assert_eq!(*interruptions.borrow(), 0, "the node's other rooms were not interrupted");
}

/// A master restarts in place (same address, same slots, no replica promoted): the
/// subscriptions the node held on it are gone, although no slot moved. However the node
/// reconnects to it (by itself, or while the slot check reads the map), that is an
/// interruption, and the channels come back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_master_restarted_in_place_is_an_interruption() {
    let mut cluster = RedisCluster::start(3, 0).await;
    let config = RedisConfig {
        url: Some(cluster.url()),
        cluster_check_interval: Duration::from_millis(100),
        ..RedisConfig::default()
    };
    let (bus, mut incoming) = RedisBus::connect(&config, 1024).await.unwrap();
    let mut interruptions = bus.interruptions();
    bus.subscribe(Topic::Room("r")).await.unwrap();
    bus.publish(Topic::Room("r"), Bytes::from_static(b"before")).await.unwrap();
    assert_eq!(next(&mut incoming).await, "before");

    cluster.restart_master_of("sb:room:{r}").await;
    tokio::time::timeout(Duration::from_secs(20), interruptions.changed())
        .await
        .expect("the reconnection is reported within 20 s")
        .unwrap();
    probe_until_delivered(&bus, &mut incoming, "r").await;
}

/// Publishes probes on `room` until one arrives, which proves the subscription is back.
/// Bounded.
async fn probe_until_delivered(bus: &RedisBus, incoming: &mut Incoming, room: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        assert!(tokio::time::Instant::now() < deadline, "no publish arrived within 15 s");
        if bus.publish(Topic::Room(room), Bytes::from_static(b"probe")).await.is_err() {
            continue; // still reconnecting; the failed publish took the command timeout
        }
        if let Ok(Some(arrived)) = tokio::time::timeout(Duration::from_millis(200), incoming.recv()).await
            && arrived == "probe"
        {
            return;
        }
    }
}

/// A room's channel with the default key prefix.
fn room_channel(room: &str) -> String {
    format!("sb:room:{{{room}}}")
}

fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = std::process::Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The trap from ../shared/dependencies.md: after Redis restarts, subscriptions must
/// come back by themselves.
#[tokio::test]
async fn redis_resubscribes_after_a_restart() {
    let mut server = RedisServer::start().await;
    let (bus, mut incoming) = RedisBus::connect(&redis_config(&server), 1024).await.unwrap();
    let mut interruptions = bus.interruptions();
    bus.subscribe(Topic::Room("r")).await.unwrap();
    bus.publish(Topic::Room("r"), Bytes::from_static(b"before")).await.unwrap();
    assert_eq!(next(&mut incoming).await, "before");
    assert_eq!(*interruptions.borrow_and_update(), 0, "connecting the first time is no interruption");

    server.restart().await;
    // The node is told it may have missed messages.
    tokio::time::timeout(Duration::from_secs(15), interruptions.changed())
        .await
        .expect("the reconnection is reported within 15 s")
        .unwrap();
    probe_until_delivered(&bus, &mut incoming, "r").await;
    bus.check().await.expect("healthy again");
}

#[tokio::test]
async fn redis_reports_unavailable_promptly_while_down() {
    let mut server = RedisServer::start().await;
    let config = RedisConfig { command_timeout: Duration::from_millis(300), ..redis_config(&server) };
    let (bus, _incoming) = RedisBus::connect(&config, 16).await.unwrap();
    server.kill().await;
    let outcome =
        tokio::time::timeout(Duration::from_secs(3), bus.publish(Topic::Room("r"), Bytes::from_static(b"lost"))).await;
    assert!(matches!(outcome, Ok(Err(bus::BusError::Unavailable(_)))), "{outcome:?}");
    assert!(tokio::time::timeout(Duration::from_secs(3), bus.check()).await.expect("check returns").is_err());
}

/// A node whose queue overflows is told so: it has missed envelopes.
#[tokio::test]
async fn memory_reports_an_overflowing_queue() {
    let hub = MemoryHub::new();
    let (bus, _incoming) = hub.node(1);
    let mut interruptions = bus.interruptions();
    bus.subscribe(Topic::Room("r")).await.unwrap();
    bus.publish(Topic::Room("r"), Bytes::from_static(b"queued")).await.unwrap();
    assert!(!interruptions.has_changed().unwrap());
    bus.publish(Topic::Room("r"), Bytes::from_static(b"dropped")).await.unwrap();
    assert_eq!(*interruptions.borrow_and_update(), 1);
}

/// `redis.password` authenticates on its own, whatever the URL: a password that would
/// need escaping in a URL works as it is, and without it the server refuses.
#[tokio::test]
async fn redis_password_comes_from_its_own_setting() {
    let server = RedisServer::start().await;
    let password = "p@ss/w:rd?#";
    let status = std::process::Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "CONFIG", "SET", "requirepass", password])
        .output()
        .expect("redis-cli runs");
    assert_eq!(String::from_utf8_lossy(&status.stdout).trim(), "OK");

    let without = RedisConfig { connect_timeout: Duration::from_millis(500), ..redis_config(&server) };
    assert!(without.connect_client().await.is_err(), "a server with requirepass refuses a client without it");

    let with = RedisConfig { password: Some(password.into()), ..redis_config(&server) };
    let (a, mut a_in) = RedisBus::connect(&with, 16).await.expect("the password is accepted");
    a.subscribe(Topic::Room("r")).await.unwrap();
    a.publish(Topic::Room("r"), Bytes::from_static(b"authenticated")).await.unwrap();
    assert_eq!(next(&mut a_in).await, "authenticated");
}
