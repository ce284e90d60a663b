//! A client's request on the relay path: the gateway parses every frame it reads, the
//! checks on `data` included (nesting, numbers). `cargo bench -p protocol`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::RequestFrame;

fn signal_frame(kind: &str, size: usize) -> String {
    let sdp = "a".repeat(size.saturating_sub(10));
    format!(
        r#"{{"type":"signal","room":"room-with-a-realistic-name","to":"a5d5a848e8e575d025f1","kind":"{kind}","data":{{"sdp":"{sdp}"}}}}"#
    )
}

fn requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    for (name, frame) in [("offer_3kb", signal_frame("offer", 3_000)), ("candidate", signal_frame("candidate", 200))] {
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function(format!("parse/{name}"), |b| b.iter(|| RequestFrame::parse(black_box(&frame)).unwrap()));
    }
    group.finish();
}

criterion_group!(benches, requests);
criterion_main!(benches);
