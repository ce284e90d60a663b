//! N:M mesh rooms: presence and negotiation of every pair, leave and disconnect.

use std::collections::{HashMap, HashSet};

use protocol::client::Client;
use protocol::{LeaveReason, ServerMessage};
use serde_json::json;

use crate::{TestCluster, expect};

on_each_deployment!(four_peer_mesh_over_three_gateways, concurrent_joins_see_every_member_exactly_once);

/// Four peers join one by one, spread over the gateways; every pair negotiates (the
/// newcomer offers to each earlier member); then one leaves and one drops its socket.
async fn four_peer_mesh_over_three_gateways(cluster: &TestCluster) {
    let mut peers: Vec<Client> = Vec::new();
    for index in 0..4 {
        let mut client = cluster.connect(index % 3, &format!("user{index}"), &["mesh"]).await;
        let present = client.join("mesh", Some(json!({"index": index}))).await.unwrap();
        let mut expected: Vec<&str> = peers.iter().map(|p| p.peer_id()).collect();
        let mut got: Vec<&str> = present.iter().map(|p| p.peer_id.as_str()).collect();
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "joined lists the members already there");
        for earlier in peers.iter_mut() {
            let joined = expect::peer_joined(earlier, "mesh").await;
            assert_eq!((joined.peer_id.as_str(), joined.identity), (client.peer_id(), format!("user{index}")));
            assert_eq!(joined.metadata.unwrap().to_value(), json!({"index": index}));
        }
        // The newcomer offers to everyone already there; each answers.
        let newcomer_id = client.peer_id().to_string();
        for earlier in peers.iter_mut() {
            client
                .signal("mesh", earlier.peer_id(), "offer", json!({"sdp": format!("offer to {}", earlier.peer_id())}))
                .await
                .unwrap();
            let (_, from, kind, data) = expect::signal(earlier).await;
            assert_eq!((from.as_str(), kind.as_str()), (newcomer_id.as_str(), "offer"));
            assert_eq!(data, json!({"sdp": format!("offer to {}", earlier.peer_id())}));
            earlier.signal("mesh", &newcomer_id, "answer", json!({"sdp": "answer"})).await.unwrap();
            let (_, from, kind, _) = expect::signal(&mut client).await;
            assert_eq!((from.as_str(), kind.as_str()), (earlier.peer_id(), "answer"));
        }
        peers.push(client);
    }

    // Peer 3 leaves: everyone else sees `left`.
    let mut leaver = peers.pop().unwrap();
    let leaver_id = leaver.peer_id().to_string();
    leaver.leave("mesh").await.unwrap();
    for peer in peers.iter_mut() {
        expect::peer_left(peer, "mesh", &leaver_id, LeaveReason::Left).await;
    }
    // Once out, it can no longer signal into the room.
    leaver.signal("mesh", peers[0].peer_id(), "offer", json!({})).await.unwrap();
    let message = expect::error(&mut leaver, protocol::ErrorCode::Forbidden).await;
    assert!(message.contains("not in room"), "{message}");

    // Peer 2's socket closes: a closed socket counts as leaving.
    let dropped = peers.pop().unwrap();
    let dropped_id = dropped.peer_id().to_string();
    dropped.close().await.unwrap();
    for peer in peers.iter_mut() {
        expect::peer_left(peer, "mesh", &dropped_id, LeaveReason::Disconnected).await;
    }
    // The two left still talk.
    let second = peers[1].peer_id().to_string();
    peers[0].signal("mesh", &second, "app:still-here", json!(true)).await.unwrap();
    assert_eq!(expect::signal(&mut peers[1]).await.2, "app:still-here");
}

/// Six peers on three gateways join one room at the same moment, three rounds. Each
/// must learn every other member exactly once (in `joined` or a later `peer_joined`),
/// and must never receive a signal from a peer it has not been told about.
async fn concurrent_joins_see_every_member_exactly_once(cluster: &TestCluster) {
    const PEERS: usize = 6;
    for round in 0..3 {
        let room = format!("burst-{round}");
        let mut clients = Vec::new();
        for index in 0..PEERS {
            clients.push(cluster.connect(index % 3, &format!("u{index}"), &[room.as_str()]).await);
        }
        let all: HashSet<String> = clients.iter().map(|c| c.peer_id().to_string()).collect();
        let tasks: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                let room = room.clone();
                let all = all.clone();
                tokio::spawn(async move {
                    learn_room_then_greet(&mut client, &room, &all).await;
                    client
                })
            })
            .collect();
        // Keep every client connected until all are done, so nobody sees a leave.
        let mut done = Vec::new();
        for task in tasks {
            done.push(task.await.expect("peer task"));
        }
    }
}

async fn learn_room_then_greet(client: &mut Client, room: &str, all: &HashSet<String>) {
    let me = client.peer_id().to_string();
    let mut known: HashMap<String, usize> = HashMap::new();
    for peer in client.join(room, None).await.unwrap() {
        *known.entry(peer.peer_id).or_default() += 1;
    }
    let mut greetings = HashSet::new();
    let mut greeted = false;
    while greetings.len() < all.len() - 1 || !greeted {
        if !greeted && known.len() == all.len() - 1 {
            for peer in known.keys() {
                client.signal(room, peer, "app:hello", json!(me)).await.unwrap();
            }
            greeted = true;
            continue;
        }
        match expect::next(client).await {
            ServerMessage::PeerJoined { peer, .. } => *known.entry(peer.peer_id).or_default() += 1,
            ServerMessage::Signal { from, kind, .. } => {
                assert_eq!(kind, "app:hello");
                assert!(known.contains_key(&from), "{me}: a signal from {from}, a peer it was never told about");
                assert!(greetings.insert(from.clone()), "{me}: a duplicate greeting from {from}");
            }
            other => panic!("{me}: unexpected {other:?}"),
        }
    }
    assert!(known.values().all(|&count| count == 1), "{me}: some member was announced twice: {known:?}");
    let expected: HashSet<String> = all.iter().filter(|id| **id != me).cloned().collect();
    assert_eq!(known.keys().cloned().collect::<HashSet<_>>(), expected);
    assert_eq!(greetings, expected);
}
