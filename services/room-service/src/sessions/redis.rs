//! Sessions and leases in Redis. A session's hash and rooms share a hash slot, and so do
//! a node's lease and index; every conditional change is one Lua script.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use bus::{Keyspace, RedisConfig};
use fred::clients::Client;
use fred::interfaces::{HashesInterface, KeysInterface, SetsInterface};
use fred::types::scripts::Script;
use fred::types::{Expiration, SetOptions, Value};

use super::{SessionRecord, SessionStore};
use crate::error::{Result, RoomError};

const COMPARE_AND_SET: &str = include_str!("scripts/compare_and_set.lua");
const DELETE_IF_HELD: &str = include_str!("scripts/delete_if_held.lua");
const REFRESH_LEASE: &str = include_str!("scripts/refresh_lease.lua");
const ADD_ROOM_IF_HELD: &str = include_str!("scripts/add_room_if_held.lua");
const FORGET_IF_EXPIRED: &str = include_str!("scripts/forget_if_expired.lua");

pub struct RedisSessionStore {
    client: Client,
    keys: Keyspace,
    compare_and_set: Script,
    delete_if_held: Script,
    refresh_lease: Script,
    add_room_if_held: Script,
    forget_if_expired: Script,
}

impl RedisSessionStore {
    pub async fn connect(config: &RedisConfig) -> Result<Self> {
        Ok(Self {
            client: config.connect_client().await?,
            keys: config.keyspace(),
            compare_and_set: Script::from_lua(COMPARE_AND_SET),
            delete_if_held: Script::from_lua(DELETE_IF_HELD),
            refresh_lease: Script::from_lua(REFRESH_LEASE),
            add_room_if_held: Script::from_lua(ADD_ROOM_IF_HELD),
            forget_if_expired: Script::from_lua(FORGET_IF_EXPIRED),
        })
    }

    async fn run(&self, script: &Script, keys: Vec<String>, args: Vec<Value>) -> Result<bool> {
        let reply: Value = retried(|| script.evalsha_with_reload(&self.client, keys.clone(), args.clone())).await?;
        Ok(reply.as_i64() == Some(1))
    }

    async fn set_if_held(&self, peer_id: &str, node: &str, fields: &[(&str, String)]) -> Result<bool> {
        let mut args = vec![Value::from(node)];
        for (field, value) in fields {
            args.push(Value::from(*field));
            args.push(Value::from(value.as_str()));
        }
        self.run(&self.compare_and_set, vec![self.keys.peer_key(peer_id)], args).await
    }
}

/// Runs a command, once more if it was refused its redirection: right after a slot
/// moved to another master, without having run (docs/redis-cluster.md).
async fn retried<T, F, Fut>(command: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, fred::error::Error>>,
{
    bus::redis::once_more_if_redirected(command).await.map_err(store_error)
}

fn store_error(error: fred::error::Error) -> RoomError {
    RoomError::Unavailable(format!("session store unavailable: {error}"))
}

fn field(fields: &std::collections::HashMap<String, String>, name: &str) -> String {
    fields.get(name).cloned().unwrap_or_default()
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create(&self, record: &SessionRecord) -> Result<()> {
        // Indexed under its node first: a crash in between leaves an index entry without
        // a session, which the janitor skips, never a session nobody would clean up.
        let _: Value =
            retried(|| self.client.sadd(self.keys.node_peers_key(&record.node), record.peer_id.as_str())).await?;
        let grants = serde_json::to_string(&record.grants).expect("a list of strings serializes");
        let fields: Vec<(&str, String)> = vec![
            ("node", record.node.clone()),
            ("secret", record.secret_hash.clone()),
            ("identity", record.identity.clone()),
            ("name", record.name.clone()),
            ("grants", grants),
            ("detached_until_ms", record.detached_until_ms.to_string()),
        ];
        let _: Value = retried(|| self.client.hset(self.keys.peer_key(&record.peer_id), fields.clone())).await?;
        Ok(())
    }

    async fn load(&self, peer_id: &str) -> Result<Option<(SessionRecord, Vec<String>)>> {
        let fields: std::collections::HashMap<String, String> =
            retried(|| self.client.hgetall(self.keys.peer_key(peer_id))).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let rooms: Vec<String> = retried(|| self.client.smembers(self.keys.peer_rooms_key(peer_id))).await?;
        let record = SessionRecord {
            peer_id: peer_id.to_string(),
            node: field(&fields, "node"),
            secret_hash: field(&fields, "secret"),
            identity: field(&fields, "identity"),
            name: field(&fields, "name"),
            grants: serde_json::from_str(&field(&fields, "grants")).unwrap_or_default(),
            detached_until_ms: field(&fields, "detached_until_ms").parse().unwrap_or(0),
        };
        Ok(Some((record, rooms)))
    }

    async fn add_room(&self, peer_id: &str, node: &str, room: &str) -> Result<bool> {
        let keys = vec![self.keys.peer_key(peer_id), self.keys.peer_rooms_key(peer_id)];
        self.run(&self.add_room_if_held, keys, vec![Value::from(node), Value::from(room)]).await
    }

    async fn remove_room(&self, peer_id: &str, room: &str) -> Result<()> {
        let _: Value = retried(|| self.client.srem(self.keys.peer_rooms_key(peer_id), room)).await?;
        Ok(())
    }

    async fn detach(&self, peer_id: &str, node: &str, until_ms: i64) -> Result<bool> {
        self.set_if_held(peer_id, node, &[("detached_until_ms", until_ms.to_string())]).await
    }

    async fn attach(&self, peer_id: &str, node: &str, secret_hash: &str) -> Result<bool> {
        let fields = [("detached_until_ms", "0".to_string()), ("secret", secret_hash.to_string())];
        self.set_if_held(peer_id, node, &fields).await
    }

    async fn take_over(&self, peer_id: &str, from: &str, to: &str, secret_hash: &str) -> Result<bool> {
        let _: Value = retried(|| self.client.sadd(self.keys.node_peers_key(to), peer_id)).await?;
        let fields =
            [("node", to.to_string()), ("detached_until_ms", "0".to_string()), ("secret", secret_hash.to_string())];
        let moved = self.set_if_held(peer_id, from, &fields).await?;
        if moved {
            let _: Value = retried(|| self.client.srem(self.keys.node_peers_key(from), peer_id)).await?;
        }
        Ok(moved)
    }

    async fn delete(&self, peer_id: &str, node: &str) -> Result<bool> {
        let keys = vec![self.keys.peer_key(peer_id), self.keys.peer_rooms_key(peer_id)];
        let deleted = self.run(&self.delete_if_held, keys, vec![Value::from(node)]).await?;
        let _: Value = retried(|| self.client.srem(self.keys.node_peers_key(node), peer_id)).await?;
        Ok(deleted)
    }

    async fn register_node(&self, node: &str, ttl: Duration) -> Result<()> {
        let expiry = || Some(Expiration::PX(ttl.as_millis() as i64));
        let _: Value =
            retried(|| self.client.set(self.keys.node_lease_key(node), 1, expiry(), None::<SetOptions>, false)).await?;
        let _: Value = retried(|| self.client.sadd(self.keys.nodes_key(), node)).await?;
        Ok(())
    }

    async fn refresh_lease(&self, node: &str, ttl: Duration) -> Result<bool> {
        let args = vec![Value::from(ttl.as_millis() as i64)];
        if !self.run(&self.refresh_lease, vec![self.keys.node_lease_key(node)], args).await? {
            return Ok(false);
        }
        // The listing is another hash slot than the lease, so no script can check both;
        // re-adding it on every refresh repairs a janitor's unlisting that raced a
        // node's return within one refresh period.
        let _: Value = retried(|| self.client.sadd(self.keys.nodes_key(), node)).await?;
        Ok(true)
    }

    async fn node_alive(&self, node: &str) -> Result<bool> {
        let count: i64 = retried(|| self.client.exists(self.keys.node_lease_key(node))).await?;
        Ok(count == 1)
    }

    async fn dead_nodes(&self) -> Result<Vec<String>> {
        let nodes: Vec<String> = retried(|| self.client.smembers(self.keys.nodes_key())).await?;
        let mut dead = Vec::new();
        for node in nodes {
            if !self.node_alive(&node).await? {
                dead.push(node);
            }
        }
        Ok(dead)
    }

    async fn node_peers(&self, node: &str) -> Result<Vec<String>> {
        retried(|| self.client.smembers(self.keys.node_peers_key(node))).await
    }

    async fn forget_node(&self, node: &str) -> Result<()> {
        let _: Value =
            retried(|| self.client.del(vec![self.keys.node_lease_key(node), self.keys.node_peers_key(node)])).await?;
        let _: Value = retried(|| self.client.srem(self.keys.nodes_key(), node)).await?;
        Ok(())
    }

    async fn forget_expired_node(&self, node: &str) -> Result<bool> {
        let keys = vec![self.keys.node_lease_key(node), self.keys.node_peers_key(node)];
        if !self.run(&self.forget_if_expired, keys, Vec::new()).await? {
            return Ok(false);
        }
        let _: Value = retried(|| self.client.srem(self.keys.nodes_key(), node)).await?;
        Ok(true)
    }
}
