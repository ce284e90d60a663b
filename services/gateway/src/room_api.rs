//! The gateway's view of the room service: one trait, served in this process (embedded
//! mode, or Redis-backed rooms in every gateway) or over gRPC by separate replicas
//! ([`crate::room_grpc`]).

use async_trait::async_trait;
use cluster_proto::room::{LeaveReason, Member};
use room_service::RoomError;
use room_service::Rooms;
use room_service::store::JoinOutcome;

#[async_trait]
pub trait RoomApi: Send + Sync + 'static {
    async fn join(&self, room: &str, member: Member) -> Result<JoinOutcome, RoomError>;
    /// Leaves, only if `owner` holds the member: a gateway only ever removes its own.
    async fn leave(&self, room: &str, peer_id: &str, owner: &str, reason: LeaveReason) -> Result<bool, RoomError>;
    /// Takes a member over from gateway `from` (a resume); false if `from` no longer
    /// holds it.
    async fn move_member(&self, room: &str, peer_id: &str, from: &str, to: &str) -> Result<bool, RoomError>;
    /// The members of a room, empty if there is none.
    async fn members(&self, room: &str) -> Result<Vec<Member>, RoomError>;
    /// Whether the room service (and its store) is reachable, for readiness.
    async fn check(&self) -> Result<(), RoomError>;
}

#[async_trait]
impl RoomApi for Rooms {
    async fn join(&self, room: &str, member: Member) -> Result<JoinOutcome, RoomError> {
        Rooms::join(self, room, member).await
    }

    async fn leave(&self, room: &str, peer_id: &str, owner: &str, reason: LeaveReason) -> Result<bool, RoomError> {
        Rooms::leave_if_owner(self, room, peer_id, Some(owner), reason).await
    }

    async fn move_member(&self, room: &str, peer_id: &str, from: &str, to: &str) -> Result<bool, RoomError> {
        Rooms::move_member(self, room, peer_id, from, to).await
    }

    async fn members(&self, room: &str) -> Result<Vec<Member>, RoomError> {
        match Rooms::members(self, room).await {
            Err(RoomError::NotFound(_)) => Ok(Vec::new()),
            other => other,
        }
    }

    async fn check(&self) -> Result<(), RoomError> {
        Rooms::check(self).await
    }
}
