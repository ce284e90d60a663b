//! JSON values the gateway relays without looking inside, and request ids.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// An application JSON value (a signal's `data`, a peer's `metadata`) kept as its
/// original text, so the gateway relays an SDP offer without parsing it into a tree and
/// printing it again.
#[derive(Debug, Clone)]
pub struct JsonData(Box<RawValue>);

impl JsonData {
    /// Wraps JSON text that is already known to be valid (e.g. read from the bus).
    pub fn from_trusted_text(text: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(text).map(Self)
    }

    pub fn from_raw(raw: &RawValue) -> Self {
        Self(raw.to_owned())
    }

    pub fn from_value(value: &serde_json::Value) -> Self {
        // Printing a `Value` cannot fail and always yields valid JSON.
        Self(serde_json::value::to_raw_value(value).expect("a serde_json::Value always serializes"))
    }

    pub fn null() -> Self {
        Self::from_value(&serde_json::Value::Null)
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The value as a tree, for data a client received (which it read as a tree, so this
    /// cannot fail). Raw text from elsewhere may be valid JSON that no tree can hold, a
    /// number beyond f64 such as `1E400`; see [`JsonData::try_to_value`].
    pub fn to_value(&self) -> serde_json::Value {
        self.try_to_value().expect("JsonData read by a client always fits a serde_json::Value")
    }

    /// The value as a tree, or why it cannot be one (a number beyond f64).
    pub fn try_to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_str(self.0.get())
    }
}

impl PartialEq for JsonData {
    /// Compares values, not texts: `{"a": 1}` equals `{"a":1}`. Values no tree can hold
    /// are equal only as identical texts.
    fn eq(&self, other: &Self) -> bool {
        if self.as_str() == other.as_str() {
            return true;
        }
        match (self.try_to_value(), other.try_to_value()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }
}

impl Serialize for JsonData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for JsonData {
    /// Goes through `serde_json::Value` so that it also works inside internally tagged
    /// enums, where serde buffers the input and `RawValue` cannot be used. Only clients
    /// take this path; the gateway's request parser borrows the raw text directly.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        serde_json::Value::deserialize(deserializer).map(|value| Self::from_value(&value))
    }
}

/// Longest string request id, in bytes.
pub const MAX_REQUEST_ID_LEN: usize = 64;

/// The `id` a client may put on a request: a JSON string (at most 64 bytes) or a
/// non-negative integer. The reply echoes it exactly as sent.
#[derive(Debug, Clone)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// Validates raw JSON text as a request id.
    pub fn from_raw(raw: &RawValue) -> Result<Self, String> {
        let text = raw.get();
        let ok = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::String(s)) => s.len() <= MAX_REQUEST_ID_LEN,
            Ok(serde_json::Value::Number(n)) => n.is_u64(),
            _ => false,
        };
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("`id` must be a string of at most {MAX_REQUEST_ID_LEN} bytes or a non-negative integer"))
        }
    }

    pub fn number(n: u64) -> Self {
        Self(RawValue::from_string(n.to_string()).expect("an integer is valid JSON"))
    }

    /// The id's JSON text, e.g. `7` or `"a"`.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Serialize for RequestId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for RequestId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        let raw = serde_json::value::to_raw_value(&value).map_err(serde::de::Error::custom)?;
        Self::from_raw(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids() {
        let raw = |s: &str| RawValue::from_string(s.to_string()).unwrap();
        assert_eq!(RequestId::from_raw(&raw("7")).unwrap().as_json(), "7");
        assert_eq!(RequestId::from_raw(&raw("\"a-1\"")).unwrap().as_json(), "\"a-1\"");
        assert!(RequestId::from_raw(&raw("-1")).is_err());
        assert!(RequestId::from_raw(&raw("1.5")).is_err());
        assert!(RequestId::from_raw(&raw("{}")).is_err());
        assert!(RequestId::from_raw(&raw(&format!("\"{}\"", "x".repeat(65)))).is_err());
    }

    #[test]
    fn numbers_no_tree_holds_are_kept_and_compared_as_text() {
        let huge = JsonData::from_raw(&RawValue::from_string("{\"n\":1E400}".into()).unwrap());
        assert!(huge.try_to_value().is_err(), "beyond f64");
        assert_eq!(huge.as_str(), "{\"n\":1E400}");
        assert_eq!(huge, huge.clone());
        assert_ne!(huge, JsonData::from_value(&serde_json::json!({"n": 1})));
    }

    #[test]
    fn json_data_keeps_text_and_compares_values() {
        let a = JsonData::from_trusted_text("{\"a\": 1}".into()).unwrap();
        assert_eq!(a.as_str(), "{\"a\": 1}");
        assert_eq!(a, JsonData::from_value(&serde_json::json!({"a": 1})));
    }
}
