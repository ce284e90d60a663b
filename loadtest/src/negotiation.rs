//! One WebRTC negotiation as a browser pair sends it through the signaling cluster:
//! an offer, an answer, trickle ICE candidates both ways and end-of-candidates. Each
//! side checks it received exactly what the other sent, in order.

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

/// Runs `script` from `offerer` to `answerer`, both members of `room`. Returns the time
/// from the offer to the last end-of-candidates received.
pub async fn negotiate(room: &str, offerer: Side<'_>, answerer: Side<'_>, script: Script) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let offer = session_description("offer", script.sdp_bytes);
    offerer.client.signal(room, &answerer.peer_id, kinds::OFFER, offer.clone()).await?;
    expect_signal(answerer.client, &offerer.peer_id, kinds::OFFER, &offer).await?;

    let answer = session_description("answer", script.sdp_bytes);
    answerer.client.signal(room, &offerer.peer_id, kinds::ANSWER, answer.clone()).await?;
    trickle(room, answerer.client, &offerer.peer_id, "answerer", script.candidates).await?;
    expect_signal(offerer.client, &answerer.peer_id, kinds::ANSWER, &answer).await?;
    expect_trickle(offerer.client, &answerer.peer_id, "answerer", script.candidates).await?;

    trickle(room, offerer.client, &answerer.peer_id, "offerer", script.candidates).await?;
    expect_trickle(answerer.client, &offerer.peer_id, "offerer", script.candidates).await?;
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

async fn trickle(room: &str, client: &mut Client, to: &str, side: &str, count: usize) -> anyhow::Result<()> {
    for index in 0..count {
        client.signal(room, to, kinds::CANDIDATE, candidate(side, index)).await?;
    }
    client.signal(room, to, kinds::END_OF_CANDIDATES, json!({})).await?;
    Ok(())
}

async fn expect_trickle(client: &mut Client, from: &str, side: &str, count: usize) -> anyhow::Result<()> {
    for index in 0..count {
        expect_signal(client, from, kinds::CANDIDATE, &candidate(side, index))
            .await
            .with_context(|| format!("candidate {index} of the {side}"))?;
    }
    expect_signal(client, from, kinds::END_OF_CANDIDATES, &json!({})).await
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
