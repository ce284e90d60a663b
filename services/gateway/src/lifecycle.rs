//! A session's life on this gateway: opened for an authenticated client (and recorded
//! cluster-wide), kept while its socket is lost for the resume window, ended (its
//! rooms left, its record deleted) when the client says goodbye or never comes back.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use room_service::sessions::SessionRecord;
use sha2::{Digest, Sha256};

use crate::Gateway;
use crate::auth::Identity;
use crate::outbound::PeerSender;
use crate::recovery::Leftover;
use crate::registry::{Detached, PeerId};
use crate::requests::leave::after_disconnect;

/// A session just opened or resumed on this gateway.
pub struct Attached {
    pub peer_id: PeerId,
    pub identity: Identity,
    /// Which attachment of the session this connection is.
    pub attachment: u64,
    /// The token to resume the session with (absent when resume is off).
    pub resume_token: Option<String>,
    /// A resume that may have lost messages (`resumed` said `gap: true`).
    pub gap: bool,
}

/// Opens a session for an authenticated client: records it cluster-wide (so that it
/// can be resumed anywhere, and cleaned up if this gateway dies) and registers it here.
pub async fn open(gateway: &Gateway, identity: Identity, sender: PeerSender) -> Result<Attached, String> {
    let peer_id: PeerId = new_peer_id().into();
    let (secret, resume_token) = new_resume_secret(&peer_id);
    let record = SessionRecord {
        peer_id: peer_id.to_string(),
        node: gateway.node_id.to_string(),
        secret_hash: secret_hash(&secret),
        identity: identity.identity.clone(),
        name: identity.name.clone().unwrap_or_default(),
        grants: identity.grants(),
        detached_until_ms: 0,
    };
    gateway.sessions.create(&record).await.map_err(|error| error.to_string())?;
    let attachment = gateway.registry.open(peer_id.clone(), sender);
    let resume_token = gateway.resume_enabled().then_some(resume_token);
    Ok(Attached { peer_id, identity, attachment, resume_token, gap: false })
}

/// A connection ended. A client that said goodbye (close code 1000) ends its session;
/// any other loss keeps the session, away, for the resume window.
pub async fn socket_ended(gateway: &Arc<Gateway>, peer: &PeerId, attachment: u64, goodbye: bool) {
    if goodbye || !gateway.resume_enabled() {
        if gateway.registry.detach(peer, attachment) == Detached::Kept {
            end(gateway, peer).await;
        }
        return;
    }
    if gateway.registry.detach(peer, attachment) == Detached::Superseded {
        return;
    }
    let window = gateway.config.session.resume_window;
    let until = now_ms() + window.as_millis() as i64;
    if let Err(error) = gateway.sessions.detach(peer, &gateway.node_id, until).await {
        tracing::warn!(%peer, %error, "could not mark the session as away");
    }
    let (gateway, peer) = (gateway.clone(), peer.clone());
    tokio::spawn(async move {
        tokio::time::sleep(window).await;
        if gateway.registry.still_detached(&peer, attachment) {
            tracing::debug!(%peer, "resume window passed");
            end(&gateway, &peer).await;
        }
    });
}

/// Ends a session: leaves its rooms (the others see `peer_left`, reason
/// `disconnected`), forgets it here and cluster-wide. What could not be removed from the
/// cluster is retried later (see [`crate::recovery::clean_leftovers`]).
pub async fn end(gateway: &Gateway, peer: &str) {
    let mut rooms: BTreeSet<String> = gateway.registry.close_session(peer).iter().map(|r| r.to_string()).collect();
    // The record can list more: a join that failed without an answer, taken back, may
    // have landed later.
    match gateway.sessions.load(peer).await {
        Ok(Some((record, recorded))) if *record.node == *gateway.node_id => rooms.extend(recorded),
        Ok(_) => {}
        Err(error) => tracing::debug!(peer, %error, "could not read the session's rooms"),
    }
    let left = futures_util::future::join_all(rooms.iter().map(|room| after_disconnect(gateway, peer, room))).await;
    // The record lists the rooms: it is kept until every leave has succeeded.
    if !left.iter().all(|ok| *ok) {
        gateway.standing.note_leftover(Leftover::Session(peer.to_string()));
        return;
    }
    if let Err(error) = gateway.sessions.delete(peer, &gateway.node_id).await {
        tracing::warn!(peer, %error, "could not delete the session record; retrying later");
        gateway.standing.note_leftover(Leftover::Session(peer.to_string()));
    }
}

/// `<peer id>.<secret>`: the secret is 128 random bits; only its hash is stored.
pub fn new_resume_secret(peer_id: &str) -> (String, String) {
    let secret = format!("{:032x}", rand::random::<u128>());
    let token = format!("{peer_id}.{secret}");
    (secret, token)
}

pub fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes()).iter().map(|byte| format!("{byte:02x}")).collect()
}

/// 80 random bits as 20 hex digits: unique across the cluster for all practical
/// purposes, and unguessable by other peers.
fn new_peer_id() -> String {
    format!("{:020x}", rand::random::<u128>() >> 48)
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
