//! The keys that client tokens are checked with, and the one algorithm they must use.
//!
//! Pinning the algorithm is what makes asymmetric keys safe: a token's header names its
//! own algorithm, and a verifier that believed it could be told to check an "HS256"
//! token with the RSA public key as the HMAC secret (which anyone has), or a token
//! signed with `none`. Here the configuration says the algorithm; a token naming any
//! other is refused before any key is tried.

use std::path::Path;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};

/// The algorithms client tokens may be configured to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `auth.jwt_secret`, shared with the application's backend.
    HS256,
    /// RSA PKCS#1 v1.5 with SHA-256: the backend keeps the private key, the gateways
    /// get the public key.
    RS256,
    /// ECDSA P-256 with SHA-256, likewise.
    ES256,
}

impl JwtAlgorithm {
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::RS256 => Algorithm::RS256,
            Self::ES256 => Algorithm::ES256,
        }
    }
}

/// A key that may check tokens, with the key id (`kid`) it answers to, if any.
pub struct VerifyingKey {
    pub kid: Option<String>,
    pub key: DecodingKey,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} is not a {algorithm:?} public key in PEM: {source}")]
    Pem { path: String, algorithm: JwtAlgorithm, source: jsonwebtoken::errors::Error },
    #[error("{path} is not a JWKS document: {source}")]
    Jwks { path: String, source: serde_json::Error },
    #[error("{path} holds no {algorithm:?} key usable for signatures")]
    NoKey { path: String, algorithm: JwtAlgorithm },
}

/// The public key in a PEM file.
pub fn from_pem_file(path: &Path, algorithm: JwtAlgorithm) -> Result<VerifyingKey, KeyError> {
    let pem = read(path)?;
    let key = match algorithm {
        JwtAlgorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
        JwtAlgorithm::ES256 => DecodingKey::from_ec_pem(&pem),
        JwtAlgorithm::HS256 => unreachable!("HS256 uses a secret, not a key file"),
    };
    let key = key.map_err(|source| KeyError::Pem { path: path.display().to_string(), algorithm, source })?;
    Ok(VerifyingKey { kid: None, key })
}

/// The keys of a JWKS document (RFC 7517) that fit `algorithm`: its type matches, and
/// its `alg` and `use`, when present, say this algorithm and signatures.
pub fn from_jwks_file(path: &Path, algorithm: JwtAlgorithm) -> Result<Vec<VerifyingKey>, KeyError> {
    let text = read(path)?;
    let set: JwkSet =
        serde_json::from_slice(&text).map_err(|source| KeyError::Jwks { path: path.display().to_string(), source })?;
    let keys: Vec<VerifyingKey> = set
        .keys
        .iter()
        .filter(|jwk| fits(jwk, algorithm))
        .filter_map(|jwk| {
            let key = DecodingKey::from_jwk(jwk).ok()?;
            Some(VerifyingKey { kid: jwk.common.key_id.clone(), key })
        })
        .collect();
    if keys.is_empty() {
        return Err(KeyError::NoKey { path: path.display().to_string(), algorithm });
    }
    Ok(keys)
}

fn fits(jwk: &jsonwebtoken::jwk::Jwk, algorithm: JwtAlgorithm) -> bool {
    use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, KeyAlgorithm, PublicKeyUse};
    let kind_fits = match (&jwk.algorithm, algorithm) {
        (AlgorithmParameters::RSA(_), JwtAlgorithm::RS256) => true,
        (AlgorithmParameters::EllipticCurve(ec), JwtAlgorithm::ES256) => ec.curve == EllipticCurve::P256,
        _ => false,
    };
    let alg_fits = match jwk.common.key_algorithm {
        None => true,
        Some(KeyAlgorithm::RS256) => algorithm == JwtAlgorithm::RS256,
        Some(KeyAlgorithm::ES256) => algorithm == JwtAlgorithm::ES256,
        Some(_) => false,
    };
    let use_fits = matches!(jwk.common.public_key_use, None | Some(PublicKeyUse::Signature));
    kind_fits && alg_fits && use_fits
}

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read { path: path.display().to_string(), source })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use jsonwebtoken::jwk::Jwk;
    use jsonwebtoken::{EncodingKey, Header};
    use protocol::token::unix_now;

    use super::*;
    use crate::auth::{AuthError, Authenticator, Claims};
    use crate::config::AuthConfig;

    fn key_file(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/keys").join(name)
    }

    fn private_key(algorithm: JwtAlgorithm) -> EncodingKey {
        match algorithm {
            JwtAlgorithm::RS256 => EncodingKey::from_rsa_pem(include_bytes!("../../tests/keys/rsa-private.pem")),
            JwtAlgorithm::ES256 => EncodingKey::from_ec_pem(include_bytes!("../../tests/keys/ec-private.pem")),
            JwtAlgorithm::HS256 => Ok(EncodingKey::from_secret(b"shared")),
        }
        .unwrap()
    }

    fn sign(algorithm: JwtAlgorithm, kid: Option<&str>, claims: &Claims) -> String {
        let mut header = Header::new(algorithm.algorithm());
        header.kid = kid.map(str::to_string);
        jsonwebtoken::encode(&header, claims, &private_key(algorithm)).unwrap()
    }

    fn claims() -> Claims {
        Claims::new("alice", vec!["demo".into()], Duration::from_secs(60))
    }

    fn pinned(algorithm: JwtAlgorithm, public_key: &str) -> Authenticator {
        let config = AuthConfig { algorithm, public_key_file: Some(key_file(public_key)), ..AuthConfig::default() };
        Authenticator::new(&config, false).unwrap()
    }

    #[test]
    fn rs256_and_es256_tokens_are_checked_with_the_public_key_and_the_leeway() {
        for (algorithm, public_key) in [(JwtAlgorithm::RS256, "rsa-public.pem"), (JwtAlgorithm::ES256, "ec-public.pem")]
        {
            let auth = pinned(algorithm, public_key);
            let check = |claims: &Claims| auth.authenticate(Some(&sign(algorithm, None, claims)));
            assert_eq!(check(&claims()).unwrap().identity, "alice", "{algorithm:?}");
            // The default leeway is 5 s, either way.
            let now = unix_now();
            assert!(check(&Claims { exp: now - 3, ..claims() }).is_ok(), "expired within the leeway");
            assert_eq!(check(&Claims { exp: now - 30, ..claims() }), Err(AuthError::Expired));
            assert!(check(&Claims { nbf: Some(now + 3), ..claims() }).is_ok(), "early within the leeway");
            assert_eq!(check(&Claims { nbf: Some(now + 30), ..claims() }), Err(AuthError::NotYetValid));
        }
        // A signature by another key of the right algorithm.
        let auth = pinned(JwtAlgorithm::ES256, "ec-public.pem");
        let other = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::ES256),
            &claims(),
            &EncodingKey::from_ec_der(rcgen::KeyPair::generate().unwrap().serialized_der()),
        )
        .unwrap();
        assert_eq!(auth.authenticate(Some(&other)), Err(AuthError::BadSignature));
    }

    #[test]
    fn the_algorithm_is_the_configured_one_whatever_the_token_says() {
        let rs = pinned(JwtAlgorithm::RS256, "rsa-public.pem");
        let wrong = |result: Result<_, AuthError>| matches!(result, Err(AuthError::WrongAlgorithm { .. }));
        // Algorithm confusion: HS256 "signed" with the public key, which anyone has.
        let public_pem = std::fs::read(key_file("rsa-public.pem")).unwrap();
        let confused = jsonwebtoken::encode(&Header::default(), &claims(), &EncodingKey::from_secret(&public_pem));
        assert!(wrong(rs.authenticate(Some(&confused.unwrap()))), "HS256 with the public key as secret");
        assert!(wrong(rs.authenticate(Some(&sign(JwtAlgorithm::ES256, None, &claims())))), "another algorithm");
        // `none`: no signature at all.
        use base64::Engine;
        let encode = |json: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json);
        let unsigned = format!(
            "{}.{}.",
            encode(r#"{"alg":"none","typ":"JWT"}"#),
            encode(&serde_json::to_string(&claims()).unwrap())
        );
        let refused = rs.authenticate(Some(&unsigned));
        assert!(matches!(refused, Err(AuthError::Malformed(_))), "alg none: {refused:?}");

        let hs = Authenticator::new(&AuthConfig { jwt_secret: Some("shared".into()), ..AuthConfig::default() }, false)
            .unwrap();
        assert_eq!(hs.authenticate(Some(&sign(JwtAlgorithm::HS256, None, &claims()))).unwrap().identity, "alice");
        assert!(wrong(hs.authenticate(Some(&sign(JwtAlgorithm::RS256, None, &claims())))), "RS256 to an HS256 gateway");
    }

    #[test]
    fn jwks_keys_of_the_algorithm_are_picked_by_kid() {
        let jwk = |algorithm: JwtAlgorithm, kid: &str| {
            let mut jwk = Jwk::from_encoding_key(&private_key(algorithm), algorithm.algorithm()).unwrap();
            jwk.common.key_id = Some(kid.to_string());
            jwk
        };
        let set = JwkSet { keys: vec![jwk(JwtAlgorithm::RS256, "r1"), jwk(JwtAlgorithm::ES256, "e1")] };
        let path = std::env::temp_dir().join(format!("switchboard-jwks-{}.json", std::process::id()));
        std::fs::write(&path, serde_json::to_string(&set).unwrap()).unwrap();
        let config = |algorithm| AuthConfig { algorithm, jwks_file: Some(path.clone()), ..AuthConfig::default() };

        let rs = Authenticator::new(&config(JwtAlgorithm::RS256), false).unwrap();
        assert!(rs.authenticate(Some(&sign(JwtAlgorithm::RS256, Some("r1"), &claims()))).is_ok());
        assert!(rs.authenticate(Some(&sign(JwtAlgorithm::RS256, None, &claims()))).is_ok(), "no kid: any key");
        assert_eq!(
            rs.authenticate(Some(&sign(JwtAlgorithm::RS256, Some("r9"), &claims()))),
            Err(AuthError::UnknownKey("r9".into()))
        );
        let es = Authenticator::new(&config(JwtAlgorithm::ES256), false).unwrap();
        assert!(es.authenticate(Some(&sign(JwtAlgorithm::ES256, Some("e1"), &claims()))).is_ok());
        assert_eq!(
            es.authenticate(Some(&sign(JwtAlgorithm::ES256, Some("r1"), &claims()))),
            Err(AuthError::UnknownKey("r1".into())),
            "the RSA key is not an ES256 key"
        );

        std::fs::write(&path, serde_json::to_string(&JwkSet { keys: vec![jwk(JwtAlgorithm::ES256, "e1")] }).unwrap())
            .unwrap();
        let error = Authenticator::new(&config(JwtAlgorithm::RS256), false).err().expect("no RS256 key");
        assert!(matches!(error, KeyError::NoKey { .. }), "{error}");
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(Authenticator::new(&config(JwtAlgorithm::RS256), false), Err(KeyError::Jwks { .. })));
        let _ = std::fs::remove_file(path);
        let pem_mismatch = AuthConfig {
            algorithm: JwtAlgorithm::RS256,
            public_key_file: Some(key_file("ec-public.pem")),
            ..AuthConfig::default()
        };
        assert!(matches!(Authenticator::new(&pem_mismatch, false), Err(KeyError::Pem { .. })), "an EC key for RS256");
    }
}
