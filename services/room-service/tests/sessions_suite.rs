//! Sessions, leases and the janitor, against every session store: memory, and Redis on
//! a real redis-server or a real Redis Cluster started for each test.

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bus::envelope::{self, Body};
use bus::{Bus, Incoming, MemoryHub, RedisBus, Topic};
use cluster_proto::room::{LeaveReason, Member};
use room_service::sessions::memory::MemorySessionStore;
use room_service::sessions::redis::RedisSessionStore;
use room_service::sessions::{SessionRecord, SessionStore};
use room_service::store::memory::MemoryRoomStore;
use room_service::store::redis::RedisRoomStore;
use room_service::{Janitor, Rooms, RoomsConfig};
use support::TestRedis;

struct Fixture {
    rooms: Arc<Rooms>,
    sessions: Arc<dyn SessionStore>,
    listener: Box<dyn Bus>,
    incoming: Incoming,
    _redis: Option<TestRedis>,
}

impl Fixture {
    async fn memory() -> Self {
        let hub = MemoryHub::new();
        let (listener, incoming) = hub.node(4096);
        let rooms = Rooms::new(Arc::new(MemoryRoomStore::new(hub)), "rs-test", RoomsConfig::default());
        Self {
            rooms: Arc::new(rooms),
            sessions: Arc::new(MemorySessionStore::new()),
            listener: Box::new(listener),
            incoming,
            _redis: None,
        }
    }

    async fn on_redis(redis: TestRedis) -> Self {
        let config = redis.config();
        let rooms =
            Rooms::new(Arc::new(RedisRoomStore::connect(&config).await.unwrap()), "rs-test", RoomsConfig::default());
        let sessions = Arc::new(RedisSessionStore::connect(&config).await.unwrap());
        let (listener, incoming) = RedisBus::connect(&config, 4096).await.unwrap();
        Self { rooms: Arc::new(rooms), sessions, listener: Box::new(listener), incoming, _redis: Some(redis) }
    }

    async fn next_event(&mut self) -> Body {
        let bytes =
            tokio::time::timeout(Duration::from_secs(5), self.incoming.recv()).await.expect("an event").unwrap();
        envelope::decode(&bytes).unwrap().body.unwrap()
    }

    /// A session of `node` that joined `rooms`, as a gateway records it.
    async fn session(&self, peer: &str, node: &str, rooms: &[&str]) {
        let record = SessionRecord {
            peer_id: peer.into(),
            node: node.into(),
            secret_hash: "h0".into(),
            identity: format!("id-{peer}"),
            name: String::new(),
            grants: vec!["*".into()],
            detached_until_ms: 0,
        };
        self.sessions.create(&record).await.unwrap();
        for room in rooms {
            assert!(self.sessions.add_room(peer, node, room).await.unwrap());
            let member = Member {
                peer_id: peer.into(),
                identity: format!("id-{peer}"),
                node_id: node.into(),
                ..Default::default()
            };
            self.rooms.join(room, member).await.unwrap();
        }
    }
}

for_every_store!(
    sessions_change_only_through_their_holder,
    leases_expire_unless_refreshed,
    the_janitor_removes_exactly_the_dead_nodes_members,
    a_node_back_with_a_new_lease_is_left_alone
);

async fn sessions_change_only_through_their_holder(f: Fixture) {
    f.session("p", "gw-a", &["r1", "r2"]).await;
    let (record, mut rooms) = f.sessions.load("p").await.unwrap().unwrap();
    rooms.sort();
    assert_eq!(
        (record.node.as_str(), record.identity.as_str(), record.grants.as_slice()),
        ("gw-a", "id-p", &["*".to_string()][..])
    );
    assert_eq!(rooms, ["r1", "r2"]);

    assert!(!f.sessions.detach("p", "gw-b", 99).await.unwrap(), "gw-b does not hold it");
    assert!(f.sessions.detach("p", "gw-a", 99).await.unwrap());
    assert_eq!(f.sessions.load("p").await.unwrap().unwrap().0.detached_until_ms, 99);
    assert!(!f.sessions.take_over("p", "gw-b", "gw-c", "h1").await.unwrap());
    assert!(f.sessions.take_over("p", "gw-a", "gw-b", "h1").await.unwrap());
    let (moved, _) = f.sessions.load("p").await.unwrap().unwrap();
    assert_eq!((moved.node.as_str(), moved.secret_hash.as_str(), moved.detached_until_ms), ("gw-b", "h1", 0));
    assert_eq!(f.sessions.node_peers("gw-b").await.unwrap(), ["p"]);
    assert!(f.sessions.node_peers("gw-a").await.unwrap().is_empty());
    assert!(!f.sessions.delete("p", "gw-a").await.unwrap(), "the old holder cannot delete it");
    f.sessions.remove_room("p", "r2").await.unwrap();
    assert_eq!(f.sessions.load("p").await.unwrap().unwrap().1, ["r1"]);
    assert!(!f.sessions.add_room("p", "gw-a", "r3").await.unwrap(), "only the holder adds rooms");
    assert!(!f.sessions.add_room("ghost", "gw-b", "r3").await.unwrap(), "no rooms for a session that is gone");
    assert!(f.sessions.attach("p", "gw-b", "h2").await.unwrap());
    assert!(f.sessions.delete("p", "gw-b").await.unwrap());
    assert!(f.sessions.load("p").await.unwrap().is_none());
}

async fn leases_expire_unless_refreshed(f: Fixture) {
    f.sessions.register_node("gw-a", Duration::from_secs(60)).await.unwrap();
    f.sessions.register_node("gw-short", Duration::from_millis(100)).await.unwrap();
    assert!(f.sessions.node_alive("gw-a").await.unwrap());
    assert!(f.sessions.refresh_lease("gw-a", Duration::from_secs(60)).await.unwrap());
    let dead = testkit::eventually("gw-short's lease expires", Duration::from_secs(5), || async {
        let dead = f.sessions.dead_nodes().await.unwrap();
        (!dead.is_empty()).then_some(dead)
    })
    .await;
    assert_eq!(dead, ["gw-short"]);
    assert!(!f.sessions.refresh_lease("gw-short", Duration::from_secs(60)).await.unwrap(), "an expired lease is lost");
    f.sessions.forget_node("gw-short").await.unwrap();
    assert!(f.sessions.dead_nodes().await.unwrap().is_empty());
}

/// Two gateways share a room; one dies. Its members leave (once, even with two janitors
/// sweeping), a session it held that moved to the live gateway stays, and so does the
/// live gateway's own member.
async fn the_janitor_removes_exactly_the_dead_nodes_members(mut f: Fixture) {
    f.listener.subscribe(Topic::Room("r")).await.unwrap();
    f.sessions.register_node("gw-dead", Duration::from_millis(200)).await.unwrap();
    f.sessions.register_node("gw-live", Duration::from_secs(60)).await.unwrap();
    f.session("gone", "gw-dead", &["r"]).await;
    f.session("resumed", "gw-dead", &["r"]).await;
    f.session("stays", "gw-live", &["r"]).await;
    // "resumed" moved to the live gateway before the lease ran out.
    assert!(f.rooms.move_member("r", "resumed", "gw-dead", "gw-live").await.unwrap());
    assert!(f.sessions.take_over("resumed", "gw-dead", "gw-live", "h").await.unwrap());

    testkit::eventually("gw-dead's lease expires", Duration::from_secs(5), || async {
        (!f.sessions.dead_nodes().await.unwrap().is_empty()).then_some(())
    })
    .await;
    let (one, two) =
        (Janitor::new(f.rooms.clone(), f.sessions.clone()), Janitor::new(f.rooms.clone(), f.sessions.clone()));
    let (a, b) = tokio::join!(one.sweep(), two.sweep());
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.members + b.members, 1, "exactly one removal between the two janitors: {a:?} {b:?}");

    let mut left: Vec<String> = f.rooms.members("r").await.unwrap().into_iter().map(|m| m.peer_id).collect();
    left.sort();
    assert_eq!(left, ["resumed", "stays"]);
    assert!(f.sessions.load("gone").await.unwrap().is_none(), "the dead node's session is forgotten");
    assert!(f.sessions.load("resumed").await.unwrap().is_some());
    assert!(f.sessions.dead_nodes().await.unwrap().is_empty());

    for _ in 0..3 {
        assert!(matches!(f.next_event().await, Body::PeerJoined(_)));
    }
    assert!(matches!(f.next_event().await, Body::SessionMoved(_)));
    let Body::PeerLeft(left) = f.next_event().await else { panic!("expected peer_left") };
    assert_eq!((left.peer_id.as_str(), left.reason), ("gone", LeaveReason::Disconnected as i32));
    // Nothing else: a fresh marker is next.
    f.rooms.send_data("r", "0").await.unwrap();
    assert!(matches!(f.next_event().await, Body::Broadcast(_)));
}

/// A gateway cut off for longer than its lease cleans up after itself, takes a new lease
/// and serves new sessions: the janitor must leave those alone.
async fn a_node_back_with_a_new_lease_is_left_alone(f: Fixture) {
    f.sessions.register_node("gw-back", Duration::from_millis(200)).await.unwrap();
    f.session("old", "gw-back", &["r"]).await;
    testkit::eventually("gw-back's lease expires", Duration::from_secs(5), || async {
        (!f.sessions.dead_nodes().await.unwrap().is_empty()).then_some(())
    })
    .await;

    // Back: what it held before is gone (its own clean-up), and it starts over.
    assert!(f.rooms.leave_if_owner("r", "old", Some("gw-back"), LeaveReason::Disconnected).await.unwrap());
    assert!(f.sessions.delete("old", "gw-back").await.unwrap());
    f.sessions.forget_node("gw-back").await.unwrap();
    f.sessions.register_node("gw-back", Duration::from_secs(60)).await.unwrap();
    f.session("new", "gw-back", &["r"]).await;

    let sweep = Janitor::new(f.rooms.clone(), f.sessions.clone()).sweep().await.unwrap();
    assert_eq!((sweep.nodes, sweep.members), (0, 0));
    assert!(!f.sessions.forget_expired_node("gw-back").await.unwrap(), "a live node's index is kept");
    assert_eq!(f.sessions.node_peers("gw-back").await.unwrap(), ["new"]);
    let members: Vec<String> = f.rooms.members("r").await.unwrap().into_iter().map(|m| m.peer_id).collect();
    assert_eq!(members, ["new"]);
}

/// Right after a slot moves to another master (a resharding), a client's first command
/// for it is answered MOVED, which fred does not follow with the one attempt allowed:
/// the stores run it once more on the new master instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_cluster_the_first_commands_after_a_slot_moved_succeed() {
    let f = Fixture::on_redis(TestRedis::cluster().await).await;
    f.session("p", "gw-a", &["r1"]).await;
    let Some(TestRedis::Cluster(cluster)) = &f._redis else { unreachable!("a cluster fixture") };
    cluster.move_slot_of("sb:peer:{p}").await;
    cluster.move_slot_of("sb:room:{r1}").await;

    let (record, rooms) = f.sessions.load("p").await.expect("a plain read").expect("the session moved with its slot");
    assert_eq!((record.node.as_str(), rooms.as_slice()), ("gw-a", &["r1".to_string()][..]));
    assert!(f.sessions.detach("p", "gw-a", 5).await.expect("a script"));
    let members = f.rooms.members("r1").await.expect("the room store's script");
    assert_eq!(members.iter().map(|member| member.peer_id.as_str()).collect::<Vec<_>>(), ["p"]);
}
