//! The Redis room store. Each room is three hashes that share a hash slot with the
//! room's channel (`<prefix>room:{<room>}:members`, `...:info`, `...:owners`, see
//! `bus::keys`); every change is a Lua script, so a change and the publication of its
//! presence event on the room's channel are one atomic step, and replicas never race
//! each other into an inconsistent state. On a Redis Cluster the scripts publish with
//! SPUBLISH, as the bus does, and a listing of the rooms scans every master.

use async_trait::async_trait;
use bus::{Keyspace, RedisConfig};
use bytes::Bytes;
use cluster_proto::room::{Member, Room};
use fred::clients::Client;
use fred::interfaces::{ClientLike, ClusterInterface, KeysInterface};
use fred::types::Value;
use fred::types::config::Server;
use fred::types::scripts::Script;
use prost::Message;

use super::{JoinOutcome, RoomPage, RoomStore};
use crate::error::{Result, RoomError};

const JOIN: &str = include_str!("scripts/join.lua");
const LEAVE: &str = include_str!("scripts/leave.lua");
const ROOM_INFO: &str = include_str!("scripts/room_info.lua");
const PUBLISH_IF_EXISTS: &str = include_str!("scripts/publish_if_exists.lua");
const MOVE_MEMBER: &str = include_str!("scripts/move_member.lua");
const MEMBERS: &str = include_str!("scripts/members.lua");

pub struct RedisRoomStore {
    client: Client,
    keys: Keyspace,
    join: Script,
    leave: Script,
    room_info: Script,
    publish_if_exists: Script,
    move_member: Script,
    members: Script,
}

impl RedisRoomStore {
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        Ok(Self {
            client: config.connect_client().await?,
            keys: config.keyspace(),
            join: script(JOIN, config),
            leave: script(LEAVE, config),
            room_info: script(ROOM_INFO, config),
            publish_if_exists: script(PUBLISH_IF_EXISTS, config),
            move_member: script(MOVE_MEMBER, config),
            members: script(MEMBERS, config),
        })
    }

    fn room_keys(&self, room: &str) -> Vec<String> {
        vec![self.keys.members_key(room), self.keys.info_key(room), self.keys.owners_key(room)]
    }

    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<Value> {
        // Every script names one room's keys: right after the room's slot moved, the
        // first run of each client is refused its redirection without having run.
        bus::redis::once_more_if_redirected(|| script.evalsha_with_reload(&self.client, keys.clone(), args.clone()))
            .await
            .map_err(store_error)
    }

    /// In a Redis Cluster, its masters in a stable order (each scans only its own keys);
    /// `None` for a single Redis.
    fn masters(&self) -> Option<Vec<Server>> {
        let mut masters = self.client.cached_cluster_state()?.unique_primary_nodes();
        masters.sort_by(|a, b| (&a.host, a.port).cmp(&(&b.host, b.port)));
        Some(masters)
    }
}

/// A script whose `PUBLISH` is the bus's publish command, so that what a script
/// publishes reaches the same subscribers as the bus's own publications.
fn script(lua: &str, config: &RedisConfig) -> Script {
    Script::from_lua(format!("local PUBLISH = '{}'\n{lua}", config.publish_command()))
}

/// Where a listing of rooms goes on: a SCAN cursor and, in a Redis Cluster, which
/// master it is a cursor of. The page token is the cursor, or `<master>.<cursor>`.
/// Like SCAN itself, a listing while the cluster's masters change may miss or repeat
/// rooms.
struct ScanPosition {
    master: usize,
    cursor: String,
    done: bool,
}

impl ScanPosition {
    fn parse(token: Option<&str>, cluster: bool) -> Result<Self> {
        let Some(token) = token else { return Ok(Self { master: 0, cursor: "0".into(), done: false }) };
        let (master, cursor) = match token.split_once('.') {
            Some((master, cursor)) if cluster => (master.parse().map_err(|_| Self::invalid())?, cursor),
            None if !cluster => (0, token),
            _ => return Err(Self::invalid()),
        };
        if cursor.is_empty() || !cursor.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(Self::invalid());
        }
        Ok(Self { master, cursor: cursor.into(), done: false })
    }

    fn invalid() -> RoomError {
        RoomError::InvalidArgument("page_token is not one this service handed out".into())
    }

    /// After a SCAN call: when the master's cursor is back at 0, the listing moves to
    /// the next master, or is complete after the last. True when complete.
    fn finish_master(&mut self, masters: usize) -> bool {
        if self.cursor == "0" {
            self.master += 1;
            self.done = self.master >= masters;
        }
        self.done
    }

    fn token(&self, cluster: bool) -> Option<String> {
        match (self.done, cluster) {
            (true, _) => None,
            (false, true) => Some(format!("{}.{}", self.master, self.cursor)),
            (false, false) => Some(self.cursor.clone()),
        }
    }
}

fn store_error(error: fred::error::Error) -> RoomError {
    use fred::error::ErrorKind;
    match error.kind() {
        ErrorKind::IO | ErrorKind::Timeout | ErrorKind::Canceled | ErrorKind::Backpressure => {
            RoomError::Unavailable(format!("room store unavailable: {error}"))
        }
        // Redirected twice in a row (a slot moving right now): try again shortly.
        _ if bus::redis::was_redirected(&error) => RoomError::Unavailable(format!("room store unavailable: {error}")),
        _ => RoomError::Internal(format!("room store: {error}")),
    }
}

fn malformed(what: &str) -> RoomError {
    RoomError::Internal(format!("room store returned a malformed {what}"))
}

fn int(value: &Value) -> Result<i64> {
    value.as_i64().ok_or_else(|| malformed("number"))
}

/// Decodes the flat `[peer id, member, peer id, member, ...]` of HGETALL.
fn decode_members(flat: &Value) -> Result<Vec<Member>> {
    let Value::Array(items) = flat else { return Err(malformed("member list")) };
    items
        .chunks(2)
        .map(|pair| {
            let bytes = pair.get(1).and_then(Value::as_bytes).ok_or_else(|| malformed("member"))?;
            Member::decode(bytes).map_err(|_| malformed("member"))
        })
        .collect()
}

#[async_trait]
impl RoomStore for RedisRoomStore {
    async fn join(&self, room: &str, member: &Member, capacity: u32, joined_event: Bytes) -> Result<JoinOutcome> {
        let args = vec![
            Value::from(member.peer_id.as_str()),
            Value::Bytes(member.encode_to_vec().into()),
            Value::from(capacity as i64),
            Value::from(member.joined_at_ms),
            Value::from(self.keys.room_channel(room)),
            Value::Bytes(joined_event),
            Value::from(member.node_id.as_str()),
        ];
        let reply = self.run(&self.join, self.room_keys(room), args).await?;
        let Value::Array(fields) = reply else { return Err(malformed("join reply")) };
        let [status, capacity, created_at_ms, members] = fields.as_slice() else {
            return Err(malformed("join reply"));
        };
        let capacity = int(capacity)? as u32;
        if int(status)? == 0 {
            return Err(RoomError::room_full(room, capacity));
        }
        let members = decode_members(members)?;
        let room = Room {
            name: room.to_string(),
            member_count: members.len() as u32,
            capacity,
            created_at_ms: int(created_at_ms)?,
        };
        Ok(JoinOutcome { room, members })
    }

    async fn leave(&self, room: &str, peer_id: &str, owner: Option<&str>, left_event: Bytes) -> Result<bool> {
        let args = vec![
            Value::from(peer_id),
            Value::from(self.keys.room_channel(room)),
            Value::Bytes(left_event),
            Value::from(owner.unwrap_or_default()),
        ];
        Ok(int(&self.run(&self.leave, self.room_keys(room), args).await?)? == 1)
    }

    async fn move_member(&self, room: &str, peer_id: &str, from: &str, to: &str, moved_event: Bytes) -> Result<bool> {
        let args = vec![
            Value::from(peer_id),
            Value::from(from),
            Value::from(to),
            Value::from(self.keys.room_channel(room)),
            Value::Bytes(moved_event),
        ];
        Ok(int(&self.run(&self.move_member, vec![self.keys.owners_key(room)], args).await?)? == 1)
    }

    async fn members(&self, room: &str) -> Result<Vec<Member>> {
        let keys = vec![self.keys.members_key(room), self.keys.owners_key(room)];
        let reply = self.run(&self.members, keys, Vec::new()).await?;
        let Value::Array(parts) = reply else { return Err(malformed("members reply")) };
        let [members, owners] = parts.as_slice() else { return Err(malformed("members reply")) };
        let owners: std::collections::HashMap<String, String> = match owners {
            Value::Array(flat) => flat
                .chunks(2)
                .filter_map(|pair| Some((pair.first()?.as_string()?, pair.get(1)?.as_string()?)))
                .collect(),
            _ => Default::default(),
        };
        let mut members = decode_members(members)?;
        for member in &mut members {
            if let Some(owner) = owners.get(&member.peer_id) {
                member.node_id = owner.clone();
            }
        }
        Ok(members)
    }

    async fn room(&self, room: &str) -> Result<Option<Room>> {
        let reply = self.run(&self.room_info, self.room_keys(room), Vec::new()).await?;
        let Value::Array(fields) = reply else { return Err(malformed("room info")) };
        let [capacity, created_at_ms, count] = fields.as_slice() else { return Ok(None) };
        Ok(Some(Room {
            name: room.to_string(),
            member_count: int(count)? as u32,
            capacity: int(capacity)? as u32,
            created_at_ms: int(created_at_ms)?,
        }))
    }

    async fn list_rooms(&self, limit: u32, page_token: Option<&str>) -> Result<RoomPage> {
        let pattern = self.keys.info_key_pattern();
        let masters = self.masters();
        let mut position = ScanPosition::parse(page_token, masters.is_some())?;
        let mut rooms = Vec::new();
        // SCAN may return empty pages with a non-zero cursor; keep going (boundedly)
        // until something is found or the keyspace is exhausted.
        for _ in 0..64 {
            let scan = match &masters {
                None => self.client.scan_page(position.cursor.clone(), pattern.clone(), Some(limit), None).await,
                Some(masters) => {
                    let master = masters.get(position.master).ok_or_else(ScanPosition::invalid)?.clone();
                    let on_master = self.client.with_cluster_node(master);
                    on_master.scan_page(position.cursor.clone(), pattern.clone(), Some(limit), None).await
                }
            };
            let Value::Array(parts) = scan.map_err(store_error)? else { return Err(malformed("scan reply")) };
            let [next, keys] = parts.as_slice() else { return Err(malformed("scan reply")) };
            position.cursor = next.as_string().ok_or_else(|| malformed("scan cursor"))?;
            let Value::Array(keys) = keys else { return Err(malformed("scan keys")) };
            for key in keys {
                let key = key.as_string().ok_or_else(|| malformed("scan key"))?;
                if let Some(name) = self.keys.room_of_info_key(&key)
                    && let Some(room) = self.room(name).await?
                {
                    rooms.push(room);
                }
            }
            let finished = position.finish_master(masters.as_ref().map_or(1, Vec::len));
            if !rooms.is_empty() || finished {
                break;
            }
        }
        Ok(RoomPage { rooms, next_page_token: position.token(masters.is_some()) })
    }

    async fn publish_if_exists(&self, room: &str, event: Bytes) -> Result<bool> {
        let args = vec![Value::from(self.keys.room_channel(room)), Value::Bytes(event)];
        Ok(int(&self.run(&self.publish_if_exists, vec![self.keys.info_key(room)], args).await?)? == 1)
    }

    async fn check(&self) -> Result<()> {
        let _: Value = self.client.ping(None).await.map_err(store_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_tokens_say_which_master_in_a_cluster_and_are_checked() {
        let first = ScanPosition::parse(None, true).unwrap();
        assert_eq!((first.master, first.cursor.as_str()), (0, "0"));
        let next = ScanPosition::parse(Some("2.1536"), true).unwrap();
        assert_eq!((next.master, next.cursor.as_str()), (2, "1536"));
        assert_eq!(next.token(true).as_deref(), Some("2.1536"));
        assert_eq!(ScanPosition::parse(Some("1536"), false).unwrap().token(false).as_deref(), Some("1536"));
        for (token, cluster) in [("1536", true), ("2.1536", false), ("x.5", true), ("1.", true), ("1.-5", true)] {
            assert!(matches!(ScanPosition::parse(Some(token), cluster), Err(RoomError::InvalidArgument(_))), "{token}");
        }
    }

    #[test]
    fn a_listing_moves_through_the_masters_and_ends_after_the_last() {
        let mut position = ScanPosition::parse(None, true).unwrap();
        position.cursor = "88".into();
        assert!(!position.finish_master(2), "the first master has more");
        position.cursor = "0".into();
        assert!(!position.finish_master(2));
        assert_eq!(position.token(true).as_deref(), Some("1.0"), "the second master from its start");
        assert!(position.finish_master(2), "the last master's cursor is back at 0");
        assert_eq!(position.token(true), None);
    }
}
