//! The room service over gRPC, spread across its replicas.
//!
//! Calls go to the replicas in turn. A call that finds a replica unavailable (refused,
//! reset, past its deadline) is tried again on the next one, and that replica is passed
//! over for a moment. Every call of [`RoomApi`] may be repeated safely, which is what
//! makes this retry sound:
//! - `join` of a member already in the room changes nothing and answers the member list
//!   (the gateway's membership is waiting for the first attempt's `peer_joined`);
//! - `leave` is conditional on the owner: a second one removes nothing;
//! - `move_member` to the node that already holds the member succeeds without a second
//!   marker;
//! - `members` and the health check only read.

use anyhow::Context;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use cluster_proto::room::room_service_client::RoomServiceClient;
use cluster_proto::room::{JoinRequest, LeaveReason, LeaveRequest, ListMembersRequest, Member, MoveMemberRequest};
use common::telemetry::grpc::{GrpcTelemetry, GrpcTelemetryLayer, Side};
use room_service::RoomError;
use room_service::store::JoinOutcome;
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tower::Layer;

use crate::config::RoomServiceClientConfig;
use crate::discovery::Replicas;
use crate::room_api::RoomApi;

/// TLS to the room service: its certificate checked against `room_service.tls_ca_file`,
/// for the name `room_service.tls_server_name` (else the URL's host).
fn client_tls(config: &RoomServiceClientConfig) -> anyhow::Result<Option<ClientTlsConfig>> {
    let Some(ca_file) = &config.tls_ca_file else { return Ok(None) };
    let ca =
        std::fs::read(ca_file).with_context(|| format!("reading room_service.tls_ca_file {}", ca_file.display()))?;
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
    if let Some(name) = &config.tls_server_name {
        tls = tls.domain_name(name.clone());
    }
    Ok(Some(tls))
}

/// How long a replica that failed a call is passed over.
const PASS_OVER: Duration = Duration::from_secs(1);
/// Pause before trying the next replica, times the attempt number.
const RETRY_PAUSE: Duration = Duration::from_millis(25);

type Traced = GrpcTelemetry<Channel>;
type Client = RoomServiceClient<InterceptedService<Traced, BearerSecret>>;

pub struct GrpcRoomApi {
    replicas: Mutex<Pool>,
    next: AtomicUsize,
    attempts: usize,
    secret: Option<MetadataValue<Ascii>>,
    timeout: Duration,
    /// TLS to the replicas, when `room_service.tls_ca_file` is set.
    tls: Option<ClientTlsConfig>,
}

/// Where the replicas are, and a client for each.
struct Pool {
    /// Read before each call.
    discovered: Replicas,
    /// A client per replica, rebuilt when the discovered URLs change (clients of
    /// replicas still listed are kept, with their connections).
    clients: Arc<[Arc<Replica>]>,
}

struct Replica {
    url: String,
    client: Client,
    health: HealthClient<Traced>,
    passed_over_until: Mutex<Option<Instant>>,
}

impl GrpcRoomApi {
    /// Clients of the replicas `discovered` lists, connecting on first use (so a
    /// gateway starts while the room service is still starting); every call gets
    /// `timeout`, and up to `attempts` tries on as many replicas.
    pub fn new(discovered: Replicas, config: &RoomServiceClientConfig) -> anyhow::Result<Self> {
        let secret = config
            .api_secret
            .as_ref()
            .map(|secret| format!("Bearer {secret}").parse())
            .transpose()
            .map_err(|_| anyhow::anyhow!("room_service.api_secret must be printable ASCII"))?;
        let api = Self {
            replicas: Mutex::new(Pool { discovered, clients: Arc::from([]) }),
            next: AtomicUsize::new(0),
            attempts: config.attempts.max(1),
            secret,
            timeout: config.timeout,
            tls: client_tls(config)?,
        };
        let mut replicas = lock(&api.replicas);
        let urls = replicas.discovered.borrow_and_update().clone();
        api.rebuild(&mut replicas, &urls);
        drop(replicas);
        Ok(api)
    }

    /// The URLs of the replicas calls go to now.
    pub fn replica_urls(&self) -> Vec<String> {
        self.current().iter().map(|replica| replica.url.clone()).collect()
    }

    /// The replicas, brought up to date with discovery first.
    fn current(&self) -> Arc<[Arc<Replica>]> {
        let mut replicas = lock(&self.replicas);
        if replicas.discovered.has_changed().unwrap_or(false) {
            let urls = replicas.discovered.borrow_and_update().clone();
            self.rebuild(&mut replicas, &urls);
        }
        replicas.clients.clone()
    }

    fn rebuild(&self, replicas: &mut Pool, urls: &[String]) {
        let rebuilt: Vec<Arc<Replica>> = urls
            .iter()
            .filter_map(|url| match replicas.clients.iter().find(|replica| replica.url == *url) {
                Some(kept) => Some(kept.clone()),
                None => self.replica(url).inspect_err(|error| tracing::warn!(url, %error, "unusable replica URL")).ok(),
            })
            .collect();
        replicas.clients = rebuilt.into();
    }

    fn replica(&self, url: &str) -> anyhow::Result<Arc<Replica>> {
        // Discovery yields `http://` URLs of pod addresses: with TLS on, every replica is
        // dialed with it.
        let dialed = match (&self.tls, url.strip_prefix("http://")) {
            (Some(_), Some(rest)) => format!("https://{rest}"),
            _ => url.to_string(),
        };
        let mut endpoint = Endpoint::from_shared(dialed)?;
        if let Some(tls) = &self.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        let channel = endpoint.connect_timeout(self.timeout).timeout(self.timeout).tcp_nodelay(true).connect_lazy();
        let traced = GrpcTelemetryLayer::new(Side::Client, room_service::grpc::METHODS).layer(channel);
        Ok(Arc::new(Replica {
            url: url.to_string(),
            client: RoomServiceClient::with_interceptor(traced.clone(), BearerSecret(self.secret.clone())),
            health: HealthClient::new(traced),
            passed_over_until: Mutex::new(None),
        }))
    }

    /// Runs `call` on the next replica, and again on the following ones while the answer
    /// is `unavailable`, up to the configured attempts.
    async fn call<T, F, Fut>(&self, call: F) -> Result<T, RoomError>
    where
        F: Fn(&Replica) -> Fut,
        Fut: Future<Output = Result<T, RoomError>>,
    {
        let mut attempt = 0;
        loop {
            let Some(replica) = self.pick() else {
                return Err(RoomError::Unavailable("no room-service replica is known".into()));
            };
            match call(&replica).await {
                Err(RoomError::Unavailable(message)) if attempt + 1 < self.attempts => {
                    tracing::debug!(replica = replica.url, %message, "room service replica unavailable; trying the next");
                    *lock(&replica.passed_over_until) = Some(Instant::now() + PASS_OVER);
                    attempt += 1;
                    tokio::time::sleep(RETRY_PAUSE * attempt as u32).await;
                }
                Err(RoomError::Unavailable(message)) => {
                    *lock(&replica.passed_over_until) = Some(Instant::now() + PASS_OVER);
                    return Err(RoomError::Unavailable(message));
                }
                other => return other,
            }
        }
    }

    /// The next replica in turn that is not passed over (or, if all are, the next one).
    fn pick(&self) -> Option<Arc<Replica>> {
        let replicas = self.current();
        let count = replicas.len();
        if count == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let chosen = (0..count)
            .map(|offset| &replicas[(start + offset) % count])
            .find(|replica| lock(&replica.passed_over_until).is_none_or(|until| until <= now))
            .unwrap_or(&replicas[start % count]);
        Some(chosen.clone())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl RoomApi for GrpcRoomApi {
    async fn join(&self, room: &str, member: Member) -> Result<JoinOutcome, RoomError> {
        let request = JoinRequest { room: room.to_string(), member: Some(member) };
        self.call(|replica| {
            let (mut client, request) = (replica.client.clone(), request.clone());
            async move {
                let response = client.join(request).await?.into_inner();
                Ok(JoinOutcome { room: response.room.unwrap_or_default(), members: response.members })
            }
        })
        .await
    }

    async fn leave(&self, room: &str, peer_id: &str, owner: &str, reason: LeaveReason) -> Result<bool, RoomError> {
        let request = LeaveRequest {
            room: room.to_string(),
            peer_id: peer_id.to_string(),
            reason: reason as i32,
            owner: owner.to_string(),
        };
        self.call(|replica| {
            let (mut client, request) = (replica.client.clone(), request.clone());
            async move { Ok(client.leave(request).await?.into_inner().removed) }
        })
        .await
    }

    async fn move_member(&self, room: &str, peer_id: &str, from: &str, to: &str) -> Result<bool, RoomError> {
        let request = MoveMemberRequest {
            room: room.to_string(),
            peer_id: peer_id.to_string(),
            from_node: from.to_string(),
            to_node: to.to_string(),
        };
        self.call(|replica| {
            let (mut client, request) = (replica.client.clone(), request.clone());
            async move { Ok(client.move_member(request).await?.into_inner().moved) }
        })
        .await
    }

    async fn members(&self, room: &str) -> Result<Vec<Member>, RoomError> {
        let request = ListMembersRequest { room: room.to_string() };
        self.call(|replica| {
            let (mut client, request) = (replica.client.clone(), request.clone());
            async move {
                match client.list_members(request).await {
                    Ok(response) => Ok(response.into_inner().members),
                    Err(status) if status.code() == tonic::Code::NotFound => Ok(Vec::new()),
                    Err(status) => Err(status.into()),
                }
            }
        })
        .await
    }

    /// Ready when one replica serves.
    async fn check(&self) -> Result<(), RoomError> {
        self.call(|replica| {
            let mut health = replica.health.clone();
            async move {
                let request = HealthCheckRequest { service: room_service::grpc::SERVICE_NAME.to_string() };
                match health.check(request).await?.into_inner().status() {
                    ServingStatus::Serving => Ok(()),
                    other => Err(RoomError::Unavailable(format!("room service reports {}", other.as_str_name()))),
                }
            }
        })
        .await
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
