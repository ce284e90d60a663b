//! A gateway pinned to RS256 over a real socket: a token signed with the backend's
//! private key gets in; an HS256 token, even one signed with the gateway's old shared
//! secret, is refused with 4001 and says why.

use std::time::Duration;

use gateway::GatewayConfig;
use gateway::auth::{Claims, JwtAlgorithm};
use jsonwebtoken::{EncodingKey, Header};
use protocol::client::{Client, ClientError};
use protocol::{CloseCode, ErrorCode};

use crate::TestCluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rs256_gateway_takes_rs256_tokens_only() {
    let cluster = TestCluster::embedded_with(|config: &mut GatewayConfig| {
        config.auth.algorithm = JwtAlgorithm::RS256;
        config.auth.public_key_file = Some(e2e::repository_path("services/gateway/tests/keys/rsa-public.pem"));
    })
    .await;
    let private_key = std::fs::read(e2e::repository_path("services/gateway/tests/keys/rsa-private.pem")).unwrap();
    let claims = Claims::new("alice", vec!["r".into()], Duration::from_secs(60));
    let token = jsonwebtoken::encode(
        &Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &EncodingKey::from_rsa_pem(&private_key).unwrap(),
    )
    .unwrap();
    let mut alice = Client::connect(&cluster.ws_url(0), Some(&token)).await.expect("an RS256 token gets in");
    alice.join("r", None).await.unwrap();

    // The test clusters' shared secret still signs HS256 tokens; they no longer count.
    match Client::connect(&cluster.ws_url(0), Some(&cluster.token("mallory", &["r"]))).await {
        Err(ClientError::Server { code: ErrorCode::Unauthorized, message }) => {
            assert!(message.contains("signed with HS256, but this gateway only accepts RS256"), "{message}")
        }
        Err(ClientError::Closed { code, .. }) => assert_eq!(code, CloseCode::Unauthorized.code()),
        other => panic!("expected a refusal, got {:?}", other.map(|client| client.peer_id().to_string())),
    }
    alice.ping().await.unwrap();
    cluster.shutdown().await;
}
