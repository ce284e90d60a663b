//! The registry's consistency rules, driven by hand-made envelopes in a fixed order.

use bus::envelope::{self, Body, Broadcast, Envelope, HandoverRequest, PeerJoined, PeerLeft, SessionMoved, Signal};
use cluster_proto::room::LeaveReason as RpcReason;
use protocol::{LeaveReason, ServerMessage};

use std::collections::HashMap;

use super::*;
use crate::outbound::Outbox;
use crate::render;
use crate::replay::ReplayLimits;

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

/// Dispatches an envelope as the dispatcher does, through its borrowed view.
fn dispatch(registry: &Registry, envelope: Envelope) -> Vec<Effect> {
    registry.dispatch(envelope::EnvelopeRef::of(&envelope))
}

fn registry() -> Registry {
    Registry::new(NODE.into(), ReplayLimits { frames: 100, bytes: 100_000 })
}

fn peer(registry: &Registry, id: &str) -> Outbox {
    let (sender, queue) = PeerSender::new(64);
    registry.open(id.into(), sender);
    queue
}

fn drain(queue: &mut Outbox) -> Vec<ServerMessage> {
    drain_numbered(queue).into_iter().map(|(_, message)| message).collect()
}

/// Messages with their `seq`.
fn drain_numbered(queue: &mut Outbox) -> Vec<(Option<u64>, ServerMessage)> {
    let mut out = Vec::new();
    while let Ok(frame) = queue.try_recv() {
        let sequenced: protocol::Sequenced = serde_json::from_str(frame.as_str()).unwrap();
        out.push((sequenced.seq, sequenced.message));
    }
    out
}

fn moved_event(peer: &str, from: &str, to: &str) -> Envelope {
    let body = Body::SessionMoved(SessionMoved { peer_id: peer.into(), from_node: from.into(), to_node: to.into() });
    envelope::new("r", "rooms", body)
}

fn joined_frame() -> Frame {
    render::message(&ServerMessage::Joined { id: None, room: "r".into(), peers: Vec::new() })
}

/// Joins `id` to room "r" as the room store would have it: `before` joined earlier (in
/// the member list), the echo arrives, and `after` joins before the call returns.
fn join(registry: &Registry, id: &str, before: &[&str], after: &[&str]) -> Completion {
    let mut echoed = registry.begin_join(id, "r", 4).unwrap();
    for earlier in before {
        dispatch(registry, joined_event(earlier)); // already in the member list: ignored
    }
    assert!(echoed.try_recv().is_err(), "no echo yet");
    dispatch(registry, joined_event(id));
    echoed.try_recv().expect("the echo fired");
    for later in after {
        dispatch(registry, joined_event(later));
    }
    let mut members: Vec<String> = before.iter().map(|p| p.to_string()).collect();
    members.push(id.to_string());
    registry.complete_join(id, "r", &members, joined_frame())
}

/// Alice and then bob, both local, joined to room "r"; their queues, emptied.
fn alice_and_bob_in_a_room(registry: &Registry) -> (Outbox, Outbox) {
    let mut alice = peer(registry, "alice");
    let mut bob = peer(registry, "bob");
    join(registry, "alice", &[], &[]);
    join(registry, "bob", &["alice"], &[]);
    drain(&mut alice);
    drain(&mut bob);
    (alice, bob)
}

#[test]
fn a_join_sees_each_change_once_and_after_joined() {
    let registry = registry();
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
fn local_targets_are_served_without_the_bus_and_own_broadcasts_are_not_delivered_twice() {
    let registry = registry();
    let (_alice, mut bob) = alice_and_bob_in_a_room(&registry);
    let route = registry.route_signal("r", "alice", "bob", || render::signal("r", "alice", "offer", "{}"));
    assert_eq!(route, Ok(Route::Delivered));
    assert_eq!(drain(&mut bob).len(), 1);
    dispatch(&registry, signal_event("carol", "bob", "gw-other"));
    assert!(matches!(&drain(&mut bob)[..], [ServerMessage::Signal { from, .. }] if from == "carol"));

    let route = registry.broadcast_locally("r", "alice", render::broadcast("r", Some("alice"), "1"));
    assert_eq!(route, Ok(Route::Delivered));
    assert_eq!(drain(&mut bob).len(), 1);
    dispatch(&registry, broadcast_event("alice", NODE, false));
    assert!(drain(&mut bob).is_empty(), "heard back, not delivered again");
}

fn broadcast_event(from: &str, origin: &str, loopback: bool) -> Envelope {
    let body = Body::Broadcast(Broadcast { from_peer: from.into(), data_json: "1".into(), loopback });
    envelope::new("r", origin, body)
}

/// Bob is resuming here from gw-old; alice, already here, signals him. Until the
/// room's marker the old gateway delivers to him, so the signal goes round the bus: if
/// it comes back before the marker it is the old gateway's, after it this one's.
#[test]
fn a_signal_to_a_peer_moving_in_goes_round_the_bus() {
    let registry = registry();
    let _alice = peer(&registry, "alice");
    join(&registry, "alice", &["bob"], &[]);
    let mut echoes = registry.begin_resume("bob", &["r".to_string()]);
    let (_, mut echoed) = echoes.pop().unwrap();

    assert_eq!(registry.route_signal("r", "alice", "bob", || unreachable!()), Ok(Route::Bus));
    dispatch(&registry, signal_event("alice", "bob", NODE)); // before the marker: gw-old's
    assert_eq!(registry.route_signal("r", "alice", "bob", || unreachable!()), Ok(Route::Bus));
    dispatch(&registry, moved_event("bob", "gw-old", NODE));
    echoed.try_recv().expect("the marker is the echo");
    dispatch(&registry, signal_event("alice", "bob", NODE)); // after the marker: this one's

    let (sender, mut queue) = PeerSender::new(64);
    let members = HashMap::from([("r".to_string(), vec!["alice".to_string(), "bob".to_string()])]);
    let pong = |_| Frame::from_static(r#"{"type":"pong"}"#);
    assert!(!registry.complete_resume("bob", sender, pong, (Vec::new(), false), 1, &members).1, "no gap");
    let got = drain(&mut queue);
    assert_eq!(got.len(), 2, "resumed, then the one signal that came back after the marker: {got:?}");
    assert!(matches!(&got[1], ServerMessage::Signal { from, .. } if from == "alice"));
    // Nothing is out any more: the shortcut is back.
    let route = registry.route_signal("r", "alice", "bob", || render::signal("r", "alice", "offer", "{}"));
    assert_eq!(route, Ok(Route::Delivered));
}

/// A signal that went round the bus is not overtaken by a later one between the same
/// peers that could take the shortcut; neither is a broadcast.
#[test]
fn while_a_message_is_round_the_bus_later_ones_follow_it() {
    let registry = registry();
    let (_alice, mut bob) = alice_and_bob_in_a_room(&registry);
    // As after a resume: the first signal went out while bob was moving in.
    registry.lock().rooms.get_mut("r").unwrap().in_flight.signal_sent(PeerId::from("bob"));

    assert_eq!(registry.route_signal("r", "alice", "bob", || unreachable!()), Ok(Route::Bus));
    let route = registry.broadcast_locally("r", "alice", render::broadcast("r", Some("alice"), "1"));
    assert_eq!(route, Ok(Route::Bus), "a broadcast to bob would overtake too");
    assert!(drain(&mut bob).is_empty());

    dispatch(&registry, signal_event("alice", "bob", NODE));
    dispatch(&registry, signal_event("alice", "bob", NODE));
    dispatch(&registry, broadcast_event("alice", NODE, true));
    let got = drain(&mut bob);
    assert!(
        matches!(
            &got[..],
            [ServerMessage::Signal { .. }, ServerMessage::Signal { .. }, ServerMessage::Broadcast { .. }]
        ),
        "{got:?}"
    );
    let route = registry.route_signal("r", "alice", "bob", || render::signal("r", "alice", "offer", "{}"));
    assert_eq!(route, Ok(Route::Delivered), "everything came back");

    // A publish that failed is not waited for.
    registry.lock().rooms.get_mut("r").unwrap().in_flight.signal_sent(PeerId::from("bob"));
    registry.not_published("r", Some("bob"));
    let route = registry.route_signal("r", "alice", "bob", || render::signal("r", "alice", "offer", "{}"));
    assert_eq!(route, Ok(Route::Delivered));
}

#[test]
fn a_removed_peer_is_told_and_forgotten() {
    let registry = registry();
    let (mut alice, mut bob) = alice_and_bob_in_a_room(&registry);
    let ended = dispatch(&registry, left_event("bob", RpcReason::Removed));
    assert!(matches!(&ended[..], [Effect::Release(room)] if &**room == "r"), "the caller releases bob's reference");
    assert!(matches!(&drain(&mut bob)[..], [ServerMessage::Left { id: None, reason: LeaveReason::Removed, .. }]));
    assert!(matches!(&drain(&mut alice)[..], [ServerMessage::PeerLeft { peer_id, .. }] if peer_id == "bob"));
    assert_eq!(registry.local_members("r"), 1);
    assert_eq!(registry.begin_leave("bob", "r").unwrap_err().code, ErrorCode::NotFound);
}

#[test]
fn a_leaving_peer_is_not_told_twice_and_stale_events_are_ignored() {
    let registry = registry();
    let mut alice = peer(&registry, "alice");
    join(&registry, "alice", &[], &[]);
    drain(&mut alice);
    registry.begin_leave("alice", "r").unwrap();
    // Its own leave comes back over the bus while the leave call is still returning.
    assert!(dispatch(&registry, left_event("alice", RpcReason::Left)).is_empty());
    assert!(drain(&mut alice).is_empty(), "the leave reply is the handler's to send");
    assert!(registry.remove_membership("alice", "r"));
    assert_eq!(registry.room_count(), 0, "the last local member gone, the room is forgotten");

    // Rejoining at once: the old leave event may still be in flight; it is ignored.
    let mut echoed = registry.begin_join("alice", "r", 4).unwrap();
    dispatch(&registry, left_event("alice", RpcReason::Left));
    assert!(echoed.try_recv().is_err());
    dispatch(&registry, joined_event("alice"));
    echoed.try_recv().unwrap();
    assert_eq!(registry.complete_join("alice", "r", &["alice".into()], joined_frame()), Completion::Live);
    assert!(matches!(&drain(&mut alice)[..], [ServerMessage::Joined { .. }]));
}

#[test]
fn removal_during_a_join_is_delivered_after_joined() {
    let registry = registry();
    let mut alice = peer(&registry, "alice");
    let mut echoed = registry.begin_join("alice", "r", 4).unwrap();
    dispatch(&registry, joined_event("alice"));
    echoed.try_recv().unwrap();
    dispatch(&registry, left_event("alice", RpcReason::Removed));
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
    let registry = registry();
    let _alice = peer(&registry, "alice");
    registry.begin_join("alice", "a", 2).unwrap();
    assert_eq!(registry.begin_join("alice", "a", 2).unwrap_err().code, ErrorCode::BadRequest);
    registry.begin_join("alice", "b", 2).unwrap();
    assert_eq!(registry.begin_join("alice", "c", 2).unwrap_err().code, ErrorCode::Forbidden);
    assert_eq!(registry.close_session("alice").len(), 2);
    assert_eq!(registry.peer_count(), 0);
}

#[test]
fn every_frame_is_numbered_and_a_reattach_replays_what_was_missed() {
    let registry = registry();
    let mut alice = peer(&registry, "alice");
    join(&registry, "alice", &[], &[]);
    dispatch(&registry, signal_event("bob", "alice", "gw-other"));
    let seqs: Vec<_> = drain_numbered(&mut alice).into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(seqs, [Some(1), Some(2)], "joined, then the signal");

    // The socket is lost; two more signals arrive while the session is away.
    assert_eq!(registry.detach("alice", 1), Detached::Kept);
    dispatch(&registry, signal_event("bob", "alice", "gw-other"));
    dispatch(&registry, signal_event("carol", "alice", "gw-other"));
    assert!(registry.still_detached("alice", 1));

    let (sender, mut resumed) = PeerSender::new(64);
    let resumed_frame = |gap: bool, rooms: Vec<String>| {
        assert_eq!(rooms, ["r"]);
        Frame::from(format!("{{\"type\":\"pong\",\"gap\":{gap}}}"))
    };
    let reattached = registry.reattach("alice", sender, 2, resumed_frame).unwrap();
    assert_eq!(reattached, Reattached { attachment: 2, gap: false });
    let replayed = drain_numbered(&mut resumed);
    assert_eq!(replayed[0].0, None, "resumed is not numbered");
    let seqs: Vec<_> = replayed[1..].iter().map(|(seq, _)| *seq).collect();
    assert_eq!(seqs, [Some(3), Some(4)], "exactly what the client had not seen");
    assert_eq!(registry.detach("alice", 1), Detached::Superseded, "the old connection no longer owns it");
}

/// The old gateway's side of a resume elsewhere: after the room's marker it delivers
/// nothing more of the room, and it hands over what the client had not seen.
#[test]
fn the_old_gateway_stops_at_the_marker_and_hands_over_the_rest() {
    let registry = registry();
    let mut alice = peer(&registry, "alice");
    join(&registry, "alice", &[], &[]);
    drain(&mut alice);
    registry.detach("alice", 1);
    dispatch(&registry, signal_event("bob", "alice", "gw-other")); // seq 2, before the marker
    let effects = dispatch(&registry, moved_event("alice", NODE, "gw-new"));
    assert!(matches!(&effects[..], [Effect::Release(room)] if &**room == "r"), "{effects:?}");
    dispatch(&registry, signal_event("bob", "alice", "gw-other")); // after the marker: not ours
    let request = HandoverRequest { peer_id: "alice".into(), to_node: "gw-new".into(), last_seq: 1 };
    let effects = dispatch(&registry, envelope::new("", "gw-new", Body::HandoverRequest(request)));
    let [Effect::HandOver { to, data }] = &effects[..] else { panic!("expected a handover: {effects:?}") };
    assert_eq!(to, "gw-new");
    let seqs: Vec<u64> = data.frames.iter().map(|frame| frame.seq).collect();
    assert_eq!((seqs, data.next_seq, data.gap), (vec![2], 3, false));
    assert_eq!(registry.peer_count(), 0, "the session left this gateway");
    assert_eq!(registry.room_count(), 0);
}

/// The new gateway's side: the marker is the echo; frames after it are buffered, and
/// come after the handed-over ones, numbered on from the old gateway's sequence.
#[test]
fn the_new_gateway_buffers_from_the_marker_and_continues_the_sequence() {
    let registry = registry();
    let mut echoes = registry.begin_resume("alice", &["r".to_string()]);
    let (_, mut echoed) = echoes.pop().unwrap();
    dispatch(&registry, signal_event("bob", "alice", "gw-other")); // before the marker: the old gateway's
    dispatch(&registry, moved_event("alice", "gw-old", NODE));
    echoed.try_recv().expect("the marker is the echo");
    dispatch(&registry, signal_event("carol", "alice", "gw-other"));

    let (sender, mut queue) = PeerSender::new(64);
    let handed = vec![(7, crate::replay::with_seq(&Frame::from_static(r#"{"type":"pong"}"#), 7))];
    let members = HashMap::from([("r".to_string(), vec!["alice".to_string(), "carol".to_string()])]);
    let resumed = |_| Frame::from_static(r#"{"type":"pong","id":"resumed"}"#);
    registry.complete_resume("alice", sender, resumed, (handed, false), 8, &members);
    let got = drain_numbered(&mut queue);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].0, None, "resumed first, not numbered");
    assert_eq!(got[1].0, Some(7), "then the handed-over frame");
    assert!(matches!(&got[2], (Some(8), ServerMessage::Signal { from, .. }) if from == "carol"), "{:?}", got[2]);
    assert_eq!(registry.route_signal("r", "alice", "carol", || unreachable!()), Ok(Route::Bus), "the view was built");
}

#[test]
fn a_handover_for_an_unknown_session_is_a_gap() {
    let registry = registry();
    let request = HandoverRequest { peer_id: "ghost".into(), to_node: "gw-new".into(), last_seq: 5 };
    let effects = dispatch(&registry, envelope::new("", "gw-new", Body::HandoverRequest(request)));
    let [Effect::HandOver { data, .. }] = &effects[..] else { panic!("{effects:?}") };
    assert_eq!((data.frames.len(), data.next_seq, data.gap), (0, 6, true));
}

/// A resume that fails after one of its memberships was removed meanwhile (as a
/// session's end removes them, releasing their subscription references): the abort
/// returns only the rooms it removed itself, whose references its caller releases, so
/// no reference is released twice.
#[test]
fn an_aborted_resume_returns_only_the_memberships_it_removed() {
    let registry = registry();
    let _echoes = registry.begin_resume("alice", &["r".to_string(), "s".to_string()]);
    assert!(registry.remove_membership("alice", "r"), "removed (and released) elsewhere");
    let removed: Vec<String> = registry.abort_resume("alice").iter().map(|room| room.to_string()).collect();
    assert_eq!(removed, ["s"]);
    assert!(!registry.has_membership("alice", "s"));
    assert!(registry.abort_resume("alice").is_empty(), "nothing left to release");
}

/// The bus lost some of room r's messages (its slot moved to another Redis master):
/// alice, attached, is told to reconnect and detached in the same step, so nothing
/// numbered after the loss reaches her old socket; her resume reports the gap. The view
/// is read again: the member list plus the changes that arrived meanwhile.
#[test]
fn a_room_whose_messages_were_lost_is_read_again_and_its_members_resume_with_a_gap() {
    let registry = registry();
    let mut alice = peer(&registry, "alice");
    join(&registry, "alice", &["y"], &[]);
    assert_eq!(drain_numbered(&mut alice).last().map(|(seq, _)| *seq), Some(Some(1)), "joined is seq 1");

    let reconnect = render::reconnect("state_lost");
    assert_eq!(registry.lose_room_messages("r", &reconnect), 1);
    assert_eq!(registry.lose_room_messages("elsewhere", &reconnect), 0);
    assert!(matches!(&drain(&mut alice)[..], [ServerMessage::Reconnect { reason }] if reason == "state_lost"));
    assert!(!registry.is_attached("alice"));

    // Unseen while the messages were lost: x joined, y left. Then the view is read again:
    // w joins after the rebuild began (the list read includes her), x leaves after the
    // list was read (it does not).
    assert!(registry.begin_view_rebuild("r"));
    assert!(!registry.begin_view_rebuild("elsewhere"), "no view to read again");
    dispatch(&registry, joined_event("w"));
    dispatch(&registry, left_event("x", RpcReason::Left));
    registry.complete_view_rebuild("r", &["alice".into(), "x".into(), "w".into()]);
    assert_eq!(registry.route_signal("r", "alice", "w", || unreachable!()), Ok(Route::Bus));
    for gone in ["x", "y"] {
        let refused = registry.route_signal("r", "alice", gone, || unreachable!());
        assert_eq!(refused.unwrap_err().code, ErrorCode::NotFound, "{gone}");
    }

    let (sender, mut queue) = PeerSender::new(64);
    let resumed = |gap: bool, _| Frame::from(format!("{{\"type\":\"pong\",\"gap\":{gap}}}"));
    let reattached = registry.reattach("alice", sender, 1, resumed).expect("the session is kept");
    assert!(reattached.gap, "seq 2 was lost");
    let seqs: Vec<Option<u64>> = drain_numbered(&mut queue).into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(seqs, [None, Some(3), Some(4)], "resumed, then w's peer_joined and x's peer_left after the lost 2");
}

/// A session moving in when its room's messages were lost here (the room's slot moved
/// while this gateway was subscribed on the old master): its marker was among them, so
/// the membership would wait for it in vain. The room store records the session here,
/// so the repair fires the echo, and the resume reports the gap.
#[test]
fn a_session_moving_in_during_a_loss_is_settled_by_the_repair_and_resumes_with_a_gap() {
    let registry = registry();
    let mut echoes = registry.begin_resume("alice", &["r".to_string()]);
    let (_, mut echoed) = echoes.pop().unwrap();
    let reconnect = render::reconnect("state_lost");
    assert_eq!(registry.lose_room_messages("r", &reconnect), 1);
    registry.fire_echoes_recorded_here("r", &["carol".into()]);
    assert!(echoed.try_recv().is_err(), "the store does not record alice here yet");
    registry.fire_echoes_recorded_here("r", &["alice".into()]);
    echoed.try_recv().expect("the repair is the echo");
    dispatch(&registry, signal_event("carol", "alice", "gw-other"));

    let (sender, mut queue) = PeerSender::new(64);
    let members = HashMap::from([("r".to_string(), vec!["alice".to_string(), "carol".to_string()])]);
    let resumed = |gap: bool| Frame::from(format!("{{\"type\":\"pong\",\"gap\":{gap}}}"));
    let (_, gap) = registry.complete_resume("alice", sender, resumed, (Vec::new(), false), 4, &members);
    assert!(gap, "the handover had no gap, the room here had");
    let got = drain_numbered(&mut queue);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(matches!(&got[1], (Some(4), ServerMessage::Signal { from, .. }) if from == "carol"), "{:?}", got[1]);
}
