//! The room service's server API, as an application's backend uses it, seen by clients.

use cluster_proto::room::{GetRoomRequest, ListMembersRequest, ListRoomsRequest, RemovePeerRequest, SendDataRequest};
use protocol::LeaveReason;
use serde_json::json;
use tonic::Code;

use crate::{TestCluster, expect};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remove_peer_send_data_and_queries() {
    let cluster = TestCluster::redis(3).await;
    let mut api = cluster.room_service_client().await;
    let mut alice = cluster.connect(0, "alice", &["stage"]).await;
    let mut bob = cluster.connect(1, "bob", &["stage"]).await;
    alice.join("stage", None).await.unwrap();
    bob.join("stage", Some(json!({"seat": 2}))).await.unwrap();
    expect::peer_joined(&mut alice, "stage").await;

    let room = api.get_room(GetRoomRequest { room: "stage".into() }).await.unwrap().into_inner();
    assert_eq!((room.name.as_str(), room.member_count, room.capacity), ("stage", 2, 16));
    let members = api.list_members(ListMembersRequest { room: "stage".into() }).await.unwrap().into_inner().members;
    let ids: Vec<_> = members.iter().map(|m| m.peer_id.as_str()).collect();
    assert_eq!(ids, [alice.peer_id(), bob.peer_id()], "in order of joining");
    assert_eq!((members[1].identity.as_str(), members[1].metadata_json.as_str()), ("bob", r#"{"seat":2}"#));
    assert_eq!(members[0].node_id, "gw-0");
    let rooms = api.list_rooms(ListRoomsRequest { limit: 10, page_token: String::new() }).await.unwrap().into_inner();
    assert_eq!(rooms.rooms.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["stage"]);

    // Server data reaches every member, without a sender.
    api.send_data(SendDataRequest { room: "stage".into(), data_json: r#"{"notice":"recording"}"#.into() })
        .await
        .unwrap();
    for client in [&mut alice, &mut bob] {
        let (room, from, data) = expect::broadcast(client).await;
        assert_eq!((room.as_str(), from, data), ("stage", None, json!({"notice": "recording"})));
    }

    // Removing Bob: he is told, Alice sees him go, and he can no longer send there.
    let bob_id = bob.peer_id().to_string();
    api.remove_peer(RemovePeerRequest { room: "stage".into(), peer_id: bob_id.clone() }).await.unwrap();
    match expect::next(&mut bob).await {
        protocol::ServerMessage::Left { id: None, room, reason } => {
            assert_eq!((room.as_str(), reason), ("stage", LeaveReason::Removed))
        }
        other => panic!("expected left, got {other:?}"),
    }
    expect::peer_left(&mut alice, "stage", &bob_id, LeaveReason::Removed).await;
    let error = bob.request(protocol::Request::Leave { room: "stage".into() }).await.unwrap_err();
    assert_eq!(error.code(), Some(protocol::ErrorCode::NotFound));
    // He may join again (the token allows it).
    bob.join("stage", None).await.unwrap();
    expect::peer_joined(&mut alice, "stage").await;

    // Errors of the server API are gRPC status codes.
    let missing = api.get_room(GetRoomRequest { room: "nowhere".into() }).await.unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    let invalid = api.send_data(SendDataRequest { room: "stage".into(), data_json: "{oops".into() }).await.unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let not_member = api.remove_peer(RemovePeerRequest { room: "stage".into(), peer_id: "nobody".into() }).await;
    assert_eq!(not_member.unwrap_err().code(), Code::NotFound);
    cluster.shutdown().await;
}
