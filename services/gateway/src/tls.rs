//! TLS served by the gateway itself, for deployments without a TLS-terminating ingress
//! or load balancer in front: the certificate chain and key come from PEM files.

use std::sync::Arc;

use anyhow::Context;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use common::config::TlsConfig;

/// The acceptor for the configured certificate, or `None` when TLS is off.
pub fn acceptor(config: &TlsConfig) -> anyhow::Result<Option<TlsAcceptor>> {
    let (Some(cert_file), Some(key_file)) = (&config.cert_file, &config.key_file) else { return Ok(None) };
    let chain = CertificateDer::pem_file_iter(cert_file)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate chain {}", cert_file.display()))?;
    anyhow::ensure!(!chain.is_empty(), "{} holds no certificate", cert_file.display());
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("reading the private key {}", key_file.display()))?;
    // One crypto provider, named: the process links only `ring`, and rustls' default
    // lookup would fail if another crate ever brought a second one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate does not match the key")?;
    // WebSockets upgrade over HTTP/1.1.
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(server))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_without_files_and_clear_errors_for_bad_ones() {
        assert!(acceptor(&TlsConfig::default()).unwrap().is_none());
        let dir = std::env::temp_dir().join(format!("switchboard-tls-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let one = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        std::fs::write(dir.join("cert.pem"), one.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), one.key_pair.serialize_pem()).unwrap();
        std::fs::write(dir.join("other-key.pem"), other.key_pair.serialize_pem()).unwrap();
        let files =
            |cert: &str, key: &str| TlsConfig { cert_file: Some(dir.join(cert)), key_file: Some(dir.join(key)) };
        let error = |config: TlsConfig| format!("{:#}", acceptor(&config).err().expect("refused"));

        assert!(acceptor(&files("cert.pem", "key.pem")).unwrap().is_some());
        assert!(error(files("cert.pem", "other-key.pem")).contains("does not match the key"));
        assert!(error(files("missing.pem", "key.pem")).contains("missing.pem"));
        assert!(error(files("key.pem", "key.pem")).contains("holds no certificate"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
