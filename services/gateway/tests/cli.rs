//! The `gateway` binary's command line: help, token minting, configuration errors.

use std::process::Command;

use gateway::GatewayConfig;
use gateway::auth::Authenticator;

fn gateway() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    command.env_remove("GATEWAY_AUTH__JWT_SECRET").env_remove("GATEWAY_REDIS__URL");
    command
}

#[test]
fn help_names_the_subcommands_and_flags() {
    let output = gateway().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for expected in ["serve", "token", "--config", "--redis-url", "--room-service-url", "GATEWAY_CONFIG_TOML"] {
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
    let identity = Authenticator::new(&config.auth, false).authenticate(Some(token.trim())).unwrap();
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
