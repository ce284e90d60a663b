//! The registry's consistency rules, driven by hand-made envelopes in a fixed order.

use bus::envelope::{self, Body, PeerJoined, PeerLeft, Signal};
use cluster_proto::room::LeaveReason as RpcReason;
use protocol::{LeaveReason, ServerMessage};
use tokio::sync::mpsc;

use super::*;

const NODE: &str = "gw-test";

fn joined_event(peer: &str) -> Envelope {
    let body = Body::PeerJoined(PeerJoined { peer_id: peer.into(), identity: peer.into(), ..Default::default() });
    envelope::new("r", "rooms", body)
}

fn left_event(peer: &str, reason: RpcReason) -> Envelope {
    envelope::new("r", "rooms", Body::PeerLeft(PeerLeft { peer_id: peer.into(), reason: reason as i32 }))
}

fn signal_event(from: &str, to: &str, origin: &str) -> Envelope {
    let body = Body::Signal(Signal {
        from_peer: from.into(),
        to_peer: to.into(),
        kind: "offer".into(),
        data_json: "{}".into(),
    });
    envelope::new("r", origin, body)
}

fn peer(registry: &Registry, id: &str) -> mpsc::Receiver<Frame> {
    let (sender, queue) = PeerSender::new(64);
    registry.add_peer(id.into(), sender);
    queue
}

fn drain(queue: &mut mpsc::Receiver<Frame>) -> Vec<ServerMessage> {
    let mut out = Vec::new();
    while let Ok(frame) = queue.try_recv() {
        out.push(serde_json::from_str(frame.as_str()).unwrap());
    }
    out
}

fn joined_frame() -> Frame {
    render::message(&ServerMessage::Joined { id: None, room: "r".into(), peers: Vec::new() })
}

/// Joins `id` to room "r" as the room store would have it: `before` joined earlier (in
/// the member list), the echo arrives, and `after` joins before the call returns.
fn join(registry: &Registry, id: &str, before: &[&str], after: &[&str]) -> Completion {
    let mut echoed = registry.begin_join(id, "r", 4).unwrap();
    for earlier in before {
        registry.dispatch(NODE, joined_event(earlier)); // already in the member list: ignored
    }
    assert!(echoed.try_recv().is_err(), "no echo yet");
    registry.dispatch(NODE, joined_event(id));
    echoed.try_recv().expect("the echo fired");
    for later in after {
        registry.dispatch(NODE, joined_event(later));
    }
    let mut members: Vec<String> = before.iter().map(|p| p.to_string()).collect();
    members.push(id.to_string());
    registry.complete_join(id, "r", &members, joined_frame())
}

#[test]
fn a_join_sees_each_change_once_and_after_joined() {
    let registry = Registry::default();
    let mut alice = peer(&registry, "alice");
    assert_eq!(join(&registry, "alice", &["x"], &["y"]), Completion::Live);
    let messages = drain(&mut alice);
    assert!(matches!(&messages[0], ServerMessage::Joined { .. }), "{messages:?}");
    assert!(matches!(&messages[1], ServerMessage::PeerJoined { peer, .. } if peer.peer_id == "y"), "{messages:?}");
    assert_eq!(messages.len(), 2, "x was in the member list and is not announced again");

    // The view holds x (member list), alice and y (after the echo).
    for target in ["x", "y"] {
        assert_eq!(registry.route_signal("r", "alice", target, || unreachable!()), Ok(Route::Bus));
    }
    assert_eq!(registry.route_signal("r", "alice", "z", || unreachable!()).unwrap_err().code, ErrorCode::NotFound);
    assert_eq!(registry.route_signal("q", "alice", "x", || unreachable!()).unwrap_err().code, ErrorCode::Forbidden);
}

#[test]
fn local_targets_are_served_without_the_bus_and_own_echoes_are_skipped() {
    let registry = Registry::default();
    let _alice = peer(&registry, "alice");
    let mut bob = peer(&registry, "bob");
    join(&registry, "alice", &[], &[]);
    join(&registry, "bob", &["alice"], &[]);
    drain(&mut bob);
    let route = registry.route_signal("r", "alice", "bob", || render::signal("r", "alice", "offer", "{}"));
    assert_eq!(route, Ok(Route::Delivered));
    assert_eq!(drain(&mut bob).len(), 1);
    // The same signal published by this node and heard back is not delivered twice;
    // one from another node is delivered.
    registry.dispatch(NODE, signal_event("alice", "bob", NODE));
    assert!(drain(&mut bob).is_empty());
    registry.dispatch(NODE, signal_event("carol", "bob", "gw-other"));
    assert!(matches!(&drain(&mut bob)[..], [ServerMessage::Signal { from, .. }] if from == "carol"));
}

#[test]
fn a_removed_peer_is_told_and_forgotten() {
    let registry = Registry::default();
    let mut alice = peer(&registry, "alice");
    let mut bob = peer(&registry, "bob");
    join(&registry, "alice", &[], &[]);
    join(&registry, "bob", &["alice"], &[]);
    drain(&mut alice);
    drain(&mut bob);
    let ended = registry.dispatch(NODE, left_event("bob", RpcReason::Removed));
    assert_eq!(ended, vec![RoomName::from("r")], "the caller releases bob's subscription reference");
    assert!(matches!(&drain(&mut bob)[..], [ServerMessage::Left { id: None, reason: LeaveReason::Removed, .. }]));
    assert!(matches!(&drain(&mut alice)[..], [ServerMessage::PeerLeft { peer_id, .. }] if peer_id == "bob"));
    assert_eq!(registry.local_members("r"), 1);
    assert_eq!(registry.begin_leave("bob", "r").unwrap_err().code, ErrorCode::NotFound);
}

#[test]
fn a_leaving_peer_is_not_told_twice_and_stale_events_are_ignored() {
    let registry = Registry::default();
    let mut alice = peer(&registry, "alice");
    join(&registry, "alice", &[], &[]);
    drain(&mut alice);
    registry.begin_leave("alice", "r").unwrap();
    // Its own leave comes back over the bus while the leave call is still returning.
    assert!(registry.dispatch(NODE, left_event("alice", RpcReason::Left)).is_empty());
    assert!(drain(&mut alice).is_empty(), "the leave reply is the handler's to send");
    assert!(registry.remove_membership("alice", "r"));
    assert_eq!(registry.room_count(), 0, "the last local member gone, the room is forgotten");

    // Rejoining at once: the old leave event may still be in flight; it is ignored.
    let mut echoed = registry.begin_join("alice", "r", 4).unwrap();
    registry.dispatch(NODE, left_event("alice", RpcReason::Left));
    assert!(echoed.try_recv().is_err());
    registry.dispatch(NODE, joined_event("alice"));
    echoed.try_recv().unwrap();
    assert_eq!(registry.complete_join("alice", "r", &["alice".into()], joined_frame()), Completion::Live);
    assert!(matches!(&drain(&mut alice)[..], [ServerMessage::Joined { .. }]));
}

#[test]
fn removal_during_a_join_is_delivered_after_joined() {
    let registry = Registry::default();
    let mut alice = peer(&registry, "alice");
    let mut echoed = registry.begin_join("alice", "r", 4).unwrap();
    registry.dispatch(NODE, joined_event("alice"));
    echoed.try_recv().unwrap();
    registry.dispatch(NODE, left_event("alice", RpcReason::Removed));
    assert_eq!(registry.complete_join("alice", "r", &["alice".into()], joined_frame()), Completion::RemovedMeanwhile);
    let messages = drain(&mut alice);
    assert!(matches!(
        &messages[..],
        [ServerMessage::Joined { .. }, ServerMessage::Left { reason: LeaveReason::Removed, .. }]
    ));
    assert_eq!(registry.room_count(), 0);
}

#[test]
fn limits_and_duplicates() {
    let registry = Registry::default();
    let _alice = peer(&registry, "alice");
    registry.begin_join("alice", "a", 2).unwrap();
    assert_eq!(registry.begin_join("alice", "a", 2).unwrap_err().code, ErrorCode::BadRequest);
    registry.begin_join("alice", "b", 2).unwrap();
    assert_eq!(registry.begin_join("alice", "c", 2).unwrap_err().code, ErrorCode::Forbidden);
    assert_eq!(registry.disconnect("alice").len(), 2);
    assert_eq!(registry.peer_count(), 0);
}
