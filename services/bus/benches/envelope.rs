//! The bus envelope on the relay path: the sender's gateway encodes each signal once,
//! every gateway with members in the room decodes it once. `cargo bench -p bus`.

use std::collections::HashMap;
use std::hint::black_box;

use bus::envelope::{self, Body, Envelope, EnvelopeRef, Signal};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A signal as a negotiation sends it: `data` of `size` bytes of JSON.
fn signal(kind: &str, size: usize) -> Envelope {
    let data_json = format!(r#"{{"sdp":"{}"}}"#, "a".repeat(size.saturating_sub(10)));
    let body = Body::Signal(Signal {
        from_peer: "3dada178829d1192064a".into(),
        to_peer: "a5d5a848e8e575d025f1".into(),
        kind: kind.into(),
        data_json,
    });
    envelope::new("room-with-a-realistic-name", "gw-7f3a9c1e", body)
}

fn envelopes(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope");
    for (name, envelope) in [("offer_3kb", signal("offer", 3_000)), ("candidate", signal("candidate", 200))] {
        let bytes = envelope::encode(&envelope);
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("encode/{name}"), |b| b.iter(|| envelope::encode(black_box(&envelope))));
        group.bench_function(format!("decode/{name}"), |b| b.iter(|| envelope::decode(black_box(&bytes)).unwrap()));
        // The hot path's way: written from borrowed parts, read into slices of the bytes.
        let borrowed = EnvelopeRef::of(&envelope);
        let no_trace = HashMap::new();
        group.bench_function(format!("encode_ref/{name}"), |b| {
            b.iter(|| envelope::encode_ref(black_box(borrowed), &no_trace))
        });
        group.bench_function(format!("decode_ref/{name}"), |b| {
            b.iter(|| envelope::decode_ref(black_box(&bytes)).unwrap().envelope().sent_at_us)
        });
    }
    group.finish();
}

criterion_group!(benches, envelopes);
criterion_main!(benches);
