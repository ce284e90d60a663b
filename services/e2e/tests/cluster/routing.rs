//! Per-room routing seen from Redis: a gateway subscribes to a room's channel only while
//! it has members there, and nothing else is subscribed.

use bus::{Keyspace, RedisConfig};
use fred::interfaces::PubsubInterface;
use fred::types::Value;

use crate::TestCluster;

/// Subscribers of each channel, as Redis counts them.
async fn subscribers(redis: &fred::clients::Client, channel: &str) -> i64 {
    let reply: Value = redis.pubsub_numsub(channel).await.unwrap();
    match reply {
        Value::Array(items) => items.get(1).and_then(Value::as_i64).expect("PUBSUB NUMSUB reply"),
        other => panic!("unexpected PUBSUB NUMSUB reply {other:?}"),
    }
}

/// Every room channel with a subscriber (node channels aside).
async fn all_channels(redis: &fred::clients::Client) -> Vec<String> {
    let reply: Value = redis.pubsub_channels("sb:room:*").await.unwrap();
    let Value::Array(items) = reply else { panic!("unexpected PUBSUB CHANNELS reply") };
    let mut channels: Vec<String> = items.iter().filter_map(Value::as_string).collect();
    channels.sort();
    channels
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_subscribe_only_to_rooms_with_local_members() {
    let mut cluster = TestCluster::redis(3).await;
    let url = cluster.redis_server().url();
    let redis = RedisConfig { url: Some(url), ..RedisConfig::default() }.connect_client().await.unwrap();
    let keys = Keyspace::new(RedisConfig::default().key_prefix);
    let (room_a, room_b) = (keys.room_channel("a"), keys.room_channel("b"));

    let mut alice = cluster.connect(0, "alice", &["a"]).await;
    let mut alice_2 = cluster.connect(0, "alice-2", &["a"]).await;
    let mut bob = cluster.connect(1, "bob", &["a"]).await;
    let mut carol = cluster.connect(2, "carol", &["b"]).await;
    assert!(all_channels(&redis).await.is_empty(), "no channel before any join");

    alice.join("a", None).await.unwrap();
    alice_2.join("a", None).await.unwrap();
    bob.join("a", None).await.unwrap();
    carol.join("b", None).await.unwrap();
    assert_eq!(subscribers(&redis, &room_a).await, 2, "gateways 0 and 1, once each");
    assert_eq!(subscribers(&redis, &room_b).await, 1, "gateway 2 only");
    assert_eq!(all_channels(&redis).await, [room_a.clone(), room_b.clone()], "no other room channel");
    let every: Value = redis.pubsub_channels("*").await.unwrap();
    let Value::Array(every) = every else { panic!() };
    let mut others: Vec<String> =
        every.iter().filter_map(Value::as_string).filter(|c| !c.starts_with("sb:room:")).collect();
    others.sort();
    assert_eq!(others, ["sb:node:{gw-0}", "sb:node:{gw-1}", "sb:node:{gw-2}"], "only each node's own control channel");

    alice.leave("a").await.unwrap();
    assert_eq!(subscribers(&redis, &room_a).await, 2, "gateway 0 still has alice-2");
    alice_2.leave("a").await.unwrap();
    assert_eq!(subscribers(&redis, &room_a).await, 1, "gateway 0 left with its last member");
    bob.close().await.unwrap();
    carol.leave("b").await.unwrap();
    // Bob's leave runs after his socket closed, with nothing to tell the test when it
    // is done: wait (boundedly) for the last subscription to go.
    testkit::eventually("every channel released", std::time::Duration::from_secs(10), || async {
        all_channels(&redis).await.is_empty().then_some(())
    })
    .await;
    cluster.shutdown().await;
}
