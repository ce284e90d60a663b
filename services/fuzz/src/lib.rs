//! The properties the fuzz targets check, as functions, so that the inputs a fuzzer
//! found (kept in `regressions/`) run as ordinary tests in CI (`tests/regressions.rs`).
//!
//! Run a target (nightly and cargo-fuzz; docs/security.md has the numbers of the last
//! runs): `cargo +nightly fuzz run --fuzz-dir services/fuzz client_request -- -max_total_time=300`

use protocol::RequestFrame;

/// Any text a client can send: parsing it never panics, a parsed request prints back to
/// JSON that parses to the same request, and a refusal's id is the one `peek_id` finds
/// (what a rate-limit refusal echoes).
pub fn check_client_request(data: &[u8]) {
    // The gateway only sees text frames: tungstenite rejects invalid UTF-8 (1007).
    let Ok(text) = std::str::from_utf8(data) else { return };
    let peeked = RequestFrame::peek_id(text);
    match RequestFrame::parse(text) {
        Ok(frame) => {
            assert_eq!(peeked, frame.id, "peek_id agrees with parse");
            let printed = frame.to_json();
            let again = RequestFrame::parse(&printed).expect("a printed request parses");
            assert_eq!(again, frame, "round trip through {printed}");
        }
        Err(error) => {
            if let Some(id) = &error.id {
                assert_eq!(peeked.as_ref(), Some(id), "the refusal echoes the id peek_id finds");
            }
        }
    }
}

/// Any bytes on the bus: decoding never panics, a decoded envelope encodes to bytes
/// that decode to the same envelope, and the hot path's borrowing decoder and encoder
/// agree with the generated code on every input (same envelope or same refusal, same
/// bytes).
pub fn check_bus_envelope(data: &[u8]) {
    use bus::envelope::{EnvelopeRef, decode, decode_ref, encode, encode_ref};
    let decoded = decode(data);
    let borrowed = decode_ref(data);
    match (&decoded, &borrowed) {
        (Ok(envelope), Ok(view)) => {
            assert_eq!(view.envelope(), EnvelopeRef::of(envelope), "both decoders read the same envelope");
            assert_eq!(view.trace_context(), &envelope.trace_context, "and the same trace context");
        }
        (Err(error), Err(refusal)) => assert_eq!(error, refusal, "both refuse alike"),
        _ => panic!("the decoders disagree: {decoded:?} against {borrowed:?}"),
    }
    if let Ok(envelope) = decoded {
        let encoded = encode(&envelope);
        assert_eq!(decode(&encoded).as_ref(), Ok(&envelope), "round trip");
        assert_eq!(encode_ref(EnvelopeRef::of(&envelope), &envelope.trace_context), encoded, "both encoders agree");
    }
}
