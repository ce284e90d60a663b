//! Layered configuration: defaults, then a TOML file, then a whole TOML document in one
//! environment variable (handy for a Kubernetes ConfigMap), then single settings from
//! the environment, then command-line flags. Later layers win. Unknown keys are errors,
//! so a typo in a setting fails at start-up instead of being ignored.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A certificate and its key, as PEM files, for a service that serves TLS itself. Off
/// unless both are set.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }

    /// Both files or neither.
    pub fn validate(&self, section: &str) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.cert_file.is_some() == self.key_file.is_some(),
            "{section}.cert_file and {section}.key_file go together"
        );
        Ok(())
    }

    /// The certificate chain and the key, as read from their files.
    pub fn read(&self) -> anyhow::Result<Option<(Vec<u8>, Vec<u8>)>> {
        let (Some(cert_file), Some(key_file)) = (&self.cert_file, &self.key_file) else { return Ok(None) };
        let read = |path: &Path| std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()));
        Ok(Some((read(cert_file)?, read(key_file)?)))
    }
}

/// Where one service reads its configuration from.
pub struct Sources<'a, C> {
    /// Environment prefix, e.g. `GATEWAY_`: `GATEWAY_REDIS__URL` sets `redis.url`.
    pub env_prefix: &'a str,
    /// The TOML file given with `--config`, if any; else `<prefix>CONFIG_FILE` is read.
    pub file: Option<&'a Path>,
    /// Settings given as command-line flags, serialized with unset flags skipped.
    pub flags: C,
}

/// Environment variables under the prefix that are not settings: the file path (also a
/// flag) and the whole-document variable.
pub const CONFIG_FILE_VAR: &str = "CONFIG_FILE";
pub const CONFIG_TOML_VAR: &str = "CONFIG_TOML";

/// Loads `T` from its defaults and the given sources.
pub fn load<T, C>(sources: Sources<'_, C>) -> anyhow::Result<T>
where
    T: Default + Serialize + DeserializeOwned,
    C: Serialize,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    let file_from_env = std::env::var_os(format!("{}{CONFIG_FILE_VAR}", sources.env_prefix)).map(PathBuf::from);
    if let Some(file) = sources.file.or(file_from_env.as_deref()) {
        anyhow::ensure!(file.exists(), "configuration file {} does not exist", file.display());
        figment = figment.merge(Toml::file(file));
    }
    let whole_document = format!("{}{CONFIG_TOML_VAR}", sources.env_prefix);
    if let Ok(document) = std::env::var(&whole_document) {
        figment = figment.merge(Toml::string(&document));
    }
    let env = Env::prefixed(sources.env_prefix).split("__").ignore(&[CONFIG_FILE_VAR, CONFIG_TOML_VAR]);
    figment = figment.merge(env).merge(Serialized::defaults(sources.flags));
    figment.extract().map_err(|error| anyhow::anyhow!("invalid configuration: {error}"))
}

/// The configuration as `--check-config` prints it: JSON, with the value at each of
/// `secrets` (dotted paths) replaced when set, and a password in a URL at any of `urls`
/// hidden.
pub fn redacted<T: Serialize>(config: &T, secrets: &[&str], urls: &[&str]) -> serde_json::Value {
    const HIDDEN: &str = "<hidden>";
    let mut value = serde_json::to_value(config).expect("a configuration serializes");
    for path in secrets {
        if let Some(slot) = value.pointer_mut(&format!("/{}", path.replace('.', "/")))
            && !slot.is_null()
        {
            *slot = HIDDEN.into();
        }
    }
    for path in urls {
        if let Some(slot) = value.pointer_mut(&format!("/{}", path.replace('.', "/")))
            && let Some(url) = slot.as_str()
            && let Some((scheme, rest)) = url.split_once("://")
            && let Some((_credentials, host)) = rest.rsplit_once('@')
        {
            *slot = format!("{scheme}://{HIDDEN}@{host}").into();
        }
    }
    value
}

#[cfg(test)]
// figment's Jail closures must return figment's (large) error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Sample {
        name: String,
        nested: Nested,
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Nested {
        size: u32,
        url: Option<String>,
    }

    #[derive(Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    }

    #[test]
    fn layers_file_env_and_flags() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "name = \"file\"\n[nested]\nsize = 3\nurl = \"redis://file\"")?;
            jail.set_env("SAMPLE_NESTED__SIZE", "7");
            let file = Path::new("c.toml");
            let loaded: Sample =
                load(Sources { env_prefix: "SAMPLE_", file: Some(file), flags: Flags { name: None } }).unwrap();
            assert_eq!(loaded.name, "file");
            assert_eq!(loaded.nested, Nested { size: 7, url: Some("redis://file".into()) });

            let loaded: Sample =
                load(Sources { env_prefix: "SAMPLE_", file: Some(file), flags: Flags { name: Some("flag".into()) } })
                    .unwrap();
            assert_eq!(loaded.name, "flag");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SAMPLE_NESTED__SIZ", "7");
            let result: anyhow::Result<Sample> =
                load(Sources { env_prefix: "SAMPLE_", file: None, flags: Flags { name: None } });
            let message = result.unwrap_err().to_string();
            assert!(message.contains("siz"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn redacts_secrets_and_url_passwords_only() {
        let config = serde_json::json!({
            "auth": {"jwt_secret": "s3cret", "leeway": "5s"},
            "turn": {"secret": null},
            "redis": {"url": "redis://user:pw@redis:6379/0"},
            "room_service": {"url": "http://rooms:7070"},
        });
        let shown = redacted(&config, &["auth.jwt_secret", "turn.secret"], &["redis.url", "room_service.url"]);
        assert_eq!(shown["auth"]["jwt_secret"], "<hidden>");
        assert_eq!(shown["auth"]["leeway"], "5s");
        assert!(shown["turn"]["secret"].is_null(), "an unset secret stays visibly unset");
        assert_eq!(shown["redis"]["url"], "redis://<hidden>@redis:6379/0");
        assert_eq!(shown["room_service"]["url"], "http://rooms:7070");
    }
}
