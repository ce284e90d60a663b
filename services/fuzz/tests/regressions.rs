//! Every input a fuzzer once failed on (`regressions/<target>/`), and the seed corpus
//! (`corpus/<target>/`), checked with the fuzz targets' properties on every CI run.

use std::path::Path;

fn inputs(folder: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| (path.display().to_string(), std::fs::read(&path).unwrap()))
        .collect();
    inputs.sort();
    inputs
}

#[test]
fn client_requests() {
    let found = inputs("regressions/client_request");
    assert!(!found.is_empty(), "the kept crash inputs are there");
    for (name, data) in found.into_iter().chain(inputs("corpus/client_request")) {
        let checked = std::panic::catch_unwind(|| fuzz::check_client_request(&data));
        assert!(checked.is_ok(), "{name}");
    }
}

#[test]
fn bus_envelopes() {
    use bus::envelope::{Body, decode, encode, new};
    for (name, data) in inputs("regressions/bus_envelope") {
        let checked = std::panic::catch_unwind(|| fuzz::check_bus_envelope(&data));
        assert!(checked.is_ok(), "{name}");
    }
    let every_kind = [
        Body::Signal(Default::default()),
        Body::Broadcast(Default::default()),
        Body::PeerJoined(Default::default()),
        Body::PeerLeft(Default::default()),
        Body::SessionMoved(Default::default()),
        Body::HandoverRequest(Default::default()),
        Body::HandoverData(Default::default()),
    ];
    for body in every_kind {
        let bytes = encode(&new("room", "gw-1", body));
        assert!(decode(&bytes).is_ok());
        fuzz::check_bus_envelope(&bytes);
    }
}
