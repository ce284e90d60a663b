//! The hostile-client suite: the real binaries (Redis, a room service, two gateways)
//! attacked from real sockets while two healthy clients on different gateways keep
//! signaling each other. Each attack gets its documented answer; the healthy pair's
//! signal round trips during the attack are measured against their baseline (printed:
//! `cargo test -p e2e --test cluster -- hostile --nocapture`; docs/security.md has the
//! numbers) and must stay within a generous bound; the gateways' memory stays bounded.

use std::time::{Duration, Instant};

use e2e::processes::ProcessCluster;
use protocol::client::{Client, ClientError};
use protocol::{CloseCode, ErrorCode, ServerMessage};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::expect;

/// Round trips per measurement, at least.
const SAMPLES: usize = 40;
/// One round trip every this long.
const PACE: Duration = Duration::from_millis(20);
/// What a healthy round trip may take under attack at most: far above the few ms it
/// takes (debug builds, every process on 2 cores), far below what a starved gateway
/// would show (seconds, or no answer).
const HEALTHY_BOUND: Duration = Duration::from_millis(750);
/// How much a gateway's memory may grow over the whole suite.
const RSS_GROWTH_BOUND_KIB: u64 = 64 * 1024;

/// Alice on gateway 0 and Bob on gateway 1, in room "talk".
struct Healthy {
    alice: Client,
    bob: Client,
}

impl Healthy {
    async fn join(cluster: &ProcessCluster) -> Self {
        let mut alice = cluster.connect(0, "alice", &["talk"]).await;
        let mut bob = cluster.connect(1, "bob", &["talk"]).await;
        alice.join("talk", None).await.unwrap();
        bob.join("talk", None).await.unwrap();
        expect::peer_joined(&mut alice, "talk").await;
        Self { alice, bob }
    }

    /// Alice signals Bob, Bob answers: round trips across both gateways and the bus, at
    /// least `SAMPLES` and on until `attack` (if any) is over; the count, the median and
    /// the slowest.
    async fn round_trips(&mut self, attack: Option<&JoinHandle<()>>) -> (usize, Duration, Duration) {
        let (alice_id, bob_id) = (self.alice.peer_id().to_string(), self.bob.peer_id().to_string());
        let mut times = Vec::with_capacity(SAMPLES);
        // A person's pace, not a flood: within the rate limit (100 messages a second).
        let mut pace = tokio::time::interval(PACE);
        // Bounded even if the attack never ends: its own deadline is checked after.
        let until = Instant::now() + Duration::from_secs(60);
        for n in 0.. {
            if n >= SAMPLES && (attack.is_none_or(|attack| attack.is_finished()) || Instant::now() > until) {
                break;
            }
            pace.tick().await;
            let started = Instant::now();
            self.alice.signal("talk", &bob_id, "offer", json!({ "n": n })).await.unwrap();
            let (_, _, kind, data) = expect::signal(&mut self.bob).await;
            assert_eq!((kind.as_str(), data), ("offer", json!({ "n": n })));
            self.bob.signal("talk", &alice_id, "answer", json!({ "n": n })).await.unwrap();
            let (_, _, kind, _) = expect::signal(&mut self.alice).await;
            assert_eq!(kind, "answer");
            times.push(started.elapsed());
        }
        times.sort();
        (times.len(), times[times.len() / 2], times[times.len() - 1])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_get_their_answers_and_healthy_clients_carry_on() {
    let cluster = ProcessCluster::start(2, &[("GATEWAY_WS__HANDSHAKE_TIMEOUT", "2s")], "2s").await;
    let mut healthy = Healthy::join(&cluster).await;
    let rss_before: Vec<u64> = (0..2).map(|i| cluster.gateway(i).resident_kib().unwrap()).collect();
    let (count, baseline_median, baseline_max) = healthy.round_trips(None).await;
    println!("baseline: median {baseline_median:?}, slowest {baseline_max:?} of {count} round trips");

    let attacks: [(&str, Attack); 10] = [
        ("flood", flood),
        ("oversized frames", oversized),
        ("deeply nested JSON", nested),
        ("invalid UTF-8", invalid_utf8),
        ("binary frames", binary),
        ("10,000 joins", joins),
        ("forged and foreign peer ids", forged_peers),
        ("expired, forged and replayed tokens", tokens),
        ("slowloris", slowloris),
        ("a slow consumer", slow_consumer),
    ];
    for (name, attack) in attacks {
        let target = Target {
            url: cluster.ws_url(0),
            other_url: cluster.ws_url(1),
            token: cluster.token(&format!("mallory-{}", name.len()), &["*"]),
            alice_id: healthy.alice.peer_id().to_string(),
            secret: e2e::SECRET,
        };
        let running = tokio::spawn(attack(target));
        let (count, median, slowest) = healthy.round_trips(Some(&running)).await;
        tokio::time::timeout(Duration::from_secs(60), running)
            .await
            .unwrap_or_else(|_| panic!("{name}: not over within 60 s"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let rss: Vec<u64> = (0..2).map(|i| cluster.gateway(i).resident_kib().unwrap()).collect();
        println!(
            "{name}: {count} round trips, median {median:?} ({:.1}x), slowest {slowest:?}; gateway RSS {} / {} KiB",
            median.as_secs_f64() / baseline_median.as_secs_f64(),
            rss[0],
            rss[1]
        );
        assert!(slowest < HEALTHY_BOUND, "{name}: a healthy round trip took {slowest:?}");
    }
    for (index, before) in rss_before.into_iter().enumerate() {
        let after = cluster.gateway(index).resident_kib().unwrap();
        println!("gateway {index}: RSS {before} KiB before, {after} KiB after");
        assert!(after < before + RSS_GROWTH_BOUND_KIB, "gateway {index} grew from {before} to {after} KiB");
    }
}

/// Where an attack goes: gateway 0 (and, for accomplices, gateway 1), with a token
/// for any room; `alice_id` is a healthy peer it has no room with.
struct Target {
    url: String,
    other_url: String,
    token: String,
    alice_id: String,
    secret: &'static str,
}

type Attack = fn(Target) -> futures_util::future::BoxFuture<'static, ()>;

async fn mallory(target: &Target) -> Client {
    Client::connect(&target.url, Some(&target.token)).await.expect("the attacker connects")
}

/// Four connections send as fast as they can: refused (`rate_limited`), then closed
/// with 1008.
fn flood(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let floods = (0..4).map(|_| async {
            let mut client = mallory(&target).await;
            client.join("flood-room", None).await.unwrap();
            let frame = json!({"type": "broadcast", "room": "flood-room", "data": "x".repeat(200)}).to_string();
            for _ in 0..20_000 {
                if client.send_raw(Message::text(frame.clone())).await.is_err() {
                    break;
                }
            }
            let (code, _) = client.closed().await.unwrap();
            assert_eq!(code, CloseCode::PolicyViolation.code());
        });
        futures_util::future::join_all(floods).await;
    })
}

/// Twenty connections each send a frame over the 64 KiB limit: closed with 1009.
fn oversized(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        for _ in 0..20 {
            let mut client = mallory(&target).await;
            let huge = json!({"type": "ping", "pad": "x".repeat(100 * 1024)}).to_string();
            let _ = client.send_raw(Message::text(huge)).await;
            assert_eq!(client.closed().await.unwrap().0, CloseCode::TooLarge.code());
        }
    })
}

/// JSON nested 10,000 deep, in a request's data and as the whole frame: `bad_request`
/// (the parser's depth limit), the connection lives.
fn nested(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut client = mallory(&target).await;
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let in_data = format!(r#"{{"type":"broadcast","id":1,"room":"r","data":{deep}}}"#);
        for text in [in_data, deep] {
            client.send_raw(Message::text(text)).await.unwrap();
            expect::error(&mut client, ErrorCode::BadRequest).await;
        }
        client.ping().await.unwrap();
    })
}

/// A text frame that is not UTF-8: closed with 1007.
fn invalid_utf8(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut client = mallory(&target).await;
        let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
        client.send_raw(Message::Frame(frame)).await.unwrap();
        assert_eq!(client.closed().await.unwrap().0, CloseCode::InvalidData.code());
    })
}

/// Binary frames: `bad_request` each, the connection lives.
fn binary(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut client = mallory(&target).await;
        for _ in 0..50 {
            client.send_raw(Message::binary(vec![0u8; 1000])).await.unwrap();
            let message = expect::error(&mut client, ErrorCode::BadRequest).await;
            assert!(message.contains("binary frames are not supported"), "{message}");
        }
        client.ping().await.unwrap();
    })
}

/// One connection sends 10,000 joins to distinct rooms, 50 at a time (reading the
/// answers in between, or it would be cut off as a slow consumer): 16 succeed (the rooms
/// per connection), then `forbidden`, then `rate_limited`, then the close (1008).
fn joins(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut client = mallory(&target).await;
        let (mut joined, mut forbidden, mut limited) = (0, 0, 0);
        'batches: for batch in 0..200 {
            for room in batch * 50..(batch + 1) * 50 {
                let frame = json!({"type": "join", "id": room, "room": format!("many-{room}")}).to_string();
                if client.send_raw(Message::text(frame)).await.is_err() {
                    break;
                }
            }
            for _ in 0..50 {
                match client.next_message().await {
                    Ok(ServerMessage::Joined { .. }) => joined += 1,
                    Ok(ServerMessage::Error { code: ErrorCode::Forbidden, .. }) => forbidden += 1,
                    Ok(ServerMessage::Error { code: ErrorCode::RateLimited, .. }) => limited += 1,
                    Ok(other) => panic!("unexpected {other:?}"),
                    Err(ClientError::Closed { code, .. }) => {
                        assert_eq!(code, CloseCode::PolicyViolation.code());
                        break 'batches;
                    }
                    Err(error) => panic!("{error}"),
                }
            }
        }
        assert_eq!(joined, 16, "the rooms one connection may be in");
        assert!(forbidden > 0 && limited > 0, "{forbidden} forbidden, {limited} rate limited");
    })
}

/// Signals to peer ids that do not exist or cannot, and to a peer it shares no room
/// with: `not_found`, `bad_request`, `forbidden`; nothing delivered (the healthy round
/// trips would see it).
fn forged_peers(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut client = mallory(&target).await;
        client.join("elsewhere", None).await.unwrap();
        let cases = [
            ("0000000000000000", ErrorCode::NotFound),
            ("../../admin", ErrorCode::BadRequest),
            (target.alice_id.as_str(), ErrorCode::NotFound),
        ];
        for (to, code) in cases {
            let refused = client.request(protocol::Request::signal("elsewhere", to, "offer", &json!(1))).await;
            assert_eq!(refused.unwrap_err().code(), Some(code), "{to}");
        }
        let refused = client.request(protocol::Request::signal("talk", &target.alice_id, "offer", &json!(1))).await;
        assert_eq!(refused.unwrap_err().code(), Some(ErrorCode::Forbidden), "not a member of talk");
    })
}

/// Expired and badly signed tokens are refused (4001); a valid token works again when
/// replayed (tokens are bearer credentials until `exp`, docs/security.md).
fn tokens(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        use gateway::auth::{Claims, mint};
        let expired = Claims { exp: protocol::token::unix_now() - 60, ..Claims::new("m", vec![], Duration::ZERO) };
        let forged = mint("not-the-secret", &Claims::new("m", vec!["*".into()], Duration::from_secs(60)));
        for (token, reason) in [(mint(target.secret, &expired), "expired"), (forged, "signature")] {
            for _ in 0..20 {
                match Client::connect(&target.url, Some(&token)).await {
                    Err(ClientError::Server { code: ErrorCode::Unauthorized, message }) => {
                        assert!(message.contains(reason), "{message}")
                    }
                    Err(ClientError::Closed { code, .. }) => assert_eq!(code, CloseCode::Unauthorized.code()),
                    other => panic!("a bad token was not refused: {:?}", other.map(|c| c.peer_id().to_string())),
                }
            }
        }
        for _ in 0..2 {
            drop(mallory(&target).await);
        }
    })
}

/// 200 sockets send part of an upgrade request and then nothing: the gateway drops them
/// at its handshake deadline (2 s here).
fn slowloris(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = target.url.trim_start_matches("ws://").trim_end_matches("/ws").to_string();
        let mut sockets = Vec::new();
        for _ in 0..200 {
            let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
            socket.write_all(b"GET /ws HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\n").await.unwrap();
            sockets.push(socket);
        }
        for mut socket in sockets {
            let mut rest = Vec::new();
            let ended = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut rest)).await;
            assert!(ended.is_ok(), "a slowloris socket outlived the handshake deadline");
            assert!(!String::from_utf8_lossy(&rest).contains(" 101 "), "never upgraded");
        }
    })
}

/// A client stops reading while 15 others (its room is full then), on the other
/// gateway, signal it 900 KB each (within their rate limits): its queue overflows and it
/// is cut off with 4008, rather than its gateway buffering 14 MB for it (the suite
/// checks the gateways' memory).
fn slow_consumer(target: Target) -> futures_util::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        let mut reader = mallory(&target).await;
        reader.join("sink", None).await.unwrap();
        let reader_id = reader.peer_id().to_string();
        let floods = (0..15).map(|_| async {
            let mut flooder = Client::connect(&target.other_url, Some(&target.token)).await.unwrap();
            flooder.join("sink", None).await.unwrap();
            for _ in 0..450 {
                flooder.signal("sink", &reader_id, "app:bulk", json!("y".repeat(2000))).await.unwrap();
            }
            flooder.ping().await.unwrap();
        });
        futures_util::future::join_all(floods).await;
        reader.set_reply_timeout(Duration::from_secs(30));
        assert_eq!(reader.closed().await.unwrap().0, CloseCode::SlowConsumer.code());
    })
}
