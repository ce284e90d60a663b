//! The gRPC face of the room service: `signaling.room.v1.RoomService` over [`Rooms`],
//! the standard gRPC health service, and the API-secret check.

use std::sync::Arc;
use std::time::Duration;

use cluster_proto::room::room_service_server::{RoomService, RoomServiceServer};
use cluster_proto::room::*;
use common::telemetry::grpc::{GrpcTelemetryLayer, Side};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use crate::Rooms;

/// How often the health service re-checks the room store.
const HEALTH_INTERVAL: Duration = Duration::from_secs(2);

/// Who may call the room service: those who present the API secret, over TLS if
/// configured.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// When set, every RoomService call must carry the metadata
    /// `authorization: Bearer <secret>`; the health service is open, for probes.
    pub api_secret: Option<String>,
    /// The certificate and key (PEM) to serve TLS with.
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

/// Serves the room service on `listener` until `shutdown` resolves.
pub async fn serve(
    rooms: Arc<Rooms>,
    access: Access,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let mut server = tonic::transport::Server::builder();
    if let Some((cert, key)) = &access.tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        server = server.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health_task = tokio::spawn(report_health(rooms.clone(), reporter));
    let api_secret = access.api_secret;
    let check_secret = move |request: Request<()>| authorize(api_secret.as_deref(), request);
    let service = RoomServiceServer::with_interceptor(RoomApi { rooms }, check_secret);
    // Replies are small and latency-bound: no Nagle delay behind the previous one.
    let incoming = TcpListenerStream::new(listener).map(|accepted| {
        if let Ok(stream) = &accepted {
            let _ = stream.set_nodelay(true);
        }
        accepted
    });
    let result = server
        .layer(GrpcTelemetryLayer::new(Side::Server, METHODS))
        .add_service(health_service)
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await;
    health_task.abort();
    Ok(result?)
}

/// Keeps the health service's status in step with the room store's reachability.
async fn report_health(rooms: Arc<Rooms>, reporter: tonic_health::server::HealthReporter) {
    let mut serving = None;
    loop {
        let healthy = rooms.check().await.is_ok();
        if serving != Some(healthy) {
            if healthy {
                reporter.set_serving::<RoomServiceServer<RoomApi>>().await;
            } else {
                tracing::warn!("room store unreachable: reporting NOT_SERVING");
                reporter.set_not_serving::<RoomServiceServer<RoomApi>>().await;
            }
            serving = Some(healthy);
        }
        tokio::time::sleep(HEALTH_INTERVAL).await;
    }
}

/// Every method served, for the metrics' `method` label.
pub const METHODS: &[&str] = &[
    "/signaling.room.v1.RoomService/Join",
    "/signaling.room.v1.RoomService/Leave",
    "/signaling.room.v1.RoomService/ListMembers",
    "/signaling.room.v1.RoomService/GetRoom",
    "/signaling.room.v1.RoomService/ListRooms",
    "/signaling.room.v1.RoomService/RemovePeer",
    "/signaling.room.v1.RoomService/SendData",
    "/signaling.room.v1.RoomService/MoveMember",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
];

/// The gRPC service name, as the health service knows it.
pub const SERVICE_NAME: &str = "signaling.room.v1.RoomService";

fn authorize(secret: Option<&str>, request: Request<()>) -> Result<Request<()>, Status> {
    let Some(secret) = secret else { return Ok(request) };
    let presented = request
        .metadata()
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(presented) if constant_time_eq(presented.as_bytes(), secret.as_bytes()) => Ok(request),
        _ => Err(Status::unauthenticated("missing or wrong API secret")),
    }
}

/// Compares without an early exit, so the time taken does not reveal the secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub struct RoomApi {
    rooms: Arc<Rooms>,
}

#[tonic::async_trait]
impl RoomService for RoomApi {
    async fn join(&self, request: Request<JoinRequest>) -> Result<Response<JoinResponse>, Status> {
        let JoinRequest { room, member } = request.into_inner();
        let member = member.ok_or_else(|| Status::invalid_argument("member is required"))?;
        let outcome = self.rooms.join(&room, member).await?;
        Ok(Response::new(JoinResponse { room: Some(outcome.room), members: outcome.members }))
    }

    async fn leave(&self, request: Request<LeaveRequest>) -> Result<Response<LeaveResponse>, Status> {
        let request = request.into_inner();
        let reason = request.reason();
        let owner = Some(request.owner.as_str());
        let removed = self.rooms.leave_if_owner(&request.room, &request.peer_id, owner, reason).await?;
        Ok(Response::new(LeaveResponse { removed }))
    }

    async fn list_members(
        &self,
        request: Request<ListMembersRequest>,
    ) -> Result<Response<ListMembersResponse>, Status> {
        let members = self.rooms.members(&request.into_inner().room).await?;
        Ok(Response::new(ListMembersResponse { members }))
    }

    async fn get_room(&self, request: Request<GetRoomRequest>) -> Result<Response<Room>, Status> {
        Ok(Response::new(self.rooms.room(&request.into_inner().room).await?))
    }

    async fn list_rooms(&self, request: Request<ListRoomsRequest>) -> Result<Response<ListRoomsResponse>, Status> {
        let request = request.into_inner();
        let page = self.rooms.list_rooms(request.limit, Some(&request.page_token)).await?;
        Ok(Response::new(ListRoomsResponse {
            rooms: page.rooms,
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn remove_peer(&self, request: Request<RemovePeerRequest>) -> Result<Response<RemovePeerResponse>, Status> {
        let request = request.into_inner();
        self.rooms.remove_peer(&request.room, &request.peer_id).await?;
        Ok(Response::new(RemovePeerResponse {}))
    }

    async fn move_member(&self, request: Request<MoveMemberRequest>) -> Result<Response<MoveMemberResponse>, Status> {
        let request = request.into_inner();
        let moved =
            self.rooms.move_member(&request.room, &request.peer_id, &request.from_node, &request.to_node).await?;
        Ok(Response::new(MoveMemberResponse { moved }))
    }

    async fn send_data(&self, request: Request<SendDataRequest>) -> Result<Response<SendDataResponse>, Status> {
        let request = request.into_inner();
        self.rooms.send_data(&request.room, &request.data_json).await?;
        Ok(Response::new(SendDataResponse {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_secret_check() {
        let with = |value: &str| {
            let mut request = Request::new(());
            request.metadata_mut().insert("authorization", value.parse().unwrap());
            request
        };
        assert!(authorize(None, Request::new(())).is_ok());
        assert!(authorize(Some("s3cret"), with("Bearer s3cret")).is_ok());
        assert_eq!(authorize(Some("s3cret"), with("Bearer s3cres")).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(authorize(Some("s3cret"), with("s3cret")).unwrap_err().code(), tonic::Code::Unauthenticated);
        assert_eq!(authorize(Some("s3cret"), Request::new(())).unwrap_err().code(), tonic::Code::Unauthenticated);
    }
}
