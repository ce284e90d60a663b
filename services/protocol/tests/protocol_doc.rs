//! docs/protocol.md is checked against the code: every example frame must parse as what
//! its arrow says it is, and every error and close code must be documented.

use protocol::{CloseCode, ErrorCode, RequestFrame, ServerMessage};

const DOC: &str = include_str!("../../../docs/protocol.md");

/// The example frames: `who → {json}` (client to gateway), `who ← {json}` (gateway to
/// client).
fn frames(arrow: &str) -> Vec<&'static str> {
    DOC.lines()
        .filter_map(|line| line.split_once(arrow).map(|(_, json)| json))
        .filter(|json| json.starts_with('{'))
        .collect()
}

/// A request example parses, unless the next line shows the `error` it earns: then it
/// must fail with exactly that code and message.
#[test]
fn every_request_example_parses_or_earns_the_documented_error() {
    let lines: Vec<&str> = DOC.lines().collect();
    let mut checked = 0;
    for (index, line) in lines.iter().enumerate() {
        let Some((_, json)) = line.split_once(" → ").filter(|(_, json)| json.starts_with('{')) else { continue };
        checked += 1;
        let answer = lines.get(index + 1).and_then(|next| next.split_once(" ← ")).map(|(_, json)| json);
        let documented_error = answer.and_then(|json| match serde_json::from_str(json) {
            Ok(ServerMessage::Error { code, message, .. }) => Some((code, message)),
            _ => None,
        });
        match (RequestFrame::parse(json), documented_error) {
            (Ok(_), None) => {}
            (Err(error), Some((code, message))) => {
                assert_eq!((error.code, error.message), (code, message), "docs/protocol.md: {json}")
            }
            (Ok(_), Some(_)) => panic!("docs/protocol.md: {json} parses, but the doc shows an error"),
            (Err(error), None) => panic!("docs/protocol.md request {json}: {error}"),
        }
    }
    assert!(checked >= 25, "only {checked} request examples found");
}

#[test]
fn every_server_message_example_parses() {
    let messages = frames(" ← ");
    assert!(messages.len() >= 25, "only {} server message examples found", messages.len());
    for json in messages {
        serde_json::from_str::<ServerMessage>(json).unwrap_or_else(|e| panic!("docs/protocol.md message {json}: {e}"));
    }
}

#[test]
fn every_error_and_close_code_is_documented() {
    for code in ErrorCode::ALL {
        assert!(DOC.contains(&format!("| `{}`", code.as_str())), "error code {code} missing from the table");
    }
    for code in 1000..5000 {
        if let Some(close) = CloseCode::from_code(code) {
            assert!(DOC.contains(&format!("| {} |", close.code())), "close code {code} missing from the table");
        }
    }
}
