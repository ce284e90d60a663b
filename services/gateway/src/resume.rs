//! Resuming a session: a client that lost its connection presents its resume token
//! (and the last `seq` it received) on a new connection, to any gateway.
//!
//! - Same gateway: the kept session gets the new socket and what it missed.
//! - Another gateway: this one takes the session over. It subscribes to the session's
//!   rooms, moves each membership to itself (the room store publishes a
//!   `session_moved` marker in the same step), takes the session record over, and
//!   waits for each marker to come back: from that point it buffers the rooms' traffic.
//!   Then it asks the old gateway, on that gateway's node channel, for what it kept
//!   after the client's `last_seq`; the old gateway answers once it has seen every
//!   marker, which is exactly when it stops delivering. The client gets `resumed`, the
//!   handed-over messages, then the buffer: nothing lost, nothing twice, in order. If
//!   the old gateway is dead (or does not answer in time), `resumed` says `gap: true`.

use std::collections::HashMap;

use bus::Topic;
use bus::envelope::{self, Body, HandoverData, HandoverRequest};
use protocol::{Resumed, ServerMessage};
use room_service::RoomError;

use crate::Gateway;
use crate::auth::Identity;
use crate::connection::welcome;
use crate::lifecycle::{self, Attached};
use crate::outbound::{Frame, PeerSender};
use crate::registry::PeerId;
use crate::render;

/// Why a resume did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    /// Unknown token, wrong secret, or the window has passed: the client should start
    /// a new session.
    #[error("no session to resume: {0}")]
    NoSession(&'static str),
    /// Redis, the bus or the room service cannot be reached: try again.
    #[error("cannot resume now: {0}")]
    Unavailable(String),
}

impl From<RoomError> for ResumeError {
    fn from(error: RoomError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

impl From<bus::BusError> for ResumeError {
    fn from(error: bus::BusError) -> Self {
        Self::Unavailable(error.to_string())
    }
}

/// Resumes the session of `token` on this gateway with `sender` as its socket.
pub async fn resume(
    gateway: &Gateway,
    token: &str,
    last_seq: u64,
    sender: PeerSender,
) -> Result<Attached, ResumeError> {
    let (peer_id, secret) = token.split_once('.').ok_or(ResumeError::NoSession("malformed token"))?;
    let (record, rooms) = gateway.sessions.load(peer_id).await?.ok_or(ResumeError::NoSession("unknown session"))?;
    if !constant_time_eq(lifecycle::secret_hash(secret).as_bytes(), record.secret_hash.as_bytes()) {
        return Err(ResumeError::NoSession("wrong secret"));
    }
    if record.detached_until_ms != 0 && record.detached_until_ms < lifecycle::now_ms() {
        return Err(ResumeError::NoSession("the resume window has passed"));
    }
    let name = (!record.name.is_empty()).then(|| record.name.clone());
    let identity = Identity::restore(record.identity.clone(), name, record.grants.clone());
    let peer: PeerId = peer_id.into();
    let (new_secret, resume_token) = lifecycle::new_resume_secret(peer_id);
    let attached = |attachment, gap| Attached {
        peer_id: peer.clone(),
        identity: identity.clone(),
        attachment,
        resume_token: Some(resume_token.clone()),
        gap,
    };
    let resumed = |gap, rooms| resumed_frame(gateway, &peer, &identity, &resume_token, gap, rooms);

    if *record.node == *gateway.node_id {
        let reattached = gateway
            .registry
            .reattach(&peer, sender, last_seq, resumed)
            .ok_or(ResumeError::NoSession("the session is no longer held here"))?;
        gateway.sessions.attach(&peer, &gateway.node_id, &lifecycle::secret_hash(&new_secret)).await?;
        return Ok(attached(reattached.attachment, reattached.gap));
    }
    let taken = take_over(gateway, &peer, &record.node, &rooms, &new_secret).await?;
    let handover = fetch_handover(gateway, &peer, &record.node, last_seq).await;
    let (handed, next_seq, gap) = match handover {
        Some(data) => {
            let frames = data.frames.into_iter().map(|frame| (frame.seq, Frame::from(frame.json))).collect();
            (frames, data.next_seq, data.gap)
        }
        None => (Vec::new(), last_seq + 1, true),
    };
    let resumed = |gap| resumed(gap, taken.rooms.clone());
    let (attachment, gap) =
        gateway.registry.complete_resume(&peer, sender, resumed, (handed, gap), next_seq, &taken.members);
    tracing::debug!(%peer, from = record.node, gap, "session resumed from another gateway");
    Ok(attached(attachment, gap))
}

/// The rooms a taken-over session is in, and their member lists.
struct TakenOver {
    rooms: Vec<String>,
    members: HashMap<String, Vec<String>>,
}

/// Moves the session and its memberships from gateway `from` to this one, and waits
/// until every room's marker has come back (the point from which this gateway has the
/// room's traffic). Undone on failure.
async fn take_over(
    gateway: &Gateway,
    peer: &PeerId,
    from: &str,
    rooms: &[String],
    new_secret: &str,
) -> Result<TakenOver, ResumeError> {
    let echoes = gateway.registry.begin_resume(peer, rooms);
    let mut subscribed = Vec::new();
    let mut moved = Vec::new();
    let outcome = async {
        for (room, _) in &echoes {
            gateway.subscriptions.acquire(room).await?;
            subscribed.push(room.clone());
        }
        let mut waiting = Vec::new();
        for (room, echoed) in echoes {
            let was_moved = gateway.rooms.move_member(&room, peer, from, &gateway.node_id).await?;
            tracing::debug!(%peer, %room, from, moved = was_moved, "membership takeover");
            if was_moved {
                moved.push(room.to_string());
                waiting.push(echoed);
            } else {
                // Left (or was removed) while away: not a room of the session any more.
                // The reference goes with the membership: whatever removed it first
                // (a session's end) released it then.
                if gateway.registry.remove_membership(peer, &room) {
                    gateway.subscriptions.release(&room).await;
                }
                subscribed.retain(|kept| *kept != room);
                let _ = gateway.sessions.remove_room(peer, &room).await;
            }
        }
        let secret_hash = lifecycle::secret_hash(new_secret);
        if !gateway.sessions.take_over(peer, from, &gateway.node_id, &secret_hash).await? {
            return Err(ResumeError::NoSession("the session moved or ended meanwhile"));
        }
        let echo_timeout = gateway.config.bus.echo_timeout;
        for echoed in waiting {
            if !matches!(tokio::time::timeout(echo_timeout, echoed).await, Ok(Ok(()))) {
                return Err(ResumeError::Unavailable("the message bus did not confirm the move in time".into()));
            }
        }
        let mut members = HashMap::new();
        for room in &moved {
            let list = gateway.rooms.members(room).await?.into_iter().map(|member| member.peer_id).collect();
            members.insert(room.clone(), list);
        }
        Ok(TakenOver { rooms: moved.clone(), members })
    }
    .await;
    if outcome.is_err() {
        // Only the memberships still here hold their reference: one removed meanwhile
        // (a session's end) released it then.
        let removed = gateway.registry.abort_resume(peer);
        for room in subscribed.iter().filter(|room| removed.contains(*room)) {
            gateway.subscriptions.release(room).await;
        }
        // Memberships already moved here belong to a session that did not resume.
        for room in &moved {
            let _ =
                gateway.rooms.leave(room, peer, &gateway.node_id, cluster_proto::room::LeaveReason::Disconnected).await;
        }
    }
    outcome
}

/// Asks the old gateway for what it kept after `last_seq`. `None` if it is dead or
/// does not answer in time: the client may have missed messages.
async fn fetch_handover(gateway: &Gateway, peer: &PeerId, from: &str, last_seq: u64) -> Option<HandoverData> {
    if !gateway.sessions.node_alive(from).await.unwrap_or(false) {
        tracing::info!(%peer, from, "the session's old gateway is gone: resuming with a gap");
        return None;
    }
    // A crashed gateway's lease outlives it by up to its time to live, but its node
    // channel goes unheard as soon as its connection to the bus is gone: then there is
    // nobody to ask, and no reason to wait out the handover timeout. (Unsure, ask.)
    if !gateway.bus.is_heard(Topic::Node(from)).await.unwrap_or(true) {
        tracing::info!(%peer, from, "the session's old gateway no longer hears the bus: resuming with a gap");
        return None;
    }
    let reply = gateway.handovers.expect(peer);
    let request = envelope::new(
        "",
        &gateway.node_id,
        Body::HandoverRequest(HandoverRequest {
            peer_id: peer.to_string(),
            to_node: gateway.node_id.to_string(),
            last_seq,
        }),
    );
    if let Err(error) = gateway.bus.publish(Topic::Node(from), envelope::encode(&request)).await {
        tracing::warn!(%peer, from, %error, "could not ask for the handover");
        gateway.handovers.forget(peer);
        return None;
    }
    match tokio::time::timeout(gateway.config.session.handover_timeout, reply).await {
        Ok(Ok(data)) => Some(data),
        _ => {
            tracing::warn!(%peer, from, "no handover in time: resuming with a gap");
            gateway.handovers.forget(peer);
            None
        }
    }
}

fn resumed_frame(
    gateway: &Gateway,
    peer: &str,
    identity: &Identity,
    resume_token: &str,
    gap: bool,
    rooms: Vec<String>,
) -> Frame {
    let mut session = welcome(gateway, peer, identity, Some(resume_token.to_string()));
    session.resume_token = Some(resume_token.to_string());
    render::message(&ServerMessage::Resumed(Resumed { session, rooms, gap }))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
