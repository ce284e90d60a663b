//! The `gateway` binary's command line: help, token minting, configuration errors.

use std::process::Command;

use gateway::GatewayConfig;
use gateway::auth::Authenticator;

fn gateway() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("GATEWAY_")) {
        command.env_remove(key);
    }
    command
}

#[test]
fn help_names_the_subcommands_and_flags() {
    let output = gateway().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in
        ["serve", "token", "--config", "--redis-url", "--room-service-url", "--admin-listen", "GATEWAY_CONFIG_TOML"]
    {
        assert!(help.contains(expected), "--help lacks {expected}:\n{help}");
    }
}

#[test]
fn token_mints_what_the_gateway_accepts() {
    let output = gateway()
        .args(["token", "--identity", "alice", "--room", "demo", "--name", "Alice", "--ttl", "10m"])
        .env("GATEWAY_AUTH__JWT_SECRET", "cli-secret")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).unwrap();
    let mut config = GatewayConfig::default();
    config.auth.jwt_secret = Some("cli-secret".into());
    let identity = Authenticator::new(&config.auth, false).unwrap().authenticate(Some(token.trim())).unwrap();
    assert_eq!((identity.identity.as_str(), identity.name.as_deref()), ("alice", Some("Alice")));
    assert!(identity.may_join("demo") && !identity.may_join("other"));
}

#[test]
fn token_without_a_secret_says_what_is_missing() {
    let output = gateway().args(["token", "--identity", "alice", "--room", "demo"]).output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("no auth.jwt_secret configured"));
}

#[test]
fn unknown_settings_and_bad_modes_fail_at_start() {
    let output = gateway().env("GATEWAY_WS__MAX_MESSAGE_BYTEZ", "1").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("max_message_bytez"), "unknown keys are named");

    let output =
        gateway().args(["--redis-url", "redis://127.0.0.1:1"]).env("GATEWAY_AUTH__ANONYMOUS", "true").output().unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("anonymous is only allowed in embedded mode"));
}

#[test]
fn the_config_file_may_come_from_the_environment() {
    let dir = std::env::temp_dir().join(format!("gateway-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.toml");
    std::fs::write(&file, "[auth]\njwt_secret = \"from-file\"\n").unwrap();
    let output = gateway()
        .args(["token", "--identity", "bob", "--room", "*"])
        .env("GATEWAY_CONFIG_FILE", &file)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut config = GatewayConfig::default();
    config.auth.jwt_secret = Some("from-file".into());
    let token = String::from_utf8(output.stdout).unwrap();
    assert!(Authenticator::new(&config.auth, false).unwrap().authenticate(Some(token.trim())).unwrap().may_join("any"));
    std::fs::remove_dir_all(dir).unwrap();
}
