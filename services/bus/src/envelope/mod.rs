//! The envelope: the versioned binary form of a message on the bus.
//!
//! Wire form: one format byte ([`FORMAT_V1`]) followed by the protobuf encoding of
//! `signaling.bus.v1.Envelope` (see `proto/signaling/bus/v1/envelope.proto`). Protobuf
//! lets fields be added compatibly; the format byte lets a later release switch the
//! encoding altogether while old and new nodes still tell each other's messages apart.
//!
//! Signals and broadcasts are written and read without the generated types on the hot
//! path: [`encode_ref`], [`decode_ref`] (`borrowed.rs`).

mod borrowed;

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;

pub use cluster_proto::bus::{
    Broadcast, HandoverData, HandoverRequest, PeerJoined, PeerLeft, SequencedFrame, SessionMoved, Signal,
    envelope::Body,
};

pub use borrowed::{BodyRef, BroadcastRef, Decoded, EnvelopeRef, SignalRef, decode_ref, encode_ref};

/// The decoded envelope (the generated protobuf type).
pub type Envelope = cluster_proto::bus::Envelope;

/// Format byte of the current encoding.
pub const FORMAT_V1: u8 = 1;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EnvelopeError {
    #[error("empty envelope")]
    Empty,
    #[error("unknown envelope format {0}")]
    UnknownFormat(u8),
    #[error("undecodable envelope: {0}")]
    Decode(String),
    #[error("envelope without a body")]
    NoBody,
}

/// Encodes an envelope with its format byte.
pub fn encode(envelope: &Envelope) -> Bytes {
    let mut buffer = BytesMut::with_capacity(1 + envelope.encoded_len());
    buffer.put_u8(FORMAT_V1);
    envelope.encode(&mut buffer).expect("BytesMut grows as needed");
    buffer.freeze()
}

/// Decodes an envelope, checking the format byte and that it has a body.
pub fn decode(bytes: &[u8]) -> Result<Envelope, EnvelopeError> {
    let (&format, rest) = bytes.split_first().ok_or(EnvelopeError::Empty)?;
    if format != FORMAT_V1 {
        return Err(EnvelopeError::UnknownFormat(format));
    }
    let envelope = Envelope::decode(rest).map_err(|e| EnvelopeError::Decode(e.to_string()))?;
    if envelope.body.is_none() {
        return Err(EnvelopeError::NoBody);
    }
    Ok(envelope)
}

/// A new envelope for `room` from `origin_node`, stamped with the current time.
pub fn new(room: &str, origin_node: &str, body: Body) -> Envelope {
    Envelope {
        room: room.to_string(),
        origin_node: origin_node.to_string(),
        sent_at_us: now_micros(),
        trace_context: Default::default(),
        body: Some(body),
    }
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let body = Body::Signal(Signal {
            from_peer: "a".into(),
            to_peer: "b".into(),
            kind: "offer".into(),
            data_json: "{\"sdp\":\"v=0\"}".into(),
        });
        let envelope = new("room", "gw-1", body);
        let bytes = encode(&envelope);
        assert_eq!(bytes[0], FORMAT_V1);
        assert_eq!(decode(&bytes).unwrap(), envelope);
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert_eq!(decode(&[]), Err(EnvelopeError::Empty));
        assert_eq!(decode(&[7, 1, 2]), Err(EnvelopeError::UnknownFormat(7)));
        assert!(matches!(decode(&[FORMAT_V1, 0xff, 0xff]), Err(EnvelopeError::Decode(_))));
        let without_body = Envelope { room: "r".into(), ..Default::default() };
        let mut bytes = vec![FORMAT_V1];
        without_body.encode(&mut bytes).unwrap();
        assert_eq!(decode(&bytes), Err(EnvelopeError::NoBody));
    }
}
