//! One suite for every room store: the in-memory store, and the Redis store on a real
//! redis-server or a real Redis Cluster (three masters) started for each test. Every
//! scenario runs against each.

#[macro_use]
mod support;

use std::sync::Arc;
use std::time::Duration;

use bus::envelope::{self, Body};
use bus::{Bus, Incoming, MemoryHub, RedisBus};
use cluster_proto::room::{LeaveReason, Member};
use room_service::store::RoomStore;
use room_service::store::memory::MemoryRoomStore;
use room_service::store::redis::RedisRoomStore;
use room_service::{RoomError, Rooms, RoomsConfig};
use support::TestRedis;

struct Fixture {
    rooms: Arc<Rooms>,
    /// A node listening to the rooms' channels.
    listener: Box<dyn Bus>,
    incoming: Incoming,
    _redis: Option<TestRedis>,
}

fn config() -> RoomsConfig {
    RoomsConfig { default_capacity: 3, ..RoomsConfig::default() }
}

impl Fixture {
    async fn memory() -> Self {
        let hub = MemoryHub::new();
        let (listener, incoming) = hub.node(4096);
        let store = MemoryRoomStore::new(hub);
        Self::assemble(Arc::new(store), Box::new(listener), incoming, None)
    }

    async fn on_redis(redis: TestRedis) -> Self {
        let store = RedisRoomStore::connect(&redis.config()).await.unwrap();
        let (listener, incoming) = RedisBus::connect(&redis.config(), 4096).await.unwrap();
        Self::assemble(Arc::new(store), Box::new(listener), incoming, Some(redis))
    }

    fn assemble(
        store: Arc<dyn RoomStore>,
        listener: Box<dyn Bus>,
        incoming: Incoming,
        redis: Option<TestRedis>,
    ) -> Self {
        Self { rooms: Arc::new(Rooms::new(store, "rs-test", config())), listener, incoming, _redis: redis }
    }

    async fn next_event(&mut self) -> Body {
        let bytes = tokio::time::timeout(Duration::from_secs(5), self.incoming.recv())
            .await
            .expect("an event within 5 s")
            .expect("bus open");
        envelope::decode(&bytes).unwrap().body.unwrap()
    }
}

fn member(peer_id: &str) -> Member {
    Member {
        peer_id: peer_id.into(),
        identity: format!("id-{peer_id}"),
        name: format!("Name {peer_id}"),
        metadata_json: r#"{"role":"guest"}"#.into(),
        node_id: "gw-1".into(),
        joined_at_ms: 0,
    }
}

fn peer_ids(members: &[Member]) -> Vec<&str> {
    let mut ids: Vec<&str> = members.iter().map(|m| m.peer_id.as_str()).collect();
    ids.sort();
    ids
}

for_every_store!(
    join_and_leave_publish_presence_in_order,
    joins_never_overfill_a_room,
    join_and_leave_are_idempotent,
    rooms_are_listed_page_by_page,
    remove_peer_and_send_data,
    bad_arguments_are_refused,
    members_move_between_owners_and_conditional_leaves_respect_them,
);

async fn join_and_leave_publish_presence_in_order(mut f: Fixture) {
    f.listener.subscribe(bus::Topic::Room("r")).await.unwrap();
    let first = f.rooms.join("r", member("a")).await.unwrap();
    assert_eq!(peer_ids(&first.members), ["a"]);
    assert_eq!((first.room.name.as_str(), first.room.capacity, first.room.member_count), ("r", 3, 1));
    assert!(first.members[0].joined_at_ms > 0, "the service stamps joined_at_ms");
    let second = f.rooms.join("r", member("b")).await.unwrap();
    assert_eq!(peer_ids(&second.members), ["a", "b"]);

    let Body::PeerJoined(joined) = f.next_event().await else { panic!("expected peer_joined") };
    assert_eq!((joined.peer_id.as_str(), joined.identity.as_str(), joined.name.as_str()), ("a", "id-a", "Name a"));
    assert_eq!((joined.metadata_json.as_str(), joined.node_id.as_str()), (r#"{"role":"guest"}"#, "gw-1"));
    assert!(matches!(f.next_event().await, Body::PeerJoined(j) if j.peer_id == "b"));

    assert!(f.rooms.leave("r", "a", LeaveReason::Disconnected).await.unwrap());
    let Body::PeerLeft(left) = f.next_event().await else { panic!("expected peer_left") };
    assert_eq!((left.peer_id.as_str(), left.reason), ("a", LeaveReason::Disconnected as i32));
    assert_eq!(peer_ids(&f.rooms.members("r").await.unwrap()), ["b"]);
    assert_eq!(f.rooms.room("r").await.unwrap().member_count, 1);

    assert!(f.rooms.leave("r", "b", LeaveReason::Left).await.unwrap());
    assert!(matches!(f.next_event().await, Body::PeerLeft(l) if l.peer_id == "b"));
    assert!(matches!(f.rooms.room("r").await, Err(RoomError::NotFound(_))), "an emptied room is deleted");
    assert!(matches!(f.rooms.members("r").await, Err(RoomError::NotFound(_))));
}

/// 20 rooms of capacity 3, 8 concurrent joiners each: exactly 3 get in everywhere, and
/// exactly 3 peer_joined events are published per room.
async fn joins_never_overfill_a_room(mut f: Fixture) {
    for room in 0..20 {
        f.listener.subscribe(bus::Topic::Room(&format!("race-{room}"))).await.unwrap();
    }
    let mut tasks = Vec::new();
    for room in 0..20 {
        for peer in 0..8 {
            let rooms = f.rooms.clone();
            tasks.push(tokio::spawn(
                async move { rooms.join(&format!("race-{room}"), member(&format!("p{peer}"))).await },
            ));
        }
    }
    let (mut admitted, mut full) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => admitted += 1,
            Err(RoomError::RoomFull(message)) => {
                assert!(message.contains("is full (3 members)"), "{message}");
                full += 1;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((admitted, full), (60, 100));
    for room in 0..20 {
        assert_eq!(f.rooms.members(&format!("race-{room}")).await.unwrap().len(), 3);
    }
    let mut joined_events = 0;
    while joined_events < 60 {
        assert!(matches!(f.next_event().await, Body::PeerJoined(_)));
        joined_events += 1;
    }
    // A sentinel proves no further event was queued before it.
    f.rooms.send_data("race-0", "\"sentinel\"").await.unwrap();
    assert!(matches!(f.next_event().await, Body::Broadcast(b) if b.data_json == "\"sentinel\""));
}

async fn join_and_leave_are_idempotent(mut f: Fixture) {
    f.listener.subscribe(bus::Topic::Room("r")).await.unwrap();
    f.rooms.join("r", member("a")).await.unwrap();
    let again = f.rooms.join("r", member("a")).await.unwrap();
    assert_eq!(peer_ids(&again.members), ["a"]);
    assert!(!f.rooms.leave("r", "nobody", LeaveReason::Left).await.unwrap());
    assert!(!f.rooms.leave("elsewhere", "a", LeaveReason::Left).await.unwrap());
    f.rooms.send_data("r", "1").await.unwrap();
    // Only the first join produced an event; the repeats published nothing before "1".
    assert!(matches!(f.next_event().await, Body::PeerJoined(_)));
    assert!(matches!(f.next_event().await, Body::Broadcast(b) if b.data_json == "1"));
}

async fn rooms_are_listed_page_by_page(f: Fixture) {
    for room in 0..25 {
        f.rooms.join(&format!("list-{room:02}"), member("a")).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100 {
        let page = f.rooms.list_rooms(10, token.as_deref()).await.unwrap();
        seen.extend(page.rooms.iter().map(|room| {
            assert_eq!((room.member_count, room.capacity), (1, 3));
            room.name.clone()
        }));
        token = page.next_page_token;
        if token.is_none() {
            break;
        }
    }
    seen.sort();
    let expected: Vec<String> = (0..25).map(|room| format!("list-{room:02}")).collect();
    assert_eq!(seen, expected);
}

async fn remove_peer_and_send_data(mut f: Fixture) {
    f.listener.subscribe(bus::Topic::Room("r")).await.unwrap();
    f.rooms.join("r", member("a")).await.unwrap();
    f.rooms.join("r", member("b")).await.unwrap();
    f.rooms.remove_peer("r", "a").await.unwrap();
    assert!(matches!(f.rooms.remove_peer("r", "a").await, Err(RoomError::NotFound(_))));
    f.rooms.send_data("r", r#"{"notice":"hello"}"#).await.unwrap();
    assert!(matches!(f.rooms.send_data("nowhere", "1").await, Err(RoomError::NotFound(_))));

    assert!(matches!(f.next_event().await, Body::PeerJoined(_)));
    assert!(matches!(f.next_event().await, Body::PeerJoined(_)));
    let Body::PeerLeft(left) = f.next_event().await else { panic!("expected peer_left") };
    assert_eq!((left.peer_id.as_str(), left.reason), ("a", LeaveReason::Removed as i32));
    let Body::Broadcast(data) = f.next_event().await else { panic!("expected broadcast") };
    assert_eq!((data.from_peer.as_str(), data.data_json.as_str()), ("", r#"{"notice":"hello"}"#));
}

async fn bad_arguments_are_refused(f: Fixture) {
    let invalid = |result: Result<_, RoomError>| matches!(result, Err(RoomError::InvalidArgument(_)));
    assert!(invalid(f.rooms.join("bad{room}", member("a")).await.map(drop)));
    assert!(invalid(f.rooms.join("r", member("bad id!")).await.map(drop)));
    assert!(invalid(f.rooms.join("r", Member { identity: String::new(), ..member("a") }).await.map(drop)));
    assert!(invalid(f.rooms.join("r", Member { metadata_json: "{oops".into(), ..member("a") }).await.map(drop)));
    let huge = format!("\"{}\"", "x".repeat(2000));
    assert!(invalid(f.rooms.join("r", Member { metadata_json: huge, ..member("a") }).await.map(drop)));
    assert!(invalid(f.rooms.send_data("r", "not json").await));
    assert!(invalid(f.rooms.leave("", "a", LeaveReason::Left).await.map(drop)));
    assert!(matches!(f.rooms.room("r").await, Err(RoomError::NotFound(_))), "nothing was created");
}

/// A member's owner is its gateway node: `move_member` hands it over and publishes the
/// marker (once, however often it is retried); a leave conditional on the old owner no
/// longer removes it.
async fn members_move_between_owners_and_conditional_leaves_respect_them(mut f: Fixture) {
    f.listener.subscribe(bus::Topic::Room("r")).await.unwrap();
    f.rooms.join("r", member("a")).await.unwrap();
    assert_eq!(f.rooms.members("r").await.unwrap()[0].node_id, "gw-1");
    assert!(!f.rooms.move_member("r", "a", "gw-9", "gw-2").await.unwrap(), "gw-9 does not hold it");
    assert!(f.rooms.move_member("r", "a", "gw-1", "gw-2").await.unwrap());
    assert!(!f.rooms.move_member("r", "a", "gw-1", "gw-3").await.unwrap(), "already moved");
    assert!(f.rooms.move_member("r", "a", "gw-1", "gw-2").await.unwrap(), "a retry succeeds, publishing nothing");
    assert_eq!(f.rooms.members("r").await.unwrap()[0].node_id, "gw-2", "listings show the owner");

    assert!(!f.rooms.leave_if_owner("r", "a", Some("gw-1"), LeaveReason::Disconnected).await.unwrap());
    assert_eq!(f.rooms.members("r").await.unwrap().len(), 1, "the old owner's clean-up removed nothing");
    assert!(f.rooms.leave_if_owner("r", "a", Some("gw-2"), LeaveReason::Disconnected).await.unwrap());

    assert!(matches!(f.next_event().await, Body::PeerJoined(_)));
    let Body::SessionMoved(moved) = f.next_event().await else { panic!("expected session_moved") };
    assert_eq!((moved.peer_id.as_str(), moved.from_node.as_str(), moved.to_node.as_str()), ("a", "gw-1", "gw-2"));
    assert!(matches!(f.next_event().await, Body::PeerLeft(left) if left.peer_id == "a"), "one leave, the owner's");
}
