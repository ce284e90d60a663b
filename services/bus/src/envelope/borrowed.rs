//! Signals and broadcasts, the bus's hot path, written from and read into borrowed
//! parts.
//!
//! Every relayed message is encoded once and decoded by every gateway of its room (the
//! sender's included). Through the generated types each of those copies every field
//! into a `String` of its own, the payload too (a 3 KB description, twice). Here the
//! wire form is written straight from the sender's strings, and read into slices of
//! the received bytes. The bytes are exactly the generated code's (a test compares
//! them), so either side may use either way.
//!
//! Reading takes this path only for the form written here: each field at most once,
//! no field it does not know, a signal or broadcast body. Anything else (presence, the
//! handover, a message from a newer node with fields added) is decoded by the generated
//! code, and looks the same afterwards ([`Decoded::envelope`]).

use std::collections::HashMap;

use bytes::{BufMut, Bytes, BytesMut};
use prost::encoding::{WireType, decode_key, decode_varint, encode_key, encode_varint, encoded_len_varint, key_len};

use super::{Body, Envelope, EnvelopeError, FORMAT_V1};

/// An envelope whose text fields borrow from wherever they are kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EnvelopeRef<'a> {
    pub room: &'a str,
    pub origin_node: &'a str,
    pub sent_at_us: i64,
    pub body: BodyRef<'a>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BodyRef<'a> {
    Signal(SignalRef<'a>),
    Broadcast(BroadcastRef<'a>),
    /// Any other body, decoded by the generated code.
    Other(&'a Body),
}

/// `signaling.bus.v1.Signal`, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SignalRef<'a> {
    pub from_peer: &'a str,
    pub to_peer: &'a str,
    pub kind: &'a str,
    pub data_json: &'a str,
}

/// `signaling.bus.v1.Broadcast`, borrowed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BroadcastRef<'a> {
    pub from_peer: &'a str,
    pub data_json: &'a str,
    pub loopback: bool,
}

impl<'a> EnvelopeRef<'a> {
    /// A view of a decoded envelope (which has a body: [`super::decode`] checks).
    pub fn of(envelope: &'a Envelope) -> Self {
        let body = match envelope.body.as_ref().expect("decoded envelopes have a body") {
            Body::Signal(signal) => BodyRef::Signal(SignalRef {
                from_peer: &signal.from_peer,
                to_peer: &signal.to_peer,
                kind: &signal.kind,
                data_json: &signal.data_json,
            }),
            Body::Broadcast(broadcast) => BodyRef::Broadcast(BroadcastRef {
                from_peer: &broadcast.from_peer,
                data_json: &broadcast.data_json,
                loopback: broadcast.loopback,
            }),
            other => BodyRef::Other(other),
        };
        Self { room: &envelope.room, origin_node: &envelope.origin_node, sent_at_us: envelope.sent_at_us, body }
    }
}

/// Encodes an envelope with its format byte: the bytes [`super::encode`] would give for
/// the same fields.
pub fn encode_ref(envelope: EnvelopeRef<'_>, trace_context: &HashMap<String, String>) -> Bytes {
    let body_len = match envelope.body {
        BodyRef::Signal(signal) => signal_len(signal),
        BodyRef::Broadcast(broadcast) => broadcast_len(broadcast),
        BodyRef::Other(body) => body.encoded_len(),
    };
    let mut length = str_field_len(1, envelope.room) + str_field_len(2, envelope.origin_node);
    if envelope.sent_at_us != 0 {
        length += key_len(3) + encoded_len_varint(envelope.sent_at_us as u64);
    }
    length += prost::encoding::hash_map::encoded_len(
        prost::encoding::string::encoded_len,
        prost::encoding::string::encoded_len,
        4,
        trace_context,
    );
    length += match envelope.body {
        BodyRef::Other(_) => body_len,
        _ => key_len(10) + encoded_len_varint(body_len as u64) + body_len,
    };
    let mut buffer = BytesMut::with_capacity(1 + length);
    buffer.put_u8(FORMAT_V1);
    put_str_field(1, envelope.room, &mut buffer);
    put_str_field(2, envelope.origin_node, &mut buffer);
    if envelope.sent_at_us != 0 {
        encode_key(3, WireType::Varint, &mut buffer);
        encode_varint(envelope.sent_at_us as u64, &mut buffer);
    }
    prost::encoding::hash_map::encode(
        prost::encoding::string::encode,
        prost::encoding::string::encoded_len,
        prost::encoding::string::encode,
        prost::encoding::string::encoded_len,
        4,
        trace_context,
        &mut buffer,
    );
    match envelope.body {
        BodyRef::Signal(signal) => {
            put_nested_key(10, body_len, &mut buffer);
            put_str_field(1, signal.from_peer, &mut buffer);
            put_str_field(2, signal.to_peer, &mut buffer);
            put_str_field(3, signal.kind, &mut buffer);
            put_str_field(4, signal.data_json, &mut buffer);
        }
        BodyRef::Broadcast(broadcast) => {
            put_nested_key(11, body_len, &mut buffer);
            put_str_field(1, broadcast.from_peer, &mut buffer);
            put_str_field(2, broadcast.data_json, &mut buffer);
            if broadcast.loopback {
                encode_key(3, WireType::Varint, &mut buffer);
                encode_varint(1, &mut buffer);
            }
        }
        BodyRef::Other(body) => body.encode(&mut buffer),
    }
    debug_assert_eq!(buffer.len(), 1 + length);
    buffer.freeze()
}

fn signal_len(signal: SignalRef<'_>) -> usize {
    str_field_len(1, signal.from_peer)
        + str_field_len(2, signal.to_peer)
        + str_field_len(3, signal.kind)
        + str_field_len(4, signal.data_json)
}

fn broadcast_len(broadcast: BroadcastRef<'_>) -> usize {
    str_field_len(1, broadcast.from_peer)
        + str_field_len(2, broadcast.data_json)
        + if broadcast.loopback { key_len(3) + 1 } else { 0 }
}

/// A string field as proto3 writes it: not at all when empty.
fn str_field_len(tag: u32, value: &str) -> usize {
    if value.is_empty() { 0 } else { key_len(tag) + encoded_len_varint(value.len() as u64) + value.len() }
}

fn put_str_field(tag: u32, value: &str, buffer: &mut BytesMut) {
    if !value.is_empty() {
        put_nested_key(tag, value.len(), buffer);
        buffer.put_slice(value.as_bytes());
    }
}

fn put_nested_key(tag: u32, len: usize, buffer: &mut BytesMut) {
    encode_key(tag, WireType::LengthDelimited, buffer);
    encode_varint(len as u64, buffer);
}

/// What [`decode_ref`] read: borrowed from the bytes, or decoded whole (whose body a
/// caller may then take, as the dispatcher takes a handover's data).
#[derive(Debug)]
pub enum Decoded<'a> {
    Borrowed { envelope: EnvelopeRef<'a>, trace_context: HashMap<String, String> },
    Owned(Envelope),
}

impl Decoded<'_> {
    pub fn envelope(&self) -> EnvelopeRef<'_> {
        match self {
            Decoded::Borrowed { envelope, .. } => *envelope,
            Decoded::Owned(envelope) => EnvelopeRef::of(envelope),
        }
    }

    /// The W3C trace context of the publishing span; empty when not traced.
    pub fn trace_context(&self) -> &HashMap<String, String> {
        match self {
            Decoded::Borrowed { trace_context, .. } => trace_context,
            Decoded::Owned(envelope) => &envelope.trace_context,
        }
    }
}

/// Decodes an envelope with its format byte, as [`super::decode`] does, borrowing from
/// `bytes` when it is a signal or broadcast in the form [`encode_ref`] writes.
pub fn decode_ref(bytes: &[u8]) -> Result<Decoded<'_>, EnvelopeError> {
    let (&format, rest) = bytes.split_first().ok_or(EnvelopeError::Empty)?;
    if format != FORMAT_V1 {
        return Err(EnvelopeError::UnknownFormat(format));
    }
    match read_envelope(rest) {
        Some((envelope, trace_context)) => Ok(Decoded::Borrowed { envelope, trace_context }),
        None => super::decode(bytes).map(Decoded::Owned),
    }
}

/// The fields seen so far, by bit.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// Marks a field; `None` if it was there already (the generated code would merge
    /// or replace: that is left to it).
    fn first(&mut self, bit: u32) -> Option<()> {
        let fresh = self.0 & (1 << bit) == 0;
        self.0 |= 1 << bit;
        fresh.then_some(())
    }
}

/// `None` for anything not in the form `encode_ref` writes (or not valid at all): the
/// generated code decides then.
fn read_envelope(mut buffer: &[u8]) -> Option<(EnvelopeRef<'_>, HashMap<String, String>)> {
    let (mut room, mut origin_node, mut sent_at_us, mut body) = ("", "", 0, None);
    let mut trace_context = HashMap::new();
    let mut seen = Seen::default();
    while !buffer.is_empty() {
        let (tag, wire_type) = decode_key(&mut buffer).ok()?;
        match (tag, wire_type) {
            (1, WireType::LengthDelimited) => room = seen.first(1).and(read_str(&mut buffer))?,
            (2, WireType::LengthDelimited) => origin_node = seen.first(2).and(read_str(&mut buffer))?,
            (3, WireType::Varint) => sent_at_us = seen.first(3).and(decode_varint(&mut buffer).ok())? as i64,
            // Map entries repeat; a key seen twice is left to the generated code.
            (4, WireType::LengthDelimited) => {
                let [key, value] = read_strings(read_bytes(&mut buffer)?)?;
                if trace_context.insert(key.to_string(), value.to_string()).is_some() {
                    return None;
                }
            }
            (10, WireType::LengthDelimited) => {
                seen.first(10)?;
                body = Some(BodyRef::Signal(read_signal(read_bytes(&mut buffer)?)?));
            }
            // One body: a second of either kind is left to the generated code too.
            (11, WireType::LengthDelimited) => {
                seen.first(10)?;
                body = Some(BodyRef::Broadcast(read_broadcast(read_bytes(&mut buffer)?)?));
            }
            _ => return None,
        }
    }
    Some((EnvelopeRef { room, origin_node, sent_at_us, body: body? }, trace_context))
}

fn read_signal(buffer: &[u8]) -> Option<SignalRef<'_>> {
    let [from_peer, to_peer, kind, data_json] = read_strings(buffer)?;
    Some(SignalRef { from_peer, to_peer, kind, data_json })
}

fn read_broadcast(mut buffer: &[u8]) -> Option<BroadcastRef<'_>> {
    let mut broadcast = BroadcastRef { from_peer: "", data_json: "", loopback: false };
    let mut seen = Seen::default();
    while !buffer.is_empty() {
        let (tag, wire_type) = decode_key(&mut buffer).ok()?;
        if !(1..=3).contains(&tag) {
            return None;
        }
        seen.first(tag)?;
        match (tag, wire_type) {
            (1, WireType::LengthDelimited) => broadcast.from_peer = read_str(&mut buffer)?,
            (2, WireType::LengthDelimited) => broadcast.data_json = read_str(&mut buffer)?,
            (3, WireType::Varint) => broadcast.loopback = decode_varint(&mut buffer).ok()? != 0,
            _ => return None,
        }
    }
    Some(broadcast)
}

/// A message of `N` string fields, tags 1 to `N`, each at most once (a signal; a map
/// entry of key and value).
fn read_strings<const N: usize>(mut buffer: &[u8]) -> Option<[&str; N]> {
    let mut fields = [""; N];
    let mut seen = Seen::default();
    while !buffer.is_empty() {
        let (tag, wire_type) = decode_key(&mut buffer).ok()?;
        if wire_type != WireType::LengthDelimited || !(1..=N as u32).contains(&tag) {
            return None;
        }
        seen.first(tag)?;
        fields[tag as usize - 1] = read_str(&mut buffer)?;
    }
    Some(fields)
}

fn read_str<'a>(buffer: &mut &'a [u8]) -> Option<&'a str> {
    std::str::from_utf8(read_bytes(buffer)?).ok()
}

fn read_bytes<'a>(buffer: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(decode_varint(buffer).ok()?).ok()?;
    let bytes = buffer.get(..len)?;
    *buffer = &buffer[len..];
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Broadcast, PeerLeft, Signal, decode, encode};

    fn signal(data: &str) -> Envelope {
        let body = Body::Signal(Signal {
            from_peer: "p1".into(),
            to_peer: "p2".into(),
            kind: "offer".into(),
            data_json: data.into(),
        });
        Envelope {
            room: "room".into(),
            origin_node: "gw-1".into(),
            sent_at_us: 1_700_000_000_000_000,
            trace_context: HashMap::new(),
            body: Some(body),
        }
    }

    fn broadcast(from: &str, loopback: bool) -> Envelope {
        let body = Body::Broadcast(Broadcast { from_peer: from.into(), data_json: "[1]".into(), loopback });
        Envelope {
            room: "r".into(),
            origin_node: "gw-2".into(),
            sent_at_us: -5,
            trace_context: HashMap::new(),
            body: Some(body),
        }
    }

    /// Written here or by the generated code: the same bytes, read back the same.
    #[test]
    fn writes_what_the_generated_code_writes_and_reads_it_back() {
        let mut traced = signal("{}");
        traced.trace_context.insert("traceparent".into(), "00-abc-def-01".into());
        let cases = [
            signal(r#"{"sdp":"v=0\r\n","type":"offer"}"#),
            signal(""),
            traced,
            broadcast("p1", false),
            broadcast("", true),
            Envelope { sent_at_us: 0, room: String::new(), ..signal("1") },
        ];
        for envelope in cases {
            let ours = encode_ref(EnvelopeRef::of(&envelope), &envelope.trace_context);
            assert_eq!(ours, encode(&envelope), "{envelope:?}");
            let decoded = decode_ref(&ours).unwrap();
            assert!(matches!(decoded, Decoded::Borrowed { .. }), "the fast path reads {envelope:?}");
            assert_eq!(decoded.envelope(), EnvelopeRef::of(&envelope));
            assert_eq!(decoded.trace_context(), &envelope.trace_context);
        }
    }

    /// Other bodies, fields twice, unknown fields: decoded by the generated code, with
    /// what it makes of them.
    #[test]
    fn leaves_everything_else_to_the_generated_code() {
        let left = Envelope { body: Some(Body::PeerLeft(PeerLeft { peer_id: "p".into(), reason: 2 })), ..signal("") };
        let encoded = encode(&left);
        assert_eq!(encode_ref(EnvelopeRef::of(&left), &HashMap::new()), encoded, "other bodies are written alike");
        let decoded = decode_ref(&encoded).unwrap();
        assert_eq!(decoded.envelope(), EnvelopeRef::of(&left));
        assert!(matches!(&decoded, Decoded::Owned(owned) if owned.body == left.body), "kept whole, to be taken");

        // The room twice (the last one counts), and an unknown field 99.
        let mut bytes = encode(&signal("1")).to_vec();
        bytes.extend_from_slice(&[0x0a, 1, b'x', 0x98, 0x06, 0]);
        let decoded = decode_ref(&bytes).unwrap();
        assert!(matches!(decoded, Decoded::Owned(_)));
        assert_eq!(decoded.envelope(), EnvelopeRef::of(&decode(&bytes).unwrap()));
        assert_eq!(decoded.envelope().room, "x");
    }

    #[test]
    fn refuses_what_the_generated_code_refuses() {
        let mut truncated = encode(&signal("1234")).to_vec();
        truncated.pop();
        assert!(matches!(decode_ref(&truncated), Err(EnvelopeError::Decode(_))));
        let mut not_utf8 = encode(&signal("ab")).to_vec();
        let last = not_utf8.len() - 1;
        not_utf8[last] = 0xff;
        assert!(matches!(decode_ref(&not_utf8), Err(EnvelopeError::Decode(_))));
        assert_eq!(decode_ref(&[]).unwrap_err(), EnvelopeError::Empty);
        assert_eq!(decode_ref(&[9]).unwrap_err(), EnvelopeError::UnknownFormat(9));
        let bodyless = Envelope { body: None, ..signal("") };
        assert_eq!(decode_ref(&encode(&bodyless)).unwrap_err(), EnvelopeError::NoBody);
    }
}
