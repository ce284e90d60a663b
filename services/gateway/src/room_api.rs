//! The gateway's view of the room service: one trait, served in this process (embedded
//! mode, or Redis-backed rooms in every gateway) or over gRPC by a separate service.

use std::time::Duration;

use async_trait::async_trait;
use cluster_proto::room::room_service_client::RoomServiceClient;
use cluster_proto::room::{JoinRequest, LeaveReason, LeaveRequest, ListMembersRequest, Member, MoveMemberRequest};
use room_service::RoomError;
use room_service::Rooms;
use room_service::store::JoinOutcome;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

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

/// A separate room service over gRPC.
pub struct GrpcRoomApi {
    client: RoomServiceClient<InterceptedService<Channel, BearerSecret>>,
    health: HealthClient<Channel>,
}

impl GrpcRoomApi {
    /// A client that connects on first use (so a gateway starts while the room service
    /// is still starting) and gives every call `timeout`.
    pub fn new(url: &str, api_secret: Option<&str>, timeout: Duration) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(url.to_string())?
            .connect_timeout(timeout)
            .timeout(timeout)
            .tcp_nodelay(true)
            .connect_lazy();
        let secret = api_secret
            .map(|secret| format!("Bearer {secret}").parse())
            .transpose()
            .map_err(|_| anyhow::anyhow!("room_service.api_secret must be printable ASCII"))?;
        Ok(Self {
            client: RoomServiceClient::with_interceptor(channel.clone(), BearerSecret(secret)),
            health: HealthClient::new(channel),
        })
    }
}

#[async_trait]
impl RoomApi for GrpcRoomApi {
    async fn join(&self, room: &str, member: Member) -> Result<JoinOutcome, RoomError> {
        let request = JoinRequest { room: room.to_string(), member: Some(member) };
        let response = self.client.clone().join(request).await?.into_inner();
        Ok(JoinOutcome { room: response.room.unwrap_or_default(), members: response.members })
    }

    async fn leave(&self, room: &str, peer_id: &str, owner: &str, reason: LeaveReason) -> Result<bool, RoomError> {
        let request = LeaveRequest {
            room: room.to_string(),
            peer_id: peer_id.to_string(),
            reason: reason as i32,
            owner: owner.to_string(),
        };
        Ok(self.client.clone().leave(request).await?.into_inner().removed)
    }

    async fn move_member(&self, room: &str, peer_id: &str, from: &str, to: &str) -> Result<bool, RoomError> {
        let request = MoveMemberRequest {
            room: room.to_string(),
            peer_id: peer_id.to_string(),
            from_node: from.to_string(),
            to_node: to.to_string(),
        };
        Ok(self.client.clone().move_member(request).await?.into_inner().moved)
    }

    async fn members(&self, room: &str) -> Result<Vec<Member>, RoomError> {
        let request = ListMembersRequest { room: room.to_string() };
        match self.client.clone().list_members(request).await {
            Ok(response) => Ok(response.into_inner().members),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(Vec::new()),
            Err(status) => Err(status.into()),
        }
    }

    async fn check(&self) -> Result<(), RoomError> {
        let request = HealthCheckRequest { service: room_service::grpc::SERVICE_NAME.to_string() };
        let status = self.health.clone().check(request).await?.into_inner().status();
        match status {
            ServingStatus::Serving => Ok(()),
            other => Err(RoomError::Unavailable(format!("room service reports {}", other.as_str_name()))),
        }
    }
}

/// Adds `authorization: Bearer <secret>` to every call when a secret is configured.
#[derive(Clone)]
pub struct BearerSecret(Option<MetadataValue<Ascii>>);

impl Interceptor for BearerSecret {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}
