//! A client that survives lost connections: it reconnects with backoff, to the next of
//! its gateway URLs, resumes its session there, and follows a gateway's `reconnect`
//! instruction (sent before the gateway drains). What it received before and after is
//! one sequence: nothing lost, nothing twice, unless the resume reports a gap.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::{Auth, Client, ClientError, Start};
use crate::{JsonData, PeerInfo, Request, ServerMessage};

/// Exponential backoff with full jitter between reconnection attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub min: Duration,
    pub max: Duration,
    /// Attempts stop (with the last error) once this much time has passed.
    pub give_up_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { min: Duration::from_millis(50), max: Duration::from_secs(2), give_up_after: Duration::from_secs(30) }
    }
}

pub struct ReconnectingClient {
    urls: Vec<String>,
    next_url: usize,
    token: String,
    backoff: Backoff,
    client: Client,
    /// Messages read while checking for a `reconnect` before a send, not yet returned.
    pending: VecDeque<ServerMessage>,
    /// Rooms joined, with their metadata, to join again if a resume fails.
    rooms: BTreeMap<String, Option<serde_json::Value>>,
    /// How every reconnection went, oldest first, and how long each took (from
    /// noticing the need to the first message on the new connection).
    starts: Vec<Start>,
    reconnect_times: Vec<Duration>,
    sequence_errors: Vec<String>,
}

impl ReconnectingClient {
    /// Connects to the first of `urls` (a load balancer, or the gateways themselves).
    pub async fn connect(urls: Vec<String>, token: &str, backoff: Backoff) -> Result<Self, ClientError> {
        assert!(!urls.is_empty(), "at least one gateway URL");
        let client = Client::connect(&urls[0], Some(token)).await?;
        Ok(Self {
            urls,
            next_url: 1,
            token: token.to_string(),
            backoff,
            client,
            pending: VecDeque::new(),
            rooms: BTreeMap::new(),
            starts: Vec::new(),
            reconnect_times: Vec::new(),
            sequence_errors: Vec::new(),
        })
    }

    pub fn peer_id(&self) -> &str {
        self.client.peer_id()
    }

    /// The current connection.
    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }

    /// How each reconnection went (resumed, with or without a gap, or a new session).
    pub fn starts(&self) -> &[Start] {
        &self.starts
    }

    /// How long each reconnection took, in the order of [`Self::starts`].
    pub fn reconnect_times(&self) -> &[Duration] {
        &self.reconnect_times
    }

    /// Sequence errors over every connection so far (see [`Client::sequence_errors`]).
    pub fn sequence_errors(&self) -> Vec<String> {
        self.sequence_errors.iter().chain(self.client.sequence_errors()).cloned().collect()
    }

    pub async fn join(
        &mut self,
        room: &str,
        metadata: Option<serde_json::Value>,
    ) -> Result<Vec<PeerInfo>, ClientError> {
        self.follow_instructions().await?;
        let peers = match self.client.join(room, metadata.clone()).await {
            Err(error) if error.is_connection_lost() => {
                self.reconnect().await?;
                self.client.join(room, metadata.clone()).await?
            }
            other => other?,
        };
        self.rooms.insert(room.to_string(), metadata);
        Ok(peers)
    }

    pub async fn leave(&mut self, room: &str) -> Result<(), ClientError> {
        self.follow_instructions().await?;
        self.rooms.remove(room);
        self.client.leave(room).await
    }

    /// Sends a signal (without an id, see [`Client::signal`]).
    pub async fn signal(
        &mut self,
        room: &str,
        to: &str,
        kind: &str,
        data: serde_json::Value,
    ) -> Result<(), ClientError> {
        self.send(Request::signal(room, to, kind, &data)).await
    }

    /// Sends a broadcast (without an id).
    pub async fn broadcast(&mut self, room: &str, data: serde_json::Value) -> Result<(), ClientError> {
        self.send(Request::broadcast(room, &data)).await
    }

    /// Sends a request without an id. Before sending it checks whether the gateway asked
    /// to move, so nothing goes onto a connection the gateway is closing.
    async fn send(&mut self, request: Request) -> Result<(), ClientError> {
        self.follow_instructions().await?;
        match self.client.send(request.clone()).await {
            Err(error) if error.is_connection_lost() => {
                self.reconnect().await?;
                self.client.send(request).await
            }
            other => other,
        }
    }

    /// The next message. A lost connection or a `reconnect` instruction is handled here:
    /// after reconnecting, `resumed` comes next (or, if the session could not be resumed,
    /// the new `welcome` and a `joined` for each room joined again), then the session
    /// goes on.
    pub async fn next_message(&mut self) -> Result<ServerMessage, ClientError> {
        loop {
            if let Some(message) = self.pending.pop_front() {
                return Ok(message);
            }
            match self.client.next_message().await {
                Ok(ServerMessage::Reconnect { .. }) => self.move_on().await?,
                Err(error) if error.is_connection_lost() => self.reconnect().await?,
                other => return other,
            }
        }
    }

    /// A message that has already arrived, without waiting for one. A lost connection
    /// or a `reconnect` instruction found on the way is handled first (which waits for
    /// the reconnection), so a sender that only polls between sends follows its
    /// gateway as [`Self::next_message`] does.
    pub async fn poll_message(&mut self) -> Result<Option<ServerMessage>, ClientError> {
        self.follow_instructions().await?;
        Ok(self.pending.pop_front())
    }

    /// Reads what has already arrived; on a `reconnect` instruction, moves at once.
    async fn follow_instructions(&mut self) -> Result<(), ClientError> {
        loop {
            match self.client.poll_message().await {
                Ok(Some(ServerMessage::Reconnect { .. })) => self.move_on().await?,
                Ok(Some(message)) => self.pending.push_back(message),
                Ok(None) => return Ok(()),
                Err(error) if error.is_connection_lost() => self.reconnect().await?,
                Err(error) => return Err(error),
            }
        }
    }

    /// Follows a `reconnect` instruction. First a `ping` on the old connection: the
    /// gateway handles a client's requests in order, so once the `pong` is back
    /// everything sent before it has been handled there, and nothing sent is left behind
    /// when the session moves. Messages read meanwhile are kept.
    async fn move_on(&mut self) -> Result<(), ClientError> {
        match self.client.ping().await {
            Ok(()) | Err(ClientError::Server { .. }) => {}
            Err(error) if error.is_connection_lost() => {}
            Err(error) => return Err(error),
        }
        let carried = self.client.take_backlog();
        self.pending.extend(carried);
        self.reconnect().await
    }

    /// Reconnects, trying the URLs in turn with backoff, and resumes; if the session is
    /// gone, starts a new one and joins its rooms again. Queues what started the new
    /// connection (`resumed`, or `welcome` and the `joined` replies).
    async fn reconnect(&mut self) -> Result<(), ClientError> {
        let resume_token = self.client.resume_token().map(str::to_string);
        let last_seq = self.client.last_seq();
        self.sequence_errors.extend(self.client.sequence_errors().iter().cloned());
        let started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        let (client, start, joined) = loop {
            let url = self.urls[self.next_url % self.urls.len()].clone();
            self.next_url += 1;
            let outcome = match &resume_token {
                Some(resume) => Client::resume(&url, resume, last_seq, Auth::Query(self.token.clone())).await,
                None => Client::connect(&url, Some(&self.token)).await.map(|client| (client, Start::Fresh)),
            };
            let outcome = match outcome {
                Ok((client, Start::Fresh)) => self.join_again(client).await,
                Ok((client, resumed)) => Ok((client, resumed, Vec::new())),
                Err(error) => Err(error),
            };
            match outcome {
                Ok(connected) => break connected,
                Err(error) if started.elapsed() > self.backoff.give_up_after || !retryable(&error) => {
                    return Err(error);
                }
                Err(_) => {
                    let ceiling = self.backoff.max.min(self.backoff.min * 2u32.saturating_pow(attempt.min(16)));
                    attempt += 1;
                    tokio::time::sleep(ceiling.mul_f64(0.5 + rand_unit() / 2.0)).await;
                }
            }
        };
        // The old connection is replaced; its socket (if still open) is dropped here.
        let old = std::mem::replace(&mut self.client, client);
        old.abandon();
        self.starts.push(start.clone());
        self.reconnect_times.push(started.elapsed());
        match start {
            Start::Resumed { gap, rooms } => self.pending.push_back(ServerMessage::Resumed(crate::Resumed {
                session: self.client.welcome().clone(),
                rooms,
                gap,
            })),
            Start::Fresh => self.pending.push_back(ServerMessage::Welcome(self.client.welcome().clone())),
        }
        self.pending.extend(joined);
        Ok(())
    }

    /// A new session: joins the rooms again. If one fails, the session is closed (so the
    /// gateway ends it at once) and the attempt counts as failed.
    async fn join_again(&self, mut client: Client) -> Result<(Client, Start, Vec<ServerMessage>), ClientError> {
        let mut joined = Vec::new();
        for (room, metadata) in &self.rooms {
            let request = Request::Join { room: room.clone(), metadata: metadata.as_ref().map(JsonData::from_value) };
            match client.request(request).await {
                Ok(reply) => joined.push(reply),
                Err(error) => {
                    let _ = client.close().await;
                    return Err(error);
                }
            }
        }
        Ok((client, Start::Fresh, joined))
    }
}

/// Errors worth another attempt: the connection, or an `unavailable` answer.
fn retryable(error: &ClientError) -> bool {
    error.is_connection_lost()
        || matches!(error, ClientError::Timeout { .. })
        || error.code() == Some(crate::ErrorCode::Unavailable)
}

/// A number in [0, 1) for jitter, without a dependency on `rand`.
fn rand_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(std::process::id() as u64);
    (hasher.finish() % 1_000_000) as f64 / 1_000_000.0
}
