//! Routing invariants under generated histories (proptest), on a real cluster: Redis, a
//! room service and two gateways. Four users on alternating gateways join and leave two
//! rooms, reconnect (a new session), and signal each other. Whatever the history:
//!
//! - a signal is accepted exactly when sender and target share the room, and refused
//!   (`forbidden` or `not_found`) otherwise;
//! - a peer receives only signals addressed to it, from a room it is in, each once;
//!   every accepted signal whose target stays in the room arrives;
//! - the membership each member sees (its `joined` list, then `peer_joined` and
//!   `peer_left` as they come through its gateway) converges to the room service's.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cluster_proto::room::ListMembersRequest;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use protocol::client::{Client, ClientError};
use protocol::{ErrorCode, Request, ServerMessage};
use serde_json::json;

use crate::TestCluster;

const USERS: usize = 4;
const ROOMS: [&str; 2] = ["a", "b"];

#[derive(Debug, Clone)]
enum Op {
    Join(usize, usize),
    Leave(usize, usize),
    /// Close the connection (ending the session) and connect again: a new peer id.
    Reconnect(usize),
    Signal {
        from: usize,
        to: usize,
        room: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let user = 0..USERS;
    let room = 0..ROOMS.len();
    prop_oneof![
        3 => (user.clone(), room.clone()).prop_map(|(u, r)| Op::Join(u, r)),
        1 => (user.clone(), room.clone()).prop_map(|(u, r)| Op::Leave(u, r)),
        1 => user.clone().prop_map(Op::Reconnect),
        5 => (user.clone(), user, room)
            .prop_filter("not to oneself", |(from, to, _)| from != to)
            .prop_map(|(from, to, room)| Op::Signal { from, to, room }),
    ]
}

#[test]
fn routing_holds_for_any_history() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let cluster = runtime.block_on(TestCluster::redis(2));
    let case = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config { cases: 24, max_shrink_iters: 50, ..Config::default() });
    let outcome = runner.run(&proptest::collection::vec(op(), 5..30), |history| {
        let prefix = format!("h{}", case.fetch_add(1, Ordering::Relaxed));
        let bounded = async { tokio::time::timeout(Duration::from_secs(60), check(&cluster, &prefix, &history)).await };
        runtime.block_on(bounded).map_err(|_| TestCaseError::fail("the history took over 60 s"))?
    });
    runtime.block_on(cluster.shutdown());
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

/// One user: its connection, the rooms it is in, and what it has seen of each.
struct User {
    client: Client,
    rooms: BTreeSet<String>,
    /// Per room it is in: the peer ids it believes are there besides itself.
    seen: BTreeMap<String, BTreeSet<String>>,
    /// Signals received: (room, from, tag).
    received: Vec<(String, String, u64)>,
}

impl User {
    /// Applies every message already read or arriving within `wait`.
    async fn absorb(&mut self, wait: Duration) -> Result<(), TestCaseError> {
        for message in self.client.take_backlog() {
            self.apply(message)?;
        }
        while let Ok(next) = tokio::time::timeout(wait, self.client.next_message()).await {
            let message = next.map_err(|e| TestCaseError::fail(format!("{}: {e}", self.client.peer_id())))?;
            self.apply(message)?;
        }
        Ok(())
    }

    fn apply(&mut self, message: ServerMessage) -> Result<(), TestCaseError> {
        match message {
            ServerMessage::PeerJoined { room, peer } => {
                prop_assert!(self.rooms.contains(&room), "peer_joined of a room it is not in: {room}");
                self.seen.entry(room).or_default().insert(peer.peer_id);
            }
            ServerMessage::PeerLeft { room, peer_id, .. } => {
                if let Some(seen) = self.seen.get_mut(&room) {
                    seen.remove(&peer_id);
                }
            }
            ServerMessage::Signal { room, from, data, .. } => {
                prop_assert!(self.rooms.contains(&room), "a signal from a room it is not in: {room}");
                let tag = data.to_value()["tag"].as_u64().unwrap_or(u64::MAX);
                self.received.push((room, from, tag));
            }
            other => prop_assert!(false, "unexpected {other:?}"),
        }
        Ok(())
    }
}

async fn connect(cluster: &TestCluster, prefix: &str, index: usize) -> User {
    let rooms: Vec<String> = ROOMS.iter().map(|room| format!("{prefix}-{room}")).collect();
    let rooms: Vec<&str> = rooms.iter().map(String::as_str).collect();
    let client = cluster.connect(index % 2, &format!("{prefix}-u{index}"), &rooms).await;
    User { client, rooms: BTreeSet::new(), seen: BTreeMap::new(), received: Vec::new() }
}

async fn check(cluster: &TestCluster, prefix: &str, history: &[Op]) -> Result<(), TestCaseError> {
    let mut users = Vec::new();
    for index in 0..USERS {
        users.push(connect(cluster, prefix, index).await);
    }
    // Accepted signals: tag → (target's peer id, room, sender's peer id).
    let mut accepted: BTreeMap<u64, (String, String, String)> = BTreeMap::new();
    // Tags whose target or sender left the room (or reconnected) afterwards: they may
    // or may not arrive, but never twice nor elsewhere.
    let mut may_be_lost: BTreeSet<u64> = BTreeSet::new();
    for (tag, op) in history.iter().enumerate() {
        let tag = tag as u64;
        match *op {
            Op::Join(user, room) => {
                let room = format!("{prefix}-{}", ROOMS[room]);
                let member = users[user].rooms.contains(&room);
                let joined = users[user].client.join(&room, None).await;
                match joined {
                    Ok(peers) => {
                        prop_assert!(!member, "joined {room} twice");
                        let present = peers.into_iter().map(|peer| peer.peer_id).collect();
                        users[user].rooms.insert(room.clone());
                        users[user].seen.insert(room, present);
                    }
                    Err(error) => prop_assert!(member, "join of {room} refused: {error}"),
                }
            }
            Op::Leave(user, room) => {
                let room = format!("{prefix}-{}", ROOMS[room]);
                let member = users[user].rooms.contains(&room);
                let left = users[user].client.leave(&room).await;
                prop_assert_eq!(left.is_ok(), member, "leave {}: {:?}", room, left.err());
                // What arrived before the `left` reply was sent while it was a member.
                users[user].absorb(Duration::ZERO).await?;
                if member {
                    forget(&mut users[user], &room, &accepted, &mut may_be_lost);
                }
            }
            Op::Reconnect(user) => {
                users[user].absorb(Duration::ZERO).await?;
                for room in users[user].rooms.clone() {
                    forget(&mut users[user], &room, &accepted, &mut may_be_lost);
                }
                let old = std::mem::replace(&mut users[user], connect(cluster, prefix, user).await);
                old.client.close().await.map_err(|e| TestCaseError::fail(e.to_string()))?;
            }
            Op::Signal { from, to, room } => {
                let room = format!("{prefix}-{}", ROOMS[room]);
                let target = users[to].client.peer_id().to_string();
                let shared = users[from].rooms.contains(&room) && users[to].rooms.contains(&room);
                let request = Request::signal(&room, &target, "app:test", &json!({ "tag": tag }));
                match users[from].client.request(request).await {
                    Ok(_) => {
                        prop_assert!(shared, "a signal in {room} accepted although not shared");
                        let sender = users[from].client.peer_id().to_string();
                        accepted.insert(tag, (target, room, sender));
                    }
                    Err(ClientError::Server { code: ErrorCode::Forbidden | ErrorCode::NotFound, .. }) => {
                        prop_assert!(!shared, "a signal in {room} refused although shared");
                    }
                    Err(error) => prop_assert!(false, "signal: {error}"),
                }
            }
        }
    }

    // Everything settles: each user receives what it must, and sees its rooms as the
    // room service has them.
    let mut rooms_api = cluster.room_service_client().await;
    for user in &mut users {
        let me = user.client.peer_id().to_string();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            user.absorb(Duration::from_millis(20)).await?;
            let due: BTreeSet<u64> = accepted
                .iter()
                .filter(|(tag, (target, _, _))| *target == me && !may_be_lost.contains(tag))
                .map(|(tag, _)| *tag)
                .collect();
            let got: BTreeSet<u64> = user.received.iter().map(|(_, _, tag)| *tag).collect();
            let mut views_match = true;
            for room in &user.rooms {
                let members = rooms_api.list_members(ListMembersRequest { room: room.clone() }).await;
                let members = members.map_err(|e| TestCaseError::fail(e.to_string()))?.into_inner().members;
                let others: BTreeSet<String> =
                    members.into_iter().map(|m| m.peer_id).filter(|peer| *peer != me).collect();
                views_match &= user.seen.get(room) == Some(&others);
            }
            if due.is_subset(&got) && views_match {
                break;
            }
            prop_assert!(
                tokio::time::Instant::now() < deadline,
                "{me} did not settle: due {due:?}, got {got:?}, views {:?}",
                user.seen
            );
        }
        // Only its own signals, each once, from the room and sender they were sent in.
        let mut tags = BTreeSet::new();
        for (room, from, tag) in &user.received {
            prop_assert!(tags.insert(*tag), "signal {tag} received twice");
            let Some((target, sent_room, sender)) = accepted.get(tag) else {
                return Err(TestCaseError::fail(format!("{me} received signal {tag}, which was never accepted")));
            };
            prop_assert_eq!((target, sent_room, sender), (&me, room, from), "signal {} went astray", tag);
        }
    }
    for user in users {
        user.client.close().await.map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    Ok(())
}

/// `user` is no longer in `room`: signals to it there that have not arrived yet may be
/// dropped (a gateway delivers only to members), and its view of the room ends.
fn forget(
    user: &mut User,
    room: &str,
    accepted: &BTreeMap<u64, (String, String, String)>,
    may_be_lost: &mut BTreeSet<u64>,
) {
    let me = user.client.peer_id();
    for (tag, (target, sent_room, _)) in accepted {
        if sent_room == room && target == me {
            may_be_lost.insert(*tag);
        }
    }
    user.rooms.remove(room);
    user.seen.remove(room);
}
