//! The gateway's registry on the relay path: routing a client's signal (to a member on
//! this gateway, delivered at once) and dispatching a signal the bus brought from
//! another gateway to its local target, among a thousand other rooms. Each delivery
//! also goes into the target's replay buffer, as in service. `cargo bench -p gateway`.

use std::hint::black_box;

use bus::envelope::{self, Body, Envelope, EnvelopeRef, PeerJoined, Signal};
use criterion::{Criterion, criterion_group, criterion_main};
use gateway::outbound::{Frame, Outbox, PeerSender};
use gateway::registry::Registry;
use gateway::replay::ReplayLimits;

const NODE: &str = "gw-bench";
const OTHER_ROOMS: usize = 1_000;

fn joined_event(room: &str, peer: &str) -> Envelope {
    let body = Body::PeerJoined(PeerJoined { peer_id: peer.into(), identity: peer.into(), ..Default::default() });
    envelope::new(room, "rooms", body)
}

/// Joins `peer` (already open) to `room` after `before`, as a gateway's join does:
/// the echo of its own `peer_joined`, then the member list.
fn join(registry: &Registry, room: &str, peer: &str, before: &[&str]) {
    let mut echoed = registry.begin_join(peer, room, 8).expect("the join begins");
    registry.dispatch(EnvelopeRef::of(&joined_event(room, peer)));
    echoed.try_recv().expect("the echo fired");
    let mut members: Vec<String> = before.iter().map(|member| member.to_string()).collect();
    members.push(peer.to_string());
    let joined = Frame::from(format!(r#"{{"type":"joined","room":"{room}","peers":[]}}"#));
    registry.complete_join(peer, room, &members, joined);
}

fn open(registry: &Registry, peer: &str) -> Outbox {
    let (sender, queue) = PeerSender::new(1_024);
    registry.open(peer.into(), sender);
    queue
}

/// The registry and the queues of the members it serves.
struct Bench {
    registry: Registry,
    alice: Outbox,
    bob: Outbox,
    /// The other rooms' members' queues: open, never read.
    _others: Vec<Outbox>,
}

/// Room "r" with alice and bob here and carol on another gateway, among a thousand
/// other rooms of two.
fn bench() -> Bench {
    let registry = Registry::new(NODE.into(), ReplayLimits { frames: 256, bytes: 1 << 20 });
    let mut others = Vec::new();
    for room in 0..OTHER_ROOMS {
        let (a, b) = (format!("a{room}"), format!("b{room}"));
        others.extend([open(&registry, &a), open(&registry, &b)]);
        join(&registry, &format!("room-{room}"), &a, &[]);
        join(&registry, &format!("room-{room}"), &b, &[&a]);
    }
    registry.dispatch(EnvelopeRef::of(&joined_event("r", "carol")));
    let alice = open(&registry, "alice");
    let bob = open(&registry, "bob");
    join(&registry, "r", "alice", &["carol"]);
    join(&registry, "r", "bob", &["carol", "alice"]);
    Bench { registry, alice, bob, _others: others }
}

fn signal_json(size: usize) -> String {
    format!(r#"{{"sdp":"{}"}}"#, "a".repeat(size.saturating_sub(10)))
}

fn relay(c: &mut Criterion) {
    let Bench { registry, mut alice, mut bob, _others } = bench();
    let mut group = c.benchmark_group("relay");

    let frame = Frame::from(format!(
        r#"{{"type":"signal","room":"r","from":"alice","kind":"candidate","data":{}}}"#,
        signal_json(200)
    ));
    group.bench_function("route_signal/local", |b| {
        b.iter(|| {
            let route = registry.route_signal(black_box("r"), "alice", "bob", || frame.clone());
            while bob.try_recv().is_ok() {}
            route
        })
    });

    let from_bus = envelope::encode(&envelope::new(
        "r",
        "gw-other",
        Body::Signal(Signal {
            from_peer: "carol".into(),
            to_peer: "alice".into(),
            kind: "offer".into(),
            data_json: signal_json(3_000),
        }),
    ));
    // As the dispatcher does it: read from the bytes, then dispatched.
    group.bench_function("dispatch/signal_offer_3kb", |b| {
        b.iter(|| {
            let decoded = envelope::decode_ref(black_box(&from_bus)).expect("a signal");
            let effects = registry.dispatch(decoded.envelope());
            while alice.try_recv().is_ok() {}
            effects
        })
    });
    group.finish();
}

criterion_group!(benches, relay);
criterion_main!(benches);
