//! One room of the `negotiate` scenario: its members connect (consecutive members to
//! different gateways, so a pair negotiates across nodes), join and see each other;
//! then pairs of members negotiate one after the other, on schedule or back to back,
//! until the run's end.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use protocol::ServerMessage;
use protocol::client::{Client, ClientError};

use super::Plan;
use super::inbox::{Burst, receive, tagged};
use crate::clients::connect;
use crate::histogram::Latency;
use crate::negotiation::{Role, messages};
use crate::tally::{Errors, Tally};

pub struct Member {
    client: Client,
    peer_id: String,
}

pub struct Room {
    index: usize,
    name: String,
    members: Vec<Member>,
}

/// What setting a room up measured.
#[derive(Default)]
pub struct Setup {
    pub connect: Latency,
    pub join: Latency,
    pub nodes: Vec<String>,
}

/// What a room's load measured.
#[derive(Default)]
pub struct RoomStats {
    pub tally: Tally,
    /// One-way latency of every message received.
    pub latency: Latency,
    /// From a negotiation's first message sent to its last received.
    pub negotiation: Latency,
    /// How late negotiations started against the schedule (fixed rate only).
    pub schedule_lag: Latency,
    pub negotiations: u64,
    /// When the room's last negotiation ended.
    pub ended: Option<Instant>,
    pub errors: Errors,
}

/// Connects and joins the members of room `index`, and waits until every member has
/// seen all the others (so that no signal outruns the membership it needs).
pub async fn set_up(plan: &Plan, index: usize, setup: &mut Setup) -> anyhow::Result<Room> {
    let name = format!("{}-{index}", plan.room_prefix);
    let mut members: Vec<Member> = Vec::with_capacity(plan.room_size);
    for position in 0..plan.room_size {
        let url = &plan.urls[(index * plan.room_size + position) % plan.urls.len()];
        let identity = format!("{name}-m{position}");
        let started = Instant::now();
        let mut client = connect(url, &identity, &name, plan.jwt_secret.as_deref(), plan.token_lifetime).await?;
        setup.connect.record(started.elapsed());
        setup.nodes.push(client.welcome().server.node.clone());

        let started = Instant::now();
        let present = client.join(&name, None).await.with_context(|| format!("{identity} joins {name}"))?;
        setup.join.record(started.elapsed());
        if present.len() != position {
            bail!("{identity} joined {name} with {} members listed, expected {position}", present.len());
        }
        let peer_id = client.peer_id().to_string();
        members.push(Member { client, peer_id });
    }
    // Each member saw those before it in its `joined`, and learns of those who joined
    // after it from `peer_joined`.
    for (position, member) in members.iter_mut().enumerate() {
        let mut seen = position;
        member.client.set_reply_timeout(plan.message_timeout);
        while seen < plan.room_size - 1 {
            match member.client.next_message().await.with_context(|| format!("waiting for presence in {name}"))? {
                ServerMessage::PeerJoined { room, .. } if room == name => seen += 1,
                ServerMessage::Error { code, message, .. } => bail!("error {code} in {name}: {message}"),
                _ => {}
            }
        }
    }
    Ok(Room { index, name, members })
}

/// Runs negotiations in `room` from `start` until the plan's end; the room's pairs
/// take turns (in a mesh of k, each of its k(k-1)/2 pairs).
pub async fn drive(plan: &Plan, room: &mut Room, start: Instant) -> RoomStats {
    let mut stats = RoomStats::default();
    let end = start + plan.duration;
    let pairs: Vec<(usize, usize)> =
        (0..plan.room_size).flat_map(|a| (a + 1..plan.room_size).map(move |b| (a, b))).collect();
    let offered = messages(Role::Offerer, plan.script);
    let answered = messages(Role::Answerer, plan.script);
    for negotiation in 0.. {
        if plan.negotiations_per_room.is_some_and(|most| negotiation >= most) {
            break;
        }
        // Nothing starts after the end, even what was due before it: a run that fell
        // behind its schedule shows it in the lag, not by running over.
        let due = plan.scheduled(room.index, negotiation, start);
        let now = Instant::now();
        if now >= end || due.is_some_and(|at| at >= end) {
            break;
        }
        match due {
            Some(at) if now < at => tokio::time::sleep_until(at.into()).await,
            Some(at) => stats.schedule_lag.record(now - at),
            None => {}
        }
        let (a, b) = pairs[negotiation as usize % pairs.len()];
        let started = Instant::now();
        let outcome = async {
            exchange(plan, room, (a, b), negotiation, &offered, &mut stats).await?;
            exchange(plan, room, (b, a), negotiation, &answered, &mut stats).await
        }
        .await;
        if let Err(error) = outcome {
            // The connection is gone: this room stops, the others go on.
            stats.errors.record(format!("room {}: {error}", room.name));
            plan.live.error();
            break;
        }
        stats.negotiation.record(started.elapsed());
        stats.negotiations += 1;
    }
    stats.ended = Some(Instant::now());
    stats
}

/// Member `from` sends its burst to member `to`, which receives it.
async fn exchange(
    plan: &Plan,
    room: &mut Room,
    (from, to): (usize, usize),
    negotiation: u64,
    burst: &[(&'static str, serde_json::Value)],
    stats: &mut RoomStats,
) -> Result<(), ClientError> {
    let (sender, receiver) = pair_mut(&mut room.members, from, to);
    for (index, (kind, data)) in burst.iter().enumerate() {
        let data = tagged(data, negotiation, index, plan.epoch);
        sender.client.signal(&room.name, &receiver.peer_id, kind, data).await?;
        stats.tally.sent += 1;
    }
    let expected = Burst { room: &room.name, from: &sender.peer_id, negotiation, expected: burst };
    let deadline = Instant::now() + plan.message_timeout;
    receive(&mut receiver.client, &expected, deadline, plan.epoch, stats, &plan.live).await
}

/// Leaves the room and closes every member's connection (best effort: the run is over).
pub async fn close(room: Room, within: Duration) {
    let closing = async {
        for mut member in room.members {
            let _ = member.client.leave(&room.name).await;
            let _ = member.client.close().await;
        }
    };
    let _ = tokio::time::timeout(within, closing).await;
}

fn pair_mut<T>(items: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b, "a pair of two members");
    if a < b {
        let (left, right) = items.split_at_mut(b);
        (&mut left[a], &mut right[0])
    } else {
        let (left, right) = items.split_at_mut(a);
        (&mut right[0], &mut left[b])
    }
}
