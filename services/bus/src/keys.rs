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
        self.tagged("room", room, "")
    }

    /// The pub/sub channel of a topic: a room's, or `<prefix>node:{<node>}`.
    pub fn channel(&self, topic: crate::Topic<'_>) -> String {
        match topic {
            crate::Topic::Room(room) => self.room_channel(room),
            crate::Topic::Node(node) => self.tagged("node", node, ""),
        }
    }

    /// Hash of peer id -> encoded member: `<prefix>room:{<room>}:members`.
    pub fn members_key(&self, room: &str) -> String {
        self.tagged("room", room, ":members")
    }

    /// Hash with the room's own fields (creation time): `<prefix>room:{<room>}:info`.
    pub fn info_key(&self, room: &str) -> String {
        self.tagged("room", room, ":info")
    }

    /// Hash of room member -> gateway node holding it: `<prefix>room:{<room>}:owners`.
    pub fn owners_key(&self, room: &str) -> String {
        self.tagged("room", room, ":owners")
    }

    /// Hash of one session: `<prefix>peer:{<peer>}`.
    pub fn peer_key(&self, peer: &str) -> String {
        self.tagged("peer", peer, "")
    }

    /// Set of a session's rooms: `<prefix>peer:{<peer>}:rooms`.
    pub fn peer_rooms_key(&self, peer: &str) -> String {
        self.tagged("peer", peer, ":rooms")
    }

    /// A node's lease, an expiring key: `<prefix>node:{<node>}:lease`.
    pub fn node_lease_key(&self, node: &str) -> String {
        self.tagged("node", node, ":lease")
    }

    /// Set of the sessions a node holds: `<prefix>node:{<node>}:peers`.
    pub fn node_peers_key(&self, node: &str) -> String {
        self.tagged("node", node, ":peers")
    }

    /// Set of every node that has registered: `<prefix>nodes`.
    pub fn nodes_key(&self) -> String {
        format!("{}nodes", self.prefix)
    }

    /// The glob that matches every room's info key, for listing rooms with SCAN.
    pub fn info_key_pattern(&self) -> String {
        format!("{}room:{{*}}:info", self.prefix)
    }

    /// `<prefix><kind>:{<name>}<suffix>`, allocated once at its length: a channel's name
    /// is made for every publish, and `format!` would grow it several times.
    fn tagged(&self, kind: &str, name: &str, suffix: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + kind.len() + name.len() + suffix.len() + 3);
        for part in [self.prefix.as_str(), kind, ":{", name, "}", suffix] {
            key.push_str(part);
        }
        key
    }

    /// The room of a room's channel, if it is one.
    pub fn room_of_channel<'c>(&self, channel: &'c str) -> Option<&'c str> {
        channel.strip_prefix(self.prefix.as_str())?.strip_prefix("room:{")?.strip_suffix('}')
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
        assert_eq!(keys.channel(crate::Topic::Node("gw-1")), "sb:node:{gw-1}");
        assert_eq!(keys.members_key("demo"), "sb:room:{demo}:members");
        assert_eq!(keys.info_key("demo"), "sb:room:{demo}:info");
        assert_eq!(keys.owners_key("demo"), "sb:room:{demo}:owners");
        assert_eq!(keys.peer_rooms_key("p1"), "sb:peer:{p1}:rooms");
        assert_eq!(keys.node_lease_key("gw-1"), "sb:node:{gw-1}:lease");
        assert_eq!(keys.room_of_info_key("sb:room:{demo}:info"), Some("demo"));
        assert_eq!(keys.room_of_info_key("sb:room:{demo}:members"), None);
        assert_eq!(keys.room_of_info_key("other:room:{demo}:info"), None);
        assert_eq!(keys.room_of_channel(&keys.room_channel("demo")), Some("demo"));
        assert_eq!(keys.room_of_channel("sb:node:{gw-1}"), None);
        assert_eq!(keys.room_of_channel("sb:room:{demo}:members"), None);
    }
}
