//! Client tokens: the JWT claims a gateway accepts (docs/protocol.md, "Authentication")
//! and HS256 signing, for what mints tokens with a shared secret: an application's
//! backend written in Rust, the gateway's `token` command, the load tester and the tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// The claims of a client token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    /// The identity of the user, shown to other peers.
    pub sub: String,
    /// Display name, shown to other peers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Rooms the token may join; `"*"` allows any room.
    pub rooms: Vec<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Not valid before, seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

impl Claims {
    /// Claims for `identity` valid from now for `ttl`.
    pub fn new(identity: impl Into<String>, rooms: Vec<String>, ttl: Duration) -> Self {
        let now = unix_now();
        Self { sub: identity.into(), name: None, rooms, exp: now + ttl.as_secs(), nbf: None, iat: Some(now) }
    }
}

/// Signs claims with an HS256 secret.
pub fn mint(secret: &str, claims: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &EncodingKey::from_secret(secret.as_bytes()))
        .expect("HS256 signing of serializable claims cannot fail")
}

/// Seconds since the Unix epoch (0 on a clock set before it).
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
