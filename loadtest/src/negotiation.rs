//! One WebRTC negotiation as a browser pair sends it through the signaling cluster:
//! an offer, an answer, trickle ICE candidates both ways and end-of-candidates.
//! [`messages`] is what each side sends; [`negotiate`] runs one and fails on anything
//! lost, altered or out of order (the smoke check), where the `negotiate` load scenario
//! counts such messages instead (scenarios/negotiate).

use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use protocol::client::Client;
use protocol::{ServerMessage, kinds};
use serde_json::{Value, json};

/// The shape of a negotiation.
#[derive(Debug, Clone, Copy)]
pub struct Script {
    /// Size of the offer's and the answer's SDP, in bytes (a real one is ~3 KB).
    pub sdp_bytes: usize,
    /// Trickle candidates each side sends.
    pub candidates: usize,
}

impl Default for Script {
    fn default() -> Self {
        Self { sdp_bytes: 3_000, candidates: 8 }
    }
}

/// One side of the call: a connected client and the peer id the other side sees.
pub struct Side<'a> {
    pub client: &'a mut Client,
    pub peer_id: String,
}

/// The side of a negotiation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Offerer,
    Answerer,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Offerer => "offerer",
            Role::Answerer => "answerer",
        }
    }
}

/// What one side sends in a negotiation, in order: its session description, its trickle
/// candidates, end-of-candidates. Deterministic, so a receiver can tell an altered
/// message from an intact one.
pub fn messages(role: Role, script: Script) -> Vec<(&'static str, Value)> {
    let description = match role {
        Role::Offerer => (kinds::OFFER, session_description("offer", script.sdp_bytes)),
        Role::Answerer => (kinds::ANSWER, session_description("answer", script.sdp_bytes)),
    };
    let candidates = (0..script.candidates).map(|index| (kinds::CANDIDATE, candidate(role.name(), index)));
    std::iter::once(description).chain(candidates).chain([(kinds::END_OF_CANDIDATES, json!({}))]).collect()
}

/// Runs `script` from `offerer` to `answerer`, both members of `room`, strictly: any
/// message lost, altered or out of order fails it. Returns the time from the offer to
/// the last end-of-candidates received.
pub async fn negotiate(room: &str, offerer: Side<'_>, answerer: Side<'_>, script: Script) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let offered = messages(Role::Offerer, script);
    let answered = messages(Role::Answerer, script);
    let (offer, offerer_candidates) = offered.split_first().expect("a description first");

    send(room, offerer.client, &answerer.peer_id, std::slice::from_ref(offer)).await?;
    expect(answerer.client, &offerer.peer_id, std::slice::from_ref(offer)).await.context("the offer")?;
    send(room, answerer.client, &offerer.peer_id, &answered).await?;
    expect(offerer.client, &answerer.peer_id, &answered).await.context("the answerer's messages")?;
    send(room, offerer.client, &answerer.peer_id, offerer_candidates).await?;
    expect(answerer.client, &offerer.peer_id, offerer_candidates).await.context("the offerer's candidates")?;
    Ok(started.elapsed())
}

fn session_description(kind: &str, bytes: usize) -> Value {
    let line = "a=x-switchboard-padding\r\n";
    json!({"type": kind, "sdp": format!("v=0\r\n{}", line.repeat(bytes / line.len()))})
}

fn candidate(side: &str, index: usize) -> Value {
    let port = 40_000 + index;
    json!({
        "candidate": format!("candidate:{index} 1 udp 2122260223 127.0.0.1 {port} typ host generation 0 ufrag {side}"),
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    })
}

async fn send(room: &str, client: &mut Client, to: &str, messages: &[(&str, Value)]) -> anyhow::Result<()> {
    for (kind, data) in messages {
        client.signal(room, to, kind, data.clone()).await?;
    }
    Ok(())
}

async fn expect(client: &mut Client, from: &str, messages: &[(&str, Value)]) -> anyhow::Result<()> {
    for (index, (kind, data)) in messages.iter().enumerate() {
        expect_signal(client, from, kind, data).await.with_context(|| format!("message {index}"))?;
    }
    Ok(())
}

/// Waits for the next signal to `client` and checks it is `kind` from `from` carrying
/// `data`; any other signal fails the check.
async fn expect_signal(client: &mut Client, from: &str, kind: &str, data: &Value) -> anyhow::Result<()> {
    let check = |message: ServerMessage| match message {
        ServerMessage::Signal { from: sender, kind: received, data: payload, .. } => {
            Some(if sender != from || received != kind {
                Err(anyhow!("expected {kind} from {from}, received {received} from {sender}"))
            } else if payload.to_value() != *data {
                Err(anyhow!("{kind} from {from} arrived altered: {}", payload.as_str()))
            } else {
                Ok(())
            })
        }
        _ => None,
    };
    next_relevant(client, check).await.with_context(|| format!("waiting for {kind} from {from}"))
}

/// The outcome of the next message `relevant` does not pass over (by returning `None`):
/// presence and other room events come and go around what a check waits for. An
/// `error` frame fails the wait.
pub async fn next_relevant<T>(
    client: &mut Client,
    mut relevant: impl FnMut(ServerMessage) -> Option<anyhow::Result<T>>,
) -> anyhow::Result<T> {
    loop {
        match client.next_message().await? {
            ServerMessage::Error { code, message, .. } => bail!("error {code}: {message}"),
            message => {
                if let Some(outcome) = relevant(message) {
                    return outcome;
                }
            }
        }
    }
}
