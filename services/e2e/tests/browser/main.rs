//! The JavaScript SDK and the demo app in real headless Chromium, against real clusters:
//! browsers on different gateways must really connect (ICE, DTLS, media, DataChannel),
//! not just exchange signaling messages.
//!
//! Each test starts its own chromedriver and one browser per page; see
//! docs/testing.md for running them in a network namespace with only loopback.

pub use e2e::TestCluster;

mod call;
mod embedded;
mod mesh;
mod reconnect;

use std::time::Duration;

/// Generous bounds for a 2-core machine running the cluster and several browsers; a
/// connection normally takes about a second.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(45);
pub const MEDIA_TIMEOUT: Duration = Duration::from_secs(30);

/// The demo page of `base` that joins `room` at once as `name`, with `token` if given.
pub fn demo_url(base: &str, room: &str, name: &str, token: Option<&str>) -> String {
    let token = token.map(|token| format!("&token={token}")).unwrap_or_default();
    format!("{base}/#room={room}&name={name}&autojoin=1{token}")
}

/// The JavaScript condition: connected, with the chat channel open, to exactly `n` peers.
pub fn connected_to(n: usize) -> String {
    format!("s.peers.length === {n} && s.peers.every((p) => p.connectionState === 'connected' && p.chatOpen)")
}
