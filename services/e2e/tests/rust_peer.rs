//! Two real WebRTC peers (webrtc-rs) negotiate through the signaling cluster.
//!
//! Alice's client is on gateway 0 and Bob's on gateway 1, so every offer, answer and
//! trickled candidate crosses Redis between the gateways. The test proves that what the
//! cluster relays is enough for a real WebRTC stack: both peer connections reach
//! `connected`, the DataChannel Bob created opens on both sides, and one text message
//! travels each way over it.
//!
//! Loopback only: no STUN or TURN server and no mDNS; each peer binds one UDP socket on
//! 127.0.0.1, so the test also passes in a network namespace with only `lo`.
//! Built only with `--features rust-peer`, because the webrtc crate is heavy to compile.

use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::{TestCluster, expect};
use protocol::ServerMessage;
use protocol::client::{Client, ClientError};
use rtc::ice::mdns::MulticastDnsMode;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceCandidateInit, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
};

const ROOM: &str = "rtc";

/// The bound on each wait for the network or the other peer: generous for a slow debug
/// build, short enough that a stuck negotiation fails the test instead of hanging it.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);

/// A backstop for every other await (webrtc-rs driver round trips, cluster start and
/// stop), so that nothing can hang the test.
const TEST_TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_on_two_gateways_open_a_data_channel() {
    tokio::time::timeout(TEST_TIMEOUT, call_through_two_gateways()).await.expect("the test ends within its time limit");
}

async fn call_through_two_gateways() {
    let cluster = TestCluster::redis(2).await;
    let mut alice = cluster.connect(0, "alice", &[ROOM]).await;
    let mut bob = cluster.connect(1, "bob", &[ROOM]).await;
    let (alice_id, bob_id) = (alice.peer_id().to_string(), bob.peer_id().to_string());

    assert!(alice.join(ROOM, None).await.unwrap().is_empty());
    let present = bob.join(ROOM, None).await.unwrap();
    assert_eq!(present.iter().map(|peer| peer.peer_id.as_str()).collect::<Vec<_>>(), [alice_id.as_str()]);
    assert_eq!(expect::peer_joined(&mut alice, ROOM).await.peer_id, bob_id);

    let mut alice_peer = Peer::new().await;
    let mut bob_peer = Peer::new().await;
    // The newcomer calls, as a browser app would. The channel exists before the offer so
    // that the offer carries the SCTP section it is negotiated in.
    let bob_channel = bob_peer.pc.create_data_channel("chat", None).await.expect("create a data channel");

    let started = Instant::now();
    let mut alice_pump = Pump::start("alice", alice, &mut alice_peer, &bob_id, Role::Answerer);
    let mut bob_pump = Pump::start("bob", bob, &mut bob_peer, &alice_id, Role::Offerer);

    let scenario = async {
        within("alice connected", connected(&mut alice_peer.state)).await;
        within("bob connected", connected(&mut bob_peer.state)).await;

        let alice_channel =
            within("alice's data channel", alice_peer.channels.recv()).await.expect("alice's peer connection is alive");
        assert_eq!(alice_channel.label().await.unwrap(), "chat");
        within("bob's channel open", opened(&*bob_channel)).await;
        within("alice's channel open", opened(&*alice_channel)).await;
        let open_after = started.elapsed();

        bob_channel.send_text("hello from bob").await.unwrap();
        assert_eq!(within("bob's message", text(&*alice_channel)).await, "hello from bob");
        alice_channel.send_text("hello from alice").await.unwrap();
        assert_eq!(within("alice's message", text(&*bob_channel)).await, "hello from alice");

        // Reported, not asserted: it depends on the machine.
        eprintln!("data channel open on both sides {open_after:?} after negotiation started");
    };
    // A pump only ends early by failing; racing it against the scenario reports its
    // failure at once instead of as a timeout of whatever step waited for it.
    tokio::select! {
        () = scenario => {}
        ended = &mut alice_pump.task => panic!("alice's signaling pump ended early: {:?}", ended.err()),
        ended = &mut bob_pump.task => panic!("bob's signaling pump ended early: {:?}", ended.err()),
    }

    // Signaling stops before the peer connections close, so no late candidate meets a
    // closed connection, and before the gateways stop, so no signal is in flight.
    let alice = alice_pump.stop().await;
    let bob = bob_pump.stop().await;
    // webrtc-rs gathers only once a local description is set, so the descriptions carry
    // no candidates: the peers found each other through candidates the cluster trickled.
    assert!(alice.candidates_received > 0 && bob.candidates_received > 0);
    within("alice's peer connection closed", alice_peer.pc.close()).await.unwrap();
    within("bob's peer connection closed", bob_peer.pc.close()).await.unwrap();
    alice.client.close().await.unwrap();
    bob.client.close().await.unwrap();
    cluster.shutdown().await;
}

/// A webrtc-rs peer connection and the events its handler reports.
struct Peer {
    pc: Arc<dyn PeerConnection>,
    /// What the signaling pump must send to the remote peer; taken by the pump.
    outgoing: Option<mpsc::UnboundedReceiver<Outgoing>>,
    state: watch::Receiver<RTCPeerConnectionState>,
    /// Data channels the remote peer opened.
    channels: mpsc::UnboundedReceiver<Arc<dyn DataChannel>>,
}

impl Peer {
    async fn new() -> Self {
        let (outgoing_tx, outgoing) = mpsc::unbounded_channel();
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let (channels_tx, channels) = mpsc::unbounded_channel();
        let handler = Handler { outgoing: outgoing_tx, state: state_tx, channels: channels_tx };
        // No mDNS: by default webrtc-rs also joins the mDNS multicast group on
        // 0.0.0.0:5353, which fails (ENODEV) where loopback is the only interface, as in
        // the test suite's network namespace. Candidates here are plain IP addresses.
        let settings = SettingEngineBuilder::new().with_multicast_dns_mode(MulticastDnsMode::Disabled).build();
        let pc = PeerConnectionBuilder::new()
            .with_setting_engine(settings)
            .with_handler(Arc::new(handler))
            // A concrete loopback address: a wildcard would bind every interface except
            // loopback, and no STUN/TURN server is configured to find any other address.
            .with_udp_addrs(vec!["127.0.0.1:0"])
            .build()
            .await
            .expect("build a peer connection");
        Self { pc: Arc::new(pc), outgoing: Some(outgoing), state, channels }
    }
}

enum Outgoing {
    Candidate(RTCIceCandidateInit),
    EndOfCandidates,
}

/// Forwards the peer connection's events to channels. The callbacks run on the
/// connection's driver task, so they only hand events over, never wait.
struct Handler {
    outgoing: mpsc::UnboundedSender<Outgoing>,
    state: watch::Sender<RTCPeerConnectionState>,
    channels: mpsc::UnboundedSender<Arc<dyn DataChannel>>,
}

// The handler trait is declared with `async_trait`; tonic re-exports the same macro.
#[tonic::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        match event.candidate.to_json() {
            Ok(candidate) => {
                let _ = self.outgoing.send(Outgoing::Candidate(candidate));
            }
            // Not a panic: this runs on the driver, and the missing candidate shows as a
            // failed connection anyway.
            Err(error) => eprintln!("cannot serialize local candidate {}: {error}", event.candidate),
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.outgoing.send(Outgoing::EndOfCandidates);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_data_channel(&self, channel: Arc<dyn DataChannel>) {
        let _ = self.channels.send(channel);
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Offerer,
    Answerer,
}

/// One peer's signaling, on a task of its own because a [`Client`] has a single owner:
/// signals from the remote peer go into the peer connection, local candidates go out.
struct Pump {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Signaling>,
}

impl Pump {
    fn start(name: &'static str, client: Client, peer: &mut Peer, remote: &str, role: Role) -> Self {
        let (stop, stopped) = oneshot::channel();
        let outgoing = peer.outgoing.take().expect("one pump per peer");
        let pc = Arc::clone(&peer.pc);
        let signaling = Signaling { name, client, pc, remote: remote.to_string(), candidates_received: 0 };
        Self { stop, task: tokio::spawn(signaling.run(role, outgoing, stopped)) }
    }

    /// Stops the pump and gives its state back.
    async fn stop(self) -> Signaling {
        let _ = self.stop.send(());
        within("the signaling pump to stop", self.task).await.expect("the signaling pump")
    }
}

struct Signaling {
    name: &'static str,
    client: Client,
    pc: Arc<dyn PeerConnection>,
    remote: String,
    candidates_received: usize,
}

impl Signaling {
    async fn run(
        mut self,
        role: Role,
        mut outgoing: mpsc::UnboundedReceiver<Outgoing>,
        mut stopped: oneshot::Receiver<()>,
    ) -> Self {
        if role == Role::Offerer {
            let offer = self.pc.create_offer(None).await.expect("create an offer");
            self.pc.set_local_description(offer.clone()).await.expect("apply the local offer");
            self.send("offer", serde_json::to_value(&offer).unwrap()).await;
        }
        // A candidate cannot be added before the remote description. The cluster keeps one
        // sender's order, so none should come first, but a client must not depend on it.
        let mut early_candidates = Some(Vec::new());
        loop {
            tokio::select! {
                _ = &mut stopped => return self,
                Some(event) = outgoing.recv() => match event {
                    Outgoing::Candidate(candidate) => self.send("candidate", serde_json::to_value(&candidate).unwrap()).await,
                    Outgoing::EndOfCandidates => self.send("end_of_candidates", Value::Null).await,
                },
                message = self.client.next_message() => match message {
                    Ok(ServerMessage::Signal { room, from, kind, data }) => {
                        assert_eq!((room.as_str(), from.as_str()), (ROOM, self.remote.as_str()), "{}", self.name);
                        self.receive(&kind, data.to_value(), &mut early_candidates).await;
                    }
                    // Quiet signaling is normal once the peers are connected.
                    Err(ClientError::Timeout { .. }) => {}
                    other => panic!("{}: unexpected from the gateway: {other:?}", self.name),
                },
            }
        }
    }

    /// Applies one signal from the remote peer. `early_candidates` holds candidates
    /// until the remote description is set, and is `None` from then on.
    async fn receive(&mut self, kind: &str, data: Value, early_candidates: &mut Option<Vec<RTCIceCandidateInit>>) {
        let name = self.name;
        match kind {
            "offer" | "answer" => {
                let description: RTCSessionDescription =
                    serde_json::from_value(data).unwrap_or_else(|e| panic!("{name}: bad {kind}: {e}"));
                self.pc.set_remote_description(description).await.unwrap_or_else(|e| panic!("{name}: {kind}: {e}"));
                for candidate in early_candidates.take().unwrap_or_default() {
                    self.pc.add_ice_candidate(candidate).await.unwrap_or_else(|e| panic!("{name}: candidate: {e}"));
                }
                if kind == "offer" {
                    let answer = self.pc.create_answer(None).await.expect("create an answer");
                    self.pc.set_local_description(answer.clone()).await.expect("apply the local answer");
                    self.send("answer", serde_json::to_value(&answer).unwrap()).await;
                }
            }
            "candidate" => {
                self.candidates_received += 1;
                let candidate: RTCIceCandidateInit =
                    serde_json::from_value(data).unwrap_or_else(|e| panic!("{name}: bad candidate: {e}"));
                match early_candidates {
                    Some(early) => early.push(candidate),
                    None => {
                        self.pc.add_ice_candidate(candidate).await.unwrap_or_else(|e| panic!("{name}: candidate: {e}"))
                    }
                }
            }
            // Nothing to do: webrtc-rs treats an empty candidate as a no-op, and its ICE
            // agent keeps checking the pairs it has either way.
            "end_of_candidates" => {}
            other => panic!("{name}: unexpected signal kind {other}"),
        }
    }

    /// Sends a signal. webrtc-rs serializes descriptions and candidates in the browser's
    /// JSON shapes, `{type, sdp}` and `RTCIceCandidateInit`, so they go out as they are.
    async fn send(&mut self, kind: &str, data: Value) {
        self.client
            .signal(ROOM, &self.remote, kind, data)
            .await
            .unwrap_or_else(|e| panic!("{}: send {kind}: {e}", self.name));
    }
}

/// Waits until the connection is `connected`; failing or closing first fails the test.
async fn connected(state: &mut watch::Receiver<RTCPeerConnectionState>) {
    use RTCPeerConnectionState::{Closed, Connected, Failed};
    let reached = *state.wait_for(|s| matches!(s, Connected | Failed | Closed)).await.expect("the handler is alive");
    assert_eq!(reached, Connected);
}

/// Waits for the channel's `open` event.
async fn opened(channel: &dyn DataChannel) {
    match next_event(channel).await {
        DataChannelEvent::OnOpen => {}
        other => panic!("expected the data channel to open, got {other:?}"),
    }
}

/// Waits for the channel's next message, which must be text.
async fn text(channel: &dyn DataChannel) -> String {
    match next_event(channel).await {
        DataChannelEvent::OnMessage(message) if message.is_string => {
            String::from_utf8(message.data.to_vec()).expect("a text message is UTF-8")
        }
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The channel's next event, skipping buffered-amount notices. A channel that errors or
/// closes fails the test.
async fn next_event(channel: &dyn DataChannel) -> DataChannelEvent {
    loop {
        match channel.poll().await {
            Some(DataChannelEvent::OnBufferedAmountLow | DataChannelEvent::OnBufferedAmountHigh) => {}
            Some(event @ (DataChannelEvent::OnOpen | DataChannelEvent::OnMessage(_))) => return event,
            other => panic!("data channel failed or closed: {other:?}"),
        }
    }
}

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, future).await.unwrap_or_else(|_| panic!("no {what} within {STEP_TIMEOUT:?}"))
}
