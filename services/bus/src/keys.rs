//! Names of bus channels and Redis keys.
//!
//! Every name of a room carries the room in a Redis Cluster hash tag (`{room}`), so the
//! room's keys and its channel hash to one slot: the room store's scripts can touch
//! them atomically and publish on the channel in the same step. Room names cannot
//! contain braces (see `protocol::names`), so a tag always holds exactly the room.

/// Builds names under a configurable prefix, so that several deployments (or test
/// runs) can share one Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyspace {
    prefix: String,
}

impl Keyspace {
    pub fn new(prefix: impl Into<String>) -> Self {
        Self { prefix: prefix.into() }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The pub/sub channel of a room: `<prefix>room:{<room>}`.
    pub fn room_channel(&self, room: &str) -> String {
        format!("{}room:{{{room}}}", self.prefix)
    }

    /// Hash of peer id -> encoded member: `<prefix>room:{<room>}:members`.
    pub fn members_key(&self, room: &str) -> String {
        format!("{}room:{{{room}}}:members", self.prefix)
    }

    /// Hash with the room's own fields (creation time): `<prefix>room:{<room>}:info`.
    pub fn info_key(&self, room: &str) -> String {
        format!("{}room:{{{room}}}:info", self.prefix)
    }

    /// The glob that matches every room's info key, for listing rooms with SCAN.
    pub fn info_key_pattern(&self) -> String {
        format!("{}room:{{*}}:info", self.prefix)
    }

    /// The room of an info key, if it is one.
    pub fn room_of_info_key<'k>(&self, key: &'k str) -> Option<&'k str> {
        key.strip_prefix(self.prefix.as_str())?.strip_prefix("room:{")?.strip_suffix("}:info")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_share_the_hash_tag() {
        let keys = Keyspace::new("sb:");
        assert_eq!(keys.room_channel("demo"), "sb:room:{demo}");
        assert_eq!(keys.members_key("demo"), "sb:room:{demo}:members");
        assert_eq!(keys.info_key("demo"), "sb:room:{demo}:info");
        assert_eq!(keys.room_of_info_key("sb:room:{demo}:info"), Some("demo"));
        assert_eq!(keys.room_of_info_key("sb:room:{demo}:members"), None);
        assert_eq!(keys.room_of_info_key("other:room:{demo}:info"), None);
    }
}
