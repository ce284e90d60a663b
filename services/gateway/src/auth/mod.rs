//! Client authentication: JWTs minted by the application's backend (HS256 with a shared
//! secret, or RS256/ES256 checked with public keys, see [`keys`]), or anonymous access
//! in embedded development setups.

pub mod keys;

use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use keys::VerifyingKey;
pub use keys::{JwtAlgorithm, KeyError};
use protocol::names::validate_room_name;
pub use protocol::token::{Claims, mint};

use crate::config::AuthConfig;

/// The room grant that allows every room.
pub const ANY_ROOM: &str = "*";
/// Longest identity or display name, in bytes.
pub const MAX_IDENTITY_LEN: usize = 128;

/// Who a connection is, once authenticated.
#[derive(Debug, Clone, PartialEq)]
pub struct Identity {
    pub identity: String,
    pub name: Option<String>,
    grants: RoomGrants,
}

#[derive(Debug, Clone, PartialEq)]
enum RoomGrants {
    Any,
    Only(Vec<String>),
}

impl Identity {
    /// An identity restored from a session record (a resume).
    pub fn restore(identity: String, name: Option<String>, grants: Vec<String>) -> Self {
        let grants =
            if grants.iter().any(|room| room == ANY_ROOM) { RoomGrants::Any } else { RoomGrants::Only(grants) };
        Self { identity, name, grants }
    }

    /// The room grants, as a session record keeps them (`*` for any).
    pub fn grants(&self) -> Vec<String> {
        match &self.grants {
            RoomGrants::Any => vec![ANY_ROOM.to_string()],
            RoomGrants::Only(rooms) => rooms.clone(),
        }
    }

    pub fn may_join(&self, room: &str) -> bool {
        match &self.grants {
            RoomGrants::Any => true,
            RoomGrants::Only(rooms) => rooms.iter().any(|granted| granted == room),
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("a token is required")]
    Missing,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token is signed with {got}, but this gateway only accepts {expected}")]
    WrongAlgorithm { got: String, expected: String },
    #[error("the token names a key (kid {0:?}) this gateway does not have")]
    UnknownKey(String),
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token's claims are invalid: {0}")]
    InvalidClaims(String),
}

impl AuthError {
    /// A short fixed name of the reason, for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::BadSignature => "bad_signature",
            Self::WrongAlgorithm { .. } => "wrong_algorithm",
            Self::UnknownKey(_) => "unknown_key",
            Self::Malformed(_) => "malformed",
            Self::InvalidClaims(_) => "invalid_claims",
        }
    }
}

/// Checks tokens against the configured keys, with the configured algorithm only.
pub struct Authenticator {
    algorithm: Algorithm,
    keys: Vec<VerifyingKey>,
    validation: Validation,
    /// While anonymous access is on: development tokens (see [`Self::mint_dev_token`]).
    dev: Option<DevKey>,
    anonymous: bool,
}

/// A random HS256 secret made at start-up for development tokens. Never the configured
/// secret: development tokens must not be valid anywhere else.
struct DevKey {
    secret: String,
    key: DecodingKey,
    validation: Validation,
}

impl Authenticator {
    pub fn new(config: &AuthConfig, anonymous: bool) -> Result<Self, KeyError> {
        let algorithm = config.algorithm;
        let keys = match (algorithm, &config.public_key_file, &config.jwks_file) {
            (JwtAlgorithm::HS256, _, _) => config
                .jwt_secret
                .iter()
                .map(|secret| VerifyingKey { kid: None, key: DecodingKey::from_secret(secret.as_bytes()) })
                .collect(),
            (_, Some(path), _) => vec![keys::from_pem_file(path, algorithm)?],
            (_, None, Some(path)) => keys::from_jwks_file(path, algorithm)?,
            (_, None, None) => Vec::new(),
        };
        let dev = anonymous.then(|| {
            let secret = format!("dev-{:032x}", rand::random::<u128>());
            let key = DecodingKey::from_secret(secret.as_bytes());
            DevKey { key, secret, validation: validation(Algorithm::HS256, Duration::ZERO) }
        });
        let algorithm = algorithm.algorithm();
        Ok(Self { algorithm, keys, validation: validation(algorithm, config.leeway), dev, anonymous })
    }

    pub fn anonymous_allowed(&self) -> bool {
        self.anonymous
    }

    /// A token for development use, only while anonymous access is on (then anyone may
    /// connect and join any room anyway, so this grants nothing new). It is signed with
    /// this process's development secret and is valid on this gateway only.
    pub fn mint_dev_token(&self, claims: &Claims) -> Option<String> {
        self.dev.as_ref().map(|dev| mint(&dev.secret, claims))
    }

    /// Authenticates a connection from the token it presented, if any.
    pub fn authenticate(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        let Some(token) = token.filter(|token| !token.is_empty()) else {
            return if self.anonymous { Ok(anonymous_identity()) } else { Err(AuthError::Missing) };
        };
        // An unreadable header, or one naming an algorithm nobody supports (`none`).
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Malformed(format!("header: {e}")))?;
        // The header names the algorithm and maybe the key; neither is trusted, they
        // only pick among what the configuration allows.
        let mut candidates: Vec<(&DecodingKey, &Validation)> = Vec::new();
        if header.alg == self.algorithm {
            let named = |key: &&VerifyingKey| match (&header.kid, &key.kid) {
                (Some(wanted), Some(kid)) => wanted == kid,
                _ => true,
            };
            candidates.extend(self.keys.iter().filter(named).map(|key| (&key.key, &self.validation)));
            if candidates.is_empty()
                && let Some(kid) = &header.kid
            {
                return Err(AuthError::UnknownKey(kid.clone()));
            }
        }
        if let Some(dev) = self.dev.as_ref().filter(|_| header.alg == Algorithm::HS256) {
            candidates.push((&dev.key, &dev.validation));
        }
        if candidates.is_empty() {
            let expected = format!("{:?}", self.algorithm);
            return Err(AuthError::WrongAlgorithm { got: format!("{:?}", header.alg), expected });
        }
        // The signature is checked before the claims, so only the key that signed the
        // token can report anything but a bad signature.
        let mut outcome = Err(AuthError::BadSignature);
        for (key, validation) in candidates {
            outcome = jsonwebtoken::decode::<Claims>(token, key, validation).map_err(|e| auth_error(&e));
            if !matches!(outcome, Err(AuthError::BadSignature)) {
                break;
            }
        }
        identity_from(outcome?.claims)
    }
}

/// What every token must satisfy besides its signature: `exp` present and not past,
/// `nbf` not in the future, both with `leeway` for clocks that disagree.
fn validation(algorithm: Algorithm, leeway: Duration) -> Validation {
    let mut validation = Validation::new(algorithm);
    validation.leeway = leeway.as_secs();
    validation.validate_nbf = true;
    validation
}

fn auth_error(error: &jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => AuthError::BadSignature,
        ErrorKind::MissingRequiredClaim(_) | ErrorKind::InvalidClaimFormat(_) | ErrorKind::Json(_) => {
            AuthError::InvalidClaims(error.to_string())
        }
        _ => AuthError::Malformed(error.to_string()),
    }
}

fn identity_from(claims: Claims) -> Result<Identity, AuthError> {
    let invalid = |message: String| Err(AuthError::InvalidClaims(message));
    if claims.sub.is_empty() || claims.sub.len() > MAX_IDENTITY_LEN {
        return invalid(format!("sub must be 1 to {MAX_IDENTITY_LEN} bytes"));
    }
    if claims.name.as_ref().is_some_and(|name| name.len() > MAX_IDENTITY_LEN) {
        return invalid(format!("name must be at most {MAX_IDENTITY_LEN} bytes"));
    }
    let grants = if claims.rooms.iter().any(|room| room == ANY_ROOM) {
        RoomGrants::Any
    } else {
        for room in &claims.rooms {
            validate_room_name(room).map_err(|e| AuthError::InvalidClaims(format!("rooms: {e}")))?;
        }
        RoomGrants::Only(claims.rooms)
    };
    Ok(Identity { identity: claims.sub, name: claims.name, grants })
}

fn anonymous_identity() -> Identity {
    Identity { identity: format!("anon-{:08x}", rand::random::<u32>()), name: None, grants: RoomGrants::Any }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use protocol::token::unix_now;

    use super::*;

    const SECRET: &str = "test-secret";

    fn authenticator(anonymous: bool) -> Authenticator {
        let config = AuthConfig { jwt_secret: Some(SECRET.into()), ..AuthConfig::default() };
        Authenticator::new(&config, anonymous).unwrap()
    }

    #[test]
    fn accepts_a_valid_token_and_enforces_its_rooms() {
        let mut claims = Claims::new("alice", vec!["demo".into()], Duration::from_secs(60));
        claims.name = Some("Alice".into());
        let identity = authenticator(false).authenticate(Some(&mint(SECRET, &claims))).unwrap();
        assert_eq!((identity.identity.as_str(), identity.name.as_deref()), ("alice", Some("Alice")));
        assert!(identity.may_join("demo"));
        assert!(!identity.may_join("other"));

        let any = Claims::new("bob", vec![ANY_ROOM.into()], Duration::from_secs(60));
        assert!(authenticator(false).authenticate(Some(&mint(SECRET, &any))).unwrap().may_join("other"));
    }

    #[test]
    fn rejects_bad_tokens_with_a_reason() {
        let auth = authenticator(false);
        let valid = Claims::new("alice", vec!["demo".into()], Duration::from_secs(60));
        assert_eq!(auth.authenticate(None), Err(AuthError::Missing));
        assert_eq!(auth.authenticate(Some(&mint("other-secret", &valid))), Err(AuthError::BadSignature));
        let expired = Claims { exp: unix_now() - 60, ..valid.clone() };
        assert_eq!(auth.authenticate(Some(&mint(SECRET, &expired))), Err(AuthError::Expired));
        let early = Claims { nbf: Some(unix_now() + 600), ..valid.clone() };
        assert_eq!(auth.authenticate(Some(&mint(SECRET, &early))), Err(AuthError::NotYetValid));
        assert!(matches!(auth.authenticate(Some("not.a.jwt")), Err(AuthError::Malformed(_))));
        let bad_room = Claims { rooms: vec!["a{b}".into()], ..valid.clone() };
        assert!(matches!(auth.authenticate(Some(&mint(SECRET, &bad_room))), Err(AuthError::InvalidClaims(_))));
        let no_sub = Claims { sub: String::new(), ..valid };
        assert!(matches!(auth.authenticate(Some(&mint(SECRET, &no_sub))), Err(AuthError::InvalidClaims(_))));
    }

    #[test]
    fn anonymous_access_when_allowed() {
        let identity = authenticator(true).authenticate(None).unwrap();
        assert!(identity.identity.starts_with("anon-"));
        assert!(identity.may_join("anything"));
        let dev = Authenticator::new(&AuthConfig::default(), true).unwrap();
        let claims = Claims::new("dev", vec!["r".into()], Duration::from_secs(60));
        let token = dev.mint_dev_token(&claims).unwrap();
        assert_eq!(dev.authenticate(Some(&token)).unwrap().identity, "dev", "dev tokens are accepted");
        assert!(authenticator(false).mint_dev_token(&claims).is_none());
    }

    #[test]
    fn development_tokens_are_never_signed_with_the_configured_secret() {
        let both = authenticator(true);
        let dev_token = both.mint_dev_token(&Claims::new("dev", vec!["r".into()], Duration::from_secs(60))).unwrap();
        assert_eq!(both.authenticate(Some(&dev_token)).unwrap().identity, "dev");
        assert_eq!(authenticator(false).authenticate(Some(&dev_token)), Err(AuthError::BadSignature));
        let real = mint(SECRET, &Claims::new("real", vec!["r".into()], Duration::from_secs(60)));
        assert_eq!(both.authenticate(Some(&real)).unwrap().identity, "real", "configured tokens still work");
        let expired = mint(SECRET, &Claims { exp: unix_now() - 60, ..Claims::new("late", vec![], Duration::ZERO) });
        assert_eq!(both.authenticate(Some(&expired)), Err(AuthError::Expired), "not masked by the second key");
    }
}
