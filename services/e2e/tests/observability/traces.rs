//! One signal is one trace across two gateways; one join is one trace across the
//! gateway and the room service.

use std::time::Duration;

use e2e::otlp::{CollectedSpan, Collector};
use e2e::processes::ProcessCluster;

/// Exports every span within 100 ms, so the test waits little.
fn otel_env(collector: &Collector) -> Vec<(&'static str, String)> {
    vec![("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()), ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string())]
}

fn find<'a>(spans: &'a [CollectedSpan], name: &str, trace_id: &str) -> Option<&'a CollectedSpan> {
    spans.iter().find(|span| span.name == name && span.trace_id == trace_id)
}

/// The trace of a signal sent from a client of gateway `from` to another gateway, once
/// all its four spans have arrived: its receipt, its publication, its receipt from the bus by the receiver's gateway and the
/// delivery there. (The sender's gateway receives its own publication too, without
/// delivering it: another `bus.receive` of the trace, which this leaves out.)
fn signal_trace<'a>(spans: &'a [CollectedSpan], from: &str) -> Option<[&'a CollectedSpan; 4]> {
    spans.iter().filter(|span| span.name == "signal" && span.instance == from).find_map(|signal| {
        let trace = &signal.trace_id;
        let deliver = find(spans, "signal.deliver", trace)?;
        let receive = spans.iter().find(|span| span.span_id == deliver.parent_span_id)?;
        Some([signal, find(spans, "bus.publish", trace)?, receive, deliver])
    })
}

/// The trace of bob's join, once its three spans have arrived (his is the second join:
/// the room is not empty, so the gateway's join span and the room service's differ).
fn join_trace(spans: &[CollectedSpan]) -> Vec<[&CollectedSpan; 3]> {
    spans
        .iter()
        .filter(|span| span.name == "join")
        .filter_map(|join| {
            let trace = &join.trace_id;
            let client = spans.iter().find(|s| {
                s.name == "grpc.client"
                    && s.trace_id == *trace
                    && s.attributes.get("rpc.method").is_some_and(|m| m == "Join")
            })?;
            let server = spans
                .iter()
                .find(|s| s.name == "grpc.server" && s.trace_id == *trace && s.parent_span_id == client.span_id)?;
            Some([join, client, server])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_and_a_join_are_each_one_trace_across_the_nodes() {
    let collector = Collector::start().await;
    let env = otel_env(&collector);
    let gateway_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut room_env = env.clone();
    room_env.push(("ROOM_SERVICE_JANITOR__PERIOD", "2s".to_string()));
    let cluster = ProcessCluster::start_with_env(2, &gateway_env, &room_env, 1).await;
    let (alice, bob) = crate::negotiate(&cluster).await;

    let from = alice.welcome().server.node.clone();
    let spans = collector
        .wait_for(Duration::from_secs(15), |spans| signal_trace(spans, &from).is_some() && join_trace(spans).len() >= 2)
        .await
        .unwrap_or_else(|spans| panic!("the spans of a signal and two joins did not all arrive: {spans:#?}"));

    // alice's offer: received by gateway 0, published there, received from the bus by
    // gateway 1 and delivered there to bob; each span the child of the one before.
    let [signal, publish, receive, deliver] = signal_trace(&spans, &from).expect("checked above");
    assert_eq!(signal.parent_span_id, "", "the signal's span is the root of its trace");
    assert_eq!(publish.parent_span_id, signal.span_id);
    assert_eq!(receive.parent_span_id, publish.span_id, "the context crossed the bus in the envelope");
    assert_eq!(receive.name, "bus.receive");
    assert_eq!(signal.instance, alice.welcome().server.node);
    assert_eq!(publish.instance, alice.welcome().server.node);
    assert_eq!(receive.instance, bob.welcome().server.node, "received on the other gateway");
    assert_eq!(deliver.instance, bob.welcome().server.node);
    assert_eq!(signal.service, "switchboard-gateway");
    assert_eq!(deliver.attributes.get("peer"), Some(&bob.peer_id().to_string()));

    // Each join: the gateway's span, its gRPC call, and the room service's handling of
    // it as the call's child, in the room service's process.
    for [join, client, server] in join_trace(&spans) {
        assert_eq!(client.parent_span_id, join.span_id);
        assert_eq!(server.parent_span_id, client.span_id, "the context crossed gRPC in the metadata");
        assert_eq!(server.service, "switchboard-room-service");
        assert_eq!(join.service, "switchboard-gateway");
    }
}

/// Sampling is decided once, where a trace starts: a gateway sampling no new traces
/// exports nothing of its clients' signals, not even where they arrive; the traces
/// another gateway starts are followed through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sampling_follows_the_node_where_the_trace_started() {
    let collector = Collector::start().await;
    let env = otel_env(&collector);
    let room_env = env.clone();
    let gateway_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut cluster = ProcessCluster::start_with_env(0, &gateway_env, &room_env, 1).await;
    cluster.add_gateway_with(&[("GATEWAY_TELEMETRY__TRACE_SAMPLE_RATIO", "0".to_string())]).await;
    cluster.add_gateway().await;
    let (alice, bob) = crate::negotiate(&cluster).await;
    let (unsampled, sampled) = (alice.welcome().server.node.clone(), bob.welcome().server.node.clone());

    // bob's answer, started on the sampling gateway, is traced through alice's.
    let spans = collector
        .wait_for(Duration::from_secs(15), |spans| {
            signal_trace(spans, &sampled).is_some_and(|[_, _, _, deliver]| deliver.instance == unsampled)
        })
        .await
        .unwrap_or_else(|spans| panic!("bob's answer was not traced through alice's gateway: {spans:#?}"));
    // alice's offer was not sampled where it started, so it left no span anywhere.
    let offer_spans: Vec<_> = spans
        .iter()
        .filter(|span| {
            (span.instance == unsampled && ["signal", "bus.publish", "join"].contains(&span.name.as_str()))
                || (span.instance == sampled && span.name == "signal.deliver")
        })
        .collect();
    assert!(offer_spans.is_empty(), "spans of traces started on the unsampled gateway: {offer_spans:#?}");
}
