//! Validation of the names a client may send: room names, peer ids, signal kinds.
//!
//! The charsets are deliberately narrow. Room names end up in Redis keys and channel
//! names, where `{` and `}` would change the hash slot in Redis Cluster, and in logs.

/// Longest room name, in bytes.
pub const MAX_ROOM_NAME_LEN: usize = 128;
/// Longest peer id, in bytes (server-assigned ids are far shorter).
pub const MAX_PEER_ID_LEN: usize = 64;
/// Longest signal kind, in bytes.
pub const MAX_SIGNAL_KIND_LEN: usize = 64;

/// Checks a room name: 1 to 128 bytes of `A-Z a-z 0-9 _ - . : @ ~ = +`.
pub fn validate_room_name(name: &str) -> Result<(), String> {
    validate(name, "room name", MAX_ROOM_NAME_LEN, |c| c.is_ascii_alphanumeric() || "_-.:@~=+".contains(c))
}

/// Checks a peer id: 1 to 64 bytes of `A-Z a-z 0-9 _ -`.
pub fn validate_peer_id(id: &str) -> Result<(), String> {
    validate(id, "peer id", MAX_PEER_ID_LEN, |c| c.is_ascii_alphanumeric() || "_-".contains(c))
}

/// Checks a signal kind: 1 to 64 bytes of `A-Z a-z 0-9 _ - . :`.
pub fn validate_signal_kind(kind: &str) -> Result<(), String> {
    validate(kind, "signal kind", MAX_SIGNAL_KIND_LEN, |c| c.is_ascii_alphanumeric() || "_-.:".contains(c))
}

fn validate(value: &str, what: &str, max_len: usize, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{what} must not be empty"));
    }
    if value.len() > max_len {
        return Err(format!("{what} is longer than {max_len} bytes"));
    }
    if let Some(bad) = value.chars().find(|&c| !allowed(c)) {
        return Err(format!("{what} contains the character {bad:?}, which is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(validate_room_name("demo").is_ok());
        assert!(validate_room_name("team-7:standup@2026.11").is_ok());
        assert!(validate_room_name("").is_err());
        assert!(validate_room_name("a{b}").is_err());
        assert!(validate_room_name("has space").is_err());
        assert!(validate_room_name(&"x".repeat(MAX_ROOM_NAME_LEN)).is_ok());
        assert!(validate_room_name(&"x".repeat(MAX_ROOM_NAME_LEN + 1)).is_err());
        assert!(validate_room_name("é").is_err());
    }

    #[test]
    fn kinds_and_peer_ids() {
        assert!(validate_signal_kind("end_of_candidates").is_ok());
        assert!(validate_signal_kind("app:mute").is_ok());
        assert!(validate_signal_kind("a b").is_err());
        assert!(validate_peer_id("p_0123abcd").is_ok());
        assert!(validate_peer_id("../etc").is_err());
    }
}
