//! The rooms one peer is in: a handful at most (`limits.max_rooms_per_connection`), so
//! a vector searched from end to end rather than a hash set, which allocates a table
//! of its own for every session, idle or not.

use super::RoomName;

#[derive(Debug, Default)]
pub struct PeerRooms(Vec<RoomName>);

impl PeerRooms {
    pub fn contains(&self, room: &str) -> bool {
        self.0.iter().any(|name| &**name == room)
    }

    /// Adds a room; returns false if the peer was in it already.
    pub fn insert(&mut self, room: RoomName) -> bool {
        if self.contains(&room) {
            return false;
        }
        // One slot at a time: a first push would set aside four.
        self.0.reserve_exact(1);
        self.0.push(room);
        true
    }

    /// Removes a room; returns false if the peer was not in it.
    pub fn remove(&mut self, room: &str) -> bool {
        match self.0.iter().position(|name| &**name == room) {
            Some(index) => {
                self.0.swap_remove(index);
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &RoomName> {
        self.0.iter()
    }
}

impl IntoIterator for PeerRooms {
    type Item = RoomName;
    type IntoIter = std::vec::IntoIter<RoomName>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a PeerRooms {
    type Item = &'a RoomName;
    type IntoIter = std::slice::Iter<'a, RoomName>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_is_in_it_once_until_removed() {
        let mut rooms = PeerRooms::default();
        assert!(rooms.insert("a".into()));
        assert!(rooms.insert("b".into()));
        assert!(!rooms.insert("a".into()), "already in it");
        assert_eq!(rooms.len(), 2);
        assert!(rooms.contains("a") && rooms.contains("b") && !rooms.contains("c"));
        assert!(rooms.remove("a"));
        assert!(!rooms.remove("a"), "no longer in it");
        assert_eq!(rooms.iter().map(|room| &**room).collect::<Vec<_>>(), ["b"]);
        assert!(rooms.remove("b"));
        assert!(rooms.is_empty());
    }
}
