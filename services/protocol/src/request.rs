//! Requests: what a client sends, and the gateway's parser for them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::{ErrorCode, JsonData, RequestId};

/// One request of protocol v1. On the wire it is a JSON object whose `type` field names
/// the variant (snake_case), next to an optional `id` (see [`RequestFrame`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Authenticates the connection when the token was not given in the URL. Must be
    /// the first message; only accepted then.
    Auth {
        token: String,
    },
    /// Joins a room, optionally with metadata that the other members will see.
    Join {
        room: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        metadata: Option<JsonData>,
    },
    Leave {
        room: String,
    },
    /// Sends `data` to one peer of a room; the gateway sets `from`.
    Signal {
        room: String,
        to: String,
        kind: String,
        data: JsonData,
    },
    /// Sends `data` to every other member of a room.
    Broadcast {
        room: String,
        data: JsonData,
    },
    Ping,
    /// Acknowledges every server message up to and including `seq`; the gateway may
    /// then forget them (it keeps unacknowledged ones for a resume).
    Received {
        seq: u64,
    },
}

impl Request {
    /// A `signal` carrying `data` (any JSON).
    pub fn signal(room: &str, to: &str, kind: &str, data: &serde_json::Value) -> Self {
        Self::Signal { room: room.into(), to: to.into(), kind: kind.into(), data: JsonData::from_value(data) }
    }

    /// A `broadcast` carrying `data` (any JSON).
    pub fn broadcast(room: &str, data: &serde_json::Value) -> Self {
        Self::Broadcast { room: room.into(), data: JsonData::from_value(data) }
    }

    /// The wire name of the request type, e.g. `"join"`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Auth { .. } => "auth",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::Signal { .. } => "signal",
            Self::Broadcast { .. } => "broadcast",
            Self::Ping => "ping",
            Self::Received { .. } => "received",
        }
    }
}

/// A request with the optional `id` that its reply (or error) echoes.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestFrame {
    pub id: Option<RequestId>,
    pub request: Request,
}

impl RequestFrame {
    /// The JSON text of the frame. Application data (`data`, `metadata`) goes out as
    /// the exact text it came as: going through `serde_json::Value` would round numbers
    /// beyond f64 (a fuzzer found `22222222222222222222222222222222222222222222222222221`
    /// becoming `2.2222222222222222e52`).
    pub fn to_json(&self) -> String {
        let text = serde_json::to_string(&self.request).expect("requests always serialize");
        match &self.id {
            // Every request serializes to an object with at least its `type`.
            Some(id) => format!("{{\"id\":{},{}", id.as_json(), &text[1..]),
            None => text,
        }
    }

    /// Only the `id` of a frame, if it is a JSON object with a valid one: what a refusal
    /// that does not look further (a rate limit) echoes.
    pub fn peek_id(text: &str) -> Option<RequestId> {
        #[derive(serde::Deserialize)]
        struct IdOnly<'a> {
            #[serde(borrow)]
            id: Option<&'a serde_json::value::RawValue>,
        }
        if !looks_like_object(text) {
            return None;
        }
        let frame: IdOnly<'_> = serde_json::from_str(text).ok()?;
        RequestId::from_raw(frame.id?).ok()
    }

    /// Parses one text frame. Unknown fields are ignored, so that clients written for a
    /// later minor revision still work; an unknown `type` is an error.
    pub fn parse(text: &str) -> Result<Self, RequestParseError> {
        if !looks_like_object(text) && serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok() {
            return Err(RequestParseError::without_id("invalid request: a request is a JSON object".into()));
        }
        let raw: RawFrame<'_> = serde_json::from_str(text).map_err(|e| RequestParseError::without_id(describe(&e)))?;
        let id = raw.id.map(RequestId::from_raw).transpose().map_err(RequestParseError::without_id)?;
        let fail = |message: String| RequestParseError { id: id.clone(), code: ErrorCode::BadRequest, message };
        for (field, value) in [("data", raw.data), ("metadata", raw.metadata)] {
            if let Some(problem) = value.and_then(|value| unreadable_for_receivers(value.get())) {
                return Err(fail(format!("`{field}` {problem}")));
            }
        }
        let ty = raw.ty.as_deref().ok_or_else(|| fail("missing field `type`".into()))?;
        let request = match ty {
            "auth" => Request::Auth { token: required(raw.token, ty, "token").map_err(fail)? },
            "join" => Request::Join {
                room: required(raw.room, ty, "room").map_err(fail)?,
                metadata: raw.metadata.map(JsonData::from_raw),
            },
            "leave" => Request::Leave { room: required(raw.room, ty, "room").map_err(fail)? },
            "signal" => Request::Signal {
                room: required(raw.room, ty, "room").map_err(fail)?,
                to: required(raw.to, ty, "to").map_err(fail)?,
                kind: required(raw.kind, ty, "kind").map_err(fail)?,
                data: raw.data.map_or_else(JsonData::null, JsonData::from_raw),
            },
            "broadcast" => Request::Broadcast {
                room: required(raw.room, ty, "room").map_err(fail)?,
                data: required(raw.data, ty, "data").map(JsonData::from_raw).map_err(fail)?,
            },
            "ping" => Request::Ping,
            "received" => Request::Received { seq: required(raw.seq, ty, "seq").map_err(fail)? },
            other => return Err(fail(format!("unknown message type {other:?}"))),
        };
        Ok(Self { id, request })
    }
}

/// Why a frame could not be parsed; answered with an `error` frame echoing `id` when
/// the frame was at least a JSON object with a valid id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct RequestParseError {
    pub id: Option<RequestId>,
    pub code: ErrorCode,
    pub message: String,
}

impl RequestParseError {
    fn without_id(message: String) -> Self {
        Self { id: None, code: ErrorCode::BadRequest, message }
    }
}

/// Every field any request may have, borrowed from the frame where possible.
#[derive(Deserialize)]
struct RawFrame<'a> {
    #[serde(rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    room: Option<String>,
    to: Option<String>,
    kind: Option<String>,
    token: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    metadata: Option<&'a RawValue>,
    seq: Option<u64>,
}

fn required<T>(value: Option<T>, ty: &str, field: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{field}` in {ty:?}"))
}

/// How deep application JSON (`data`, `metadata`) may nest. The gateway itself never
/// parses it into a tree, but receivers do, and many parsers recurse: deeper data is
/// refused rather than relayed to them (serde_json, for one, stops at 128).
pub const MAX_NESTING: usize = 32;

/// What in valid JSON `text` the receivers' parsers could not read, though the gateway
/// would relay it untouched: nesting deeper than [`MAX_NESTING`], or a number beyond a
/// 64-bit float (`1E400`; JavaScript reads it as `Infinity`, serde_json not at all). One
/// pass over the bytes, skipping strings.
fn unreadable_for_receivers(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let (mut depth, mut at) = (0usize, 0);
    while at < bytes.len() {
        let byte = bytes[at];
        at += 1;
        match byte {
            b'"' => {
                // Only where the string ends matters, and most of a payload (an SDP)
                // is one long string: skip to its closing quote, over escapes (the
                // text is valid JSON, so a backslash always has a character after it).
                while let Some(offset) = memchr::memchr2(b'"', b'\\', &bytes[at.min(bytes.len())..]) {
                    at += offset + 1;
                    if bytes[at - 1] == b'"' {
                        break;
                    }
                    at += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(format!("is nested deeper than {MAX_NESTING} levels"));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'-' | b'0'..=b'9' => {
                let start = at - 1;
                while at < bytes.len() && matches!(bytes[at], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
                    at += 1;
                }
                if text[start..at].parse::<f64>().is_ok_and(f64::is_infinite) {
                    return Some(format!("holds a number beyond a 64-bit float: {}", &text[start..at]));
                }
            }
            _ => {}
        }
    }
    None
}

/// Whether the text starts like a JSON object. Needed because serde also reads a struct
/// from an array of its fields in order: `["ping"]` would be a ping (a fuzzer found it).
fn looks_like_object(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

fn describe(error: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => format!("malformed JSON: {error}"),
        Category::Data => format!("invalid request: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_a_signal_keeping_data_text() {
        let frame = RequestFrame::parse(
            r#"{"type":"signal","id":3,"room":"r","to":"p2","kind":"offer","data":{"sdp":"v=0\r\n"},"extra":1}"#,
        )
        .unwrap();
        assert_eq!(frame.id.unwrap().as_json(), "3");
        let Request::Signal { room, to, kind, data } = frame.request else { panic!("not a signal") };
        assert_eq!((room.as_str(), to.as_str(), kind.as_str()), ("r", "p2", "offer"));
        assert_eq!(data.as_str(), r#"{"sdp":"v=0\r\n"}"#);
    }

    #[test]
    fn application_data_is_readable_by_receivers() {
        let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let broadcast = |data: &str| format!(r#"{{"type":"broadcast","id":1,"room":"r","data":{data}}}"#);
        assert!(RequestFrame::parse(&broadcast(&nested(MAX_NESTING))).is_ok());
        let refused = RequestFrame::parse(&broadcast(&nested(MAX_NESTING + 1))).unwrap_err();
        assert_eq!(refused.message, "`data` is nested deeper than 32 levels");
        assert_eq!(refused.id.unwrap().as_json(), "1");
        let join = format!(r#"{{"type":"join","room":"r","metadata":{{"a":{}}}}}"#, nested(40));
        assert!(RequestFrame::parse(&join).unwrap_err().message.contains("`metadata`"));
        let huge = RequestFrame::parse(&broadcast(r#"{"n":[1,-2.5e3,1E400]}"#)).unwrap_err();
        assert_eq!(huge.message, "`data` holds a number beyond a 64-bit float: 1E400");
        let long_but_finite = format!("{}1", "2".repeat(60));
        assert!(RequestFrame::parse(&broadcast(&long_but_finite)).is_ok(), "rounded, but readable");
        // Brackets inside strings, escaped quotes included, do not count.
        let in_strings = broadcast(&format!(r#"{{"s":"{}\"{}"}}"#, "[".repeat(100), "{".repeat(100)));
        assert!(RequestFrame::parse(&in_strings).is_ok());
        // An escaped backslash is a whole escape: the quote after it closes the string.
        let after_backslash = broadcast(&format!(r#"{{"s":"\\","n":{}}}"#, nested(MAX_NESTING)));
        assert!(RequestFrame::parse(&after_backslash).unwrap_err().message.contains("nested deeper"));
    }

    #[test]
    fn only_objects_are_requests() {
        let refused = RequestFrame::parse(r#"["ping"]"#).unwrap_err();
        assert_eq!(refused.message, "invalid request: a request is a JSON object");
        assert_eq!(refused.id, None);
        assert!(RequestFrame::parse(r#"["",null,"r"]"#).is_err());
        assert!(RequestFrame::parse(" \n{\"type\":\"ping\"}").is_ok(), "whitespace first is fine");
        assert!(RequestFrame::parse("[1,").is_err());
    }

    #[test]
    fn peeks_at_the_id_only() {
        let peek = |text: &str| RequestFrame::peek_id(text).map(|id| id.as_json().to_string());
        assert_eq!(peek(r#"{"type":"signal","id":"s-1","data":{"id":2}}"#).as_deref(), Some("\"s-1\""));
        assert_eq!(peek(r#"{"type":"whatever","id":7}"#).as_deref(), Some("7"));
        assert_eq!(peek(r#"{"type":"ping"}"#), None);
        assert_eq!(peek(r#"{"id":-1}"#), None, "not a valid id");
        assert_eq!(peek("[1]"), None);
        assert_eq!(peek("{not json"), None);
    }

    #[test]
    fn round_trips_every_request() {
        let requests = [
            Request::Auth { token: "t".into() },
            Request::Join { room: "r".into(), metadata: Some(JsonData::from_value(&json!({"m": [1]}))) },
            Request::Join { room: "r".into(), metadata: None },
            Request::Leave { room: "r".into() },
            Request::Signal { room: "r".into(), to: "p".into(), kind: "answer".into(), data: JsonData::null() },
            Request::Broadcast { room: "r".into(), data: JsonData::from_value(&json!("hi")) },
            Request::Ping,
            Request::Received { seq: 42 },
        ];
        for request in requests {
            let frame = RequestFrame { id: Some(RequestId::number(9)), request };
            assert_eq!(RequestFrame::parse(&frame.to_json()).unwrap(), frame);
        }
    }

    #[test]
    fn errors_name_the_problem_and_echo_the_id() {
        let err = RequestFrame::parse("{not json").unwrap_err();
        assert!(err.message.starts_with("malformed JSON"), "{}", err.message);
        assert_eq!(err.id, None);

        let err = RequestFrame::parse(r#"{"type":"warp","id":"x"}"#).unwrap_err();
        assert_eq!(err.message, "unknown message type \"warp\"");
        assert_eq!(err.id.unwrap().as_json(), "\"x\"");

        let err = RequestFrame::parse(r#"{"type":"join","id":1}"#).unwrap_err();
        assert_eq!(err.message, "missing field `room` in \"join\"");

        let err = RequestFrame::parse(r#"{"id":1}"#).unwrap_err();
        assert_eq!(err.message, "missing field `type`");

        let err = RequestFrame::parse("[1,2]").unwrap_err();
        assert!(err.message.starts_with("invalid request"), "{}", err.message);

        let err = RequestFrame::parse(r#"{"type":"ping","id":{"a":1}}"#).unwrap_err();
        assert_eq!(err.id, None);
        assert_eq!(err.code, ErrorCode::BadRequest);
    }
}
