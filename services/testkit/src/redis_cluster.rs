//! A real Redis Cluster: redis-server nodes started with `--cluster-enabled yes` on
//! loopback ports and joined by `redis-cli --cluster create`, so that tests can run
//! against hash slots, sharded pub/sub and a failover.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::process::Command;

use crate::{RedisServer, STARTUP_TIMEOUT, eventually};

/// How long a node may stay silent before the others consider it failed; its replica
/// is promoted shortly after (the production default is 15 s).
const NODE_TIMEOUT_MS: u64 = 1000;

/// A Redis Cluster on 127.0.0.1 whose nodes are killed on drop.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    state_files: Vec<std::path::PathBuf>,
}

impl RedisCluster {
    /// Starts `masters` masters (at least 3, as Redis Cluster needs) sharing the 16,384
    /// hash slots, each with `replicas` replicas, and waits until every node reports
    /// the cluster healthy.
    pub async fn start(masters: usize, replicas: usize) -> Self {
        assert!(masters >= 3, "redis-cli --cluster create wants at least 3 masters");
        static CLUSTERS: AtomicUsize = AtomicUsize::new(0);
        let cluster = CLUSTERS.fetch_add(1, Ordering::Relaxed);
        let mut nodes = Vec::new();
        let mut state_files = Vec::new();
        for index in 0..masters * (1 + replicas) {
            let name = format!("testkit-cluster-{}-{cluster}-{index}.conf", std::process::id());
            state_files.push(std::env::temp_dir().join(&name));
            nodes.push(RedisServer::start_cluster_node(NODE_TIMEOUT_MS, &name).await);
        }
        let cluster = Self { nodes, state_files };
        let mut create = vec!["--cluster".to_string(), "create".into()];
        create.extend(cluster.nodes.iter().map(|node| format!("127.0.0.1:{}", node.port())));
        create.extend(["--cluster-replicas".into(), replicas.to_string(), "--cluster-yes".into()]);
        let create: Vec<&str> = create.iter().map(String::as_str).collect();
        let output = redis_cli(&create).await;
        assert!(output.contains("All 16384 slots covered"), "redis-cli --cluster create failed:\n{output}");
        cluster.wait_until_healthy(STARTUP_TIMEOUT).await;
        cluster
    }

    /// `redis-cluster://127.0.0.1:<port>?node=127.0.0.1:<port>&...`, every node named so
    /// a client finds the cluster even when some are down.
    pub fn url(&self) -> String {
        let mut ports = self.nodes.iter().map(RedisServer::port);
        let first = ports.next().expect("a cluster has nodes");
        let others: Vec<String> = ports.map(|port| format!("node=127.0.0.1:{port}")).collect();
        format!("redis-cluster://127.0.0.1:{first}?{}", others.join("&"))
    }

    /// The port of the master serving `key`'s hash slot now.
    pub async fn master_of(&self, key: &str) -> u16 {
        let port = self.live_port();
        let slot: u16 = cli(port, &["CLUSTER", "KEYSLOT", key]).await.trim().parse().expect("a slot number");
        masters(&cli(port, &["CLUSTER", "NODES"]).await)
            .into_iter()
            .find(|master| master.serves(slot))
            .unwrap_or_else(|| panic!("no live master serves slot {slot}"))
            .port
    }

    /// A name (`s0`, `s1`, ...) whose key, as `key_of` makes it, another master than
    /// the one of `key` serves: for a room that stays where another moves or fails.
    pub async fn name_elsewhere(&self, key: &str, key_of: impl Fn(&str) -> String) -> String {
        let master = self.master_of(key).await;
        for name in (0..100).map(|i| format!("s{i}")) {
            if self.master_of(&key_of(&name)).await != master {
                return name;
            }
        }
        panic!("none of 100 names hashes to another master than {key}'s");
    }

    /// The ports of the masters serving hash slots now.
    pub async fn master_ports(&self) -> Vec<u16> {
        masters(&cli(self.live_port(), &["CLUSTER", "NODES"]).await).into_iter().map(|master| master.port).collect()
    }

    /// Kills (SIGKILL) the master serving `key`, as a crash would; returns its port.
    pub async fn kill_master_of(&mut self, key: &str) -> u16 {
        let port = self.master_of(key).await;
        self.node(port).kill().await;
        port
    }

    /// Kills the master serving `key` and starts it again in place (same port, same
    /// identity and slots, no data), as a crash and a quick restart would, without a
    /// replica taking over; waits until the cluster is healthy again. Returns its port.
    pub async fn restart_master_of(&mut self, key: &str) -> u16 {
        let port = self.master_of(key).await;
        self.node(port).restart().await;
        self.wait_until_healthy(STARTUP_TIMEOUT).await;
        port
    }

    /// Moves the hash slot of `key`, with its keys, from the master serving it to another
    /// master, the way `redis-cli --cluster reshard` moves each slot (IMPORTING and
    /// MIGRATING, MIGRATE of every key, then SETSLOT NODE on every master), and waits
    /// until every live node places the slot there. Returns the ports of the old and the
    /// new master.
    pub async fn move_slot_of(&self, key: &str) -> (u16, u16) {
        let from = self.master_of(key).await;
        let to = *self.master_ports().await.iter().find(|port| **port != from).expect("another master");
        let slot = cli(from, &["CLUSTER", "KEYSLOT", key]).await.trim().to_string();
        let (from_id, to_id) = (node_id(from).await, node_id(to).await);
        assert_ok(cli(to, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &from_id]).await);
        assert_ok(cli(from, &["CLUSTER", "SETSLOT", &slot, "MIGRATING", &to_id]).await);
        // A test's slot holds a few keys: 100 rounds of 100 are far more than enough.
        for round in 0.. {
            let listed = cli(from, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"]).await;
            let keys: Vec<&str> = listed.lines().map(str::trim).filter(|line| !line.is_empty()).collect();
            if keys.is_empty() {
                break;
            }
            assert!(round < 100, "slot {slot} still holds keys after 100 rounds of MIGRATE");
            let to_port = to.to_string();
            let mut migrate = vec!["MIGRATE", "127.0.0.1", to_port.as_str(), "", "0", "5000", "KEYS"];
            migrate.extend(keys);
            let reply = cli(from, &migrate).await;
            // NOKEY: the keys went meanwhile (expired, deleted), which is as good.
            assert!(matches!(reply.trim(), "OK" | "NOKEY"), "MIGRATE answered {reply:?}");
        }
        // The new owner first, as redis-cli does, so the slot is never without one.
        let others = self.master_ports().await.into_iter().filter(|port| *port != to && *port != from);
        for port in [to, from].into_iter().chain(others) {
            assert_ok(cli(port, &["CLUSTER", "SETSLOT", &slot, "NODE", &to_id]).await);
        }
        let slot: u16 = slot.parse().expect("a slot number");
        eventually("every node places the moved slot on its new master", STARTUP_TIMEOUT, || async {
            for node in self.nodes.iter().filter(|node| node.is_running()) {
                let seen = masters(&cli(node.port(), &["CLUSTER", "NODES"]).await);
                if !seen.iter().any(|master| master.port == to && master.serves(slot)) {
                    return None;
                }
            }
            Some(())
        })
        .await;
        (from, to)
    }

    /// Waits until every live node says the cluster is ok and every live replica is in
    /// sync with its master (a replica that never synced is not promoted), e.g. after a
    /// replica took over a killed master's slots.
    pub async fn wait_until_healthy(&self, within: Duration) {
        eventually("the Redis Cluster is healthy", within, || async {
            for node in self.nodes.iter().filter(|node| node.is_running()) {
                let info = cli(node.port(), &["CLUSTER", "INFO"]).await;
                let replication = cli(node.port(), &["INFO", "replication"]).await;
                let syncing = replication.contains("role:slave") && !replication.contains("master_link_status:up");
                if !info.contains("cluster_state:ok") || syncing {
                    return None;
                }
            }
            Some(())
        })
        .await
    }

    fn node(&mut self, port: u16) -> &mut RedisServer {
        self.nodes.iter_mut().find(|node| node.port() == port).expect("the master is one of ours")
    }

    fn live_port(&self) -> u16 {
        self.nodes.iter().find(|node| node.is_running()).expect("a live node").port()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for file in &self.state_files {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// A master as CLUSTER NODES describes it.
struct Master {
    port: u16,
    slots: Vec<(u16, u16)>,
}

impl Master {
    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|(first, last)| (*first..=*last).contains(&slot))
    }
}

/// The live masters with slots in CLUSTER NODES' output: a line per node of `<id>
/// <ip:port@bus> <flags> <master id> <ping> <pong> <epoch> <link> <slots>...`.
fn masters(nodes: &str) -> Vec<Master> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = *fields.get(2)?;
            if !flags.split(',').any(|flag| flag == "master") || flags.contains("fail") {
                return None;
            }
            let port = fields[1].split('@').next()?.rsplit(':').next()?.parse().ok()?;
            // Slots being migrated are listed in brackets; a test cluster has none.
            let slots: Vec<(u16, u16)> = fields[8.min(fields.len())..]
                .iter()
                .filter(|range| !range.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((first, last)) => Some((first.parse().ok()?, last.parse().ok()?)),
                    None => range.parse().ok().map(|slot| (slot, slot)),
                })
                .collect();
            (!slots.is_empty()).then_some(Master { port, slots })
        })
        .collect()
}

async fn node_id(port: u16) -> String {
    cli(port, &["CLUSTER", "MYID"]).await.trim().to_string()
}

fn assert_ok(reply: String) {
    assert_eq!(reply.trim(), "OK", "redis-cli answered {reply:?}");
}

async fn cli(port: u16, args: &[&str]) -> String {
    let port = port.to_string();
    let all: Vec<&str> = ["-p", port.as_str()].into_iter().chain(args.iter().copied()).collect();
    redis_cli(&all).await
}

async fn redis_cli(args: &[&str]) -> String {
    let run = Command::new("redis-cli").args(args).stdin(Stdio::null()).kill_on_drop(true).output();
    let output = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap_or_else(|_| panic!("redis-cli {args:?} did not finish within 30 s"))
        .expect("redis-cli runs (Debian: apt-get install redis-tools)");
    String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_live_masters_and_their_slots() {
        let nodes = "\
a1 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922 12000
c3 127.0.0.1:7003@17003 master,fail - 0 0 3 disconnected 10923-16383
d4 127.0.0.1:7004@17004 slave b2 0 0 2 connected
e5 127.0.0.1:7005@17005 master - 0 0 4 connected 10923-11999 12001-16383 [93->-b2]
";
        let found = masters(nodes);
        assert_eq!(found.iter().map(|master| master.port).collect::<Vec<_>>(), [7001, 7002, 7005]);
        assert!(found[1].serves(12000) && found[1].serves(5461) && !found[1].serves(5460));
        assert!(found[2].serves(16383) && !found[2].serves(12000));
    }
}
