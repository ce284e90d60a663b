//! Short-lived TURN credentials in the scheme coturn calls the "TURN REST API"
//! (`use-auth-secret` with `static-auth-secret`): the gateway and the TURN server share
//! a secret; each credential is valid until the time in its username, and the TURN
//! server checks it without asking anyone.
//!
//! username   = `<expiry, seconds since the Unix epoch>:<identity>`
//! credential = base64(HMAC-SHA1(secret, username))

use base64::Engine;
use hmac::{Hmac, Mac};
use protocol::IceServer;
use sha1::Sha1;

use crate::config::TurnConfig;

/// The username and credential for `identity`, valid until `expires_at` (Unix seconds).
pub fn credentials(secret: &str, identity: &str, expires_at: u64) -> (String, String) {
    let username = format!("{expires_at}:{identity}");
    let mut mac = Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(username.as_bytes());
    let credential = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    (username, credential)
}

/// The TURN entry of a `welcome`, if a shared secret is configured.
pub fn ice_server(config: &TurnConfig, identity: &str) -> Option<IceServer> {
    let secret = config.secret.as_deref()?;
    let (username, credential) = credentials(secret, identity, protocol::token::unix_now() + config.ttl.as_secs());
    Some(IceServer { urls: config.urls.clone(), username: Some(username), credential: Some(credential) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors computed independently (Python's hmac and base64 modules).
    #[test]
    fn known_vectors() {
        assert_eq!(
            credentials("north", "alice", 1_763_769_600),
            ("1763769600:alice".to_string(), "jDu0Y8HAUZv6Yw4Y38S6Fs+Jv70=".to_string())
        );
        assert_eq!(
            credentials("coturn-secret", "user@example.org", 1_700_000_000),
            ("1700000000:user@example.org".to_string(), "khCAFiBn1TE46ddnhGjtwMJQbpQ=".to_string())
        );
    }

    #[test]
    fn credentials_expire_after_the_ttl() {
        let config = TurnConfig {
            secret: Some("s".into()),
            urls: vec!["turn:127.0.0.1:3478".into()],
            ttl: std::time::Duration::from_secs(600),
        };
        let server = ice_server(&config, "bob").unwrap();
        let username = server.username.unwrap();
        let (expiry, identity) = username.split_once(':').unwrap();
        let now = protocol::token::unix_now();
        let expiry: u64 = expiry.parse().unwrap();
        assert!((now + 595..=now + 605).contains(&expiry), "{expiry} vs {now}");
        assert_eq!(identity, "bob");
        assert_eq!(server.credential.unwrap(), credentials("s", "bob", expiry).1);
        assert!(ice_server(&TurnConfig::default(), "bob").is_none(), "no secret, no TURN entry");
    }
}
