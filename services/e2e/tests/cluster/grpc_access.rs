//! The room service's gRPC port with an API secret and TLS, as a gateway and as an
//! intruder see it: the gateway (given the secret and the CA) signals as usual; a
//! caller without the secret gets UNAUTHENTICATED; a plain-text caller gets no answer.

use std::time::Duration;

use cluster_proto::room::room_service_client::RoomServiceClient;
use cluster_proto::room::{JoinRequest, Member};
use gateway::GatewayConfig;
use room_service::RoomsConfig;
use room_service::grpc::Access;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use crate::{TestCluster, expect};

const API_SECRET: &str = "grpc-test-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_service_demands_its_secret_over_tls() {
    let certified = rcgen::generate_simple_self_signed(vec!["room-service.test".to_string()]).unwrap();
    let ca_file = std::env::temp_dir().join(format!("switchboard-grpc-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, certified.cert.pem()).unwrap();
    let access = Access {
        api_secret: Some(API_SECRET.into()),
        tls: Some((certified.cert.pem().into_bytes(), certified.key_pair.serialize_pem().into_bytes())),
    };
    let cluster = TestCluster::redis_with_access(2, RoomsConfig::default(), access, |config: &mut GatewayConfig| {
        config.room_service.api_secret = Some(API_SECRET.into());
        config.room_service.tls_ca_file = Some(ca_file.clone());
        // The URL says 127.0.0.1; the certificate names the service.
        config.room_service.tls_server_name = Some("room-service.test".into());
    })
    .await;

    // Gateways with the secret and the CA: joins go through, peers on both meet.
    let mut alice = cluster.connect(0, "alice", &["r"]).await;
    let mut bob = cluster.connect(1, "bob", &["r"]).await;
    alice.join("r", None).await.unwrap();
    assert_eq!(bob.join("r", None).await.unwrap().len(), 1, "bob finds alice");
    expect::peer_joined(&mut alice, "r").await;

    let addr = cluster.room_service_addr();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(certified.cert.pem()))
        .domain_name("room-service.test");
    let channel = Endpoint::from_shared(format!("https://{addr}")).unwrap().tls_config(tls).unwrap();
    let channel = tokio::time::timeout(Duration::from_secs(5), channel.connect()).await.unwrap().expect("TLS");
    let join = || JoinRequest {
        room: "r".into(),
        member: Some(Member { peer_id: "intruder".into(), identity: "intruder".into(), ..Default::default() }),
    };
    // Over TLS but without the secret, or with a wrong one: refused, nothing joined.
    let mut client = RoomServiceClient::new(channel.clone());
    assert_eq!(client.join(join()).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    let mut wrong = RoomServiceClient::with_interceptor(channel, |mut request: tonic::Request<()>| {
        request.metadata_mut().insert("authorization", "Bearer not-the-secret".parse().unwrap());
        Ok(request)
    });
    assert_eq!(wrong.join(join()).await.unwrap_err().code(), tonic::Code::Unauthenticated);

    // Plain text to the TLS port: no gRPC answer at all.
    let plain = async {
        let channel: Channel = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await?;
        RoomServiceClient::new(channel).join(join()).await.map_err(|status| status.into())
    };
    let outcome: Result<_, Box<dyn std::error::Error + Send + Sync>> =
        tokio::time::timeout(Duration::from_secs(5), plain).await.expect("fails within 5 s");
    assert!(outcome.is_err(), "plain text to a TLS port");

    // The intruder is in no room: a newcomer finds alice and bob only.
    let mut carol = cluster.connect(0, "carol", &["r"]).await;
    let mut present: Vec<String> = carol.join("r", None).await.unwrap().into_iter().map(|peer| peer.identity).collect();
    present.sort();
    assert_eq!(present, ["alice", "bob"]);
    cluster.shutdown().await;
    let _ = std::fs::remove_file(ca_file);
}
