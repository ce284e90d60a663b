#!/usr/bin/env python3
"""Writes the Grafana dashboard of the signaling cluster.

    python3 docs/observability/dashboard.py

The JSON goes to helm/switchboard/files/grafana-dashboard.json (the chart ships it as
a ConfigMap for Grafana's sidecar; docs/observability/grafana-dashboard.json links to
it). Panels are listed here, question by question, so that the dashboard is reviewed
as code; the observability tests run every query against a real Prometheus.
"""

import json
import pathlib

GW = 'instance=~"$instance"'
RATE = "$__rate_interval"

# (row title, [(panel title, unit, [(legend, expr)], description)])
ROWS = [
    ("Overview: how big is the cluster", [
        ("Connections per gateway", "short", [
            ("{{instance}}", f'sum by (instance) (switchboard_gateway_connections{{{GW}}})')],
         "Open WebSocket connections, per gateway."),
        ("Cluster totals", "short", [
            ("connections", "sum(switchboard_gateway_connections)"),
            ("sessions", "sum(switchboard_gateway_sessions)"),
            ("rooms", "max(switchboard_rooms)"),
            ("room members", "max(switchboard_room_members)")],
         "Connections and sessions summed over gateways; rooms and members sampled from the room store."),
        ("Gateways ready", "short", [
            ("ready", "sum(switchboard_gateway_ready)"),
            ("draining", "sum(switchboard_gateway_draining)"),
            ("gateways", "count(switchboard_gateway_ready)")],
         "Gateways answering /readyz with 200, draining, and reporting at all."),
        ("Rooms with local members, per gateway", "short", [
            ("{{instance}}", f'sum by (instance) (switchboard_gateway_rooms{{{GW}}})')],
         "Each such room is one bus subscription of the gateway."),
    ]),
    ("Traffic: what flows", [
        ("Messages from clients, by type", "reqps", [
            ("{{type}}", f'sum by (type) (rate(switchboard_gateway_messages_received_total{{{GW}}}[{RATE}]))')],
         "Requests received; `invalid` are unparsable."),
        ("Messages to clients, by type", "reqps", [
            ("{{type}}", f'sum by (type) (rate(switchboard_gateway_messages_sent_total{{{GW}}}[{RATE}]))')],
         "Frames written to sockets, replays included."),
        ("Signals and broadcasts, by path", "reqps", [
            ("{{type}} via {{path}}", f'sum by (type, path) (rate(switchboard_gateway_routed_messages_total{{{GW}}}[{RATE}]))')],
         "local: delivered on the sender's gateway; bus: published for other gateways."),
        ("Bytes per gateway", "Bps", [
            ("in {{instance}}", f'sum by (instance) (rate(switchboard_gateway_received_bytes_total{{{GW}}}[{RATE}]))'),
            ("out {{instance}}", f'sum by (instance) (rate(switchboard_gateway_sent_bytes_total{{{GW}}}[{RATE}]))'),
            ("bus {{instance}}", f'sum by (instance) (rate(switchboard_bus_published_bytes_total{{{GW}}}[{RATE}]))')],
         "WebSocket payload bytes in and out, and bytes published on the bus."),
        ("Connections opened and closed", "ops", [
            ("opened", f'sum(rate(switchboard_gateway_connections_opened_total{{{GW}}}[{RATE}]))'),
            ("closed {{code}}", f'sum by (code) (rate(switchboard_gateway_connections_closed_total{{{GW}}}[{RATE}]))')],
         "Closes by the close code sent (docs/protocol.md)."),
        ("Envelopes from the bus, by type", "ops", [
            ("{{type}}", f'sum by (type) (rate(switchboard_gateway_envelopes_received_total{{{GW}}}[{RATE}]))')],
         "What gateways receive from each other and from the room service."),
    ]),
    ("Latency: how fast, and where it is slow", [
        ("Signal delivery between gateways", "s", [
            ("p50", f'histogram_quantile(0.5, sum by (le) (rate(switchboard_gateway_signal_delivery_seconds_bucket{{{GW}}}[{RATE}])))'),
            ("p99", f'histogram_quantile(0.99, sum by (le) (rate(switchboard_gateway_signal_delivery_seconds_bucket{{{GW}}}[{RATE}])))')],
         "From the sender's gateway publishing to the receiver's gateway queueing the signal."),
        ("Signal delivery p99, per receiving gateway", "s", [
            ("{{instance}}", f'histogram_quantile(0.99, sum by (instance, le) (rate(switchboard_gateway_signal_delivery_seconds_bucket{{{GW}}}[{RATE}])))')],
         "One slow gateway shows here."),
        ("Room-service calls p99, as the gateways see them", "s", [
            ("{{method}}", f'histogram_quantile(0.99, sum by (method, le) (rate(switchboard_grpc_client_request_duration_seconds_bucket{{{GW}}}[{RATE}])))')],
         "Joins and leaves wait for these."),
        ("Room-service calls p99, as the room service sees them", "s", [
            ("{{method}}", f'histogram_quantile(0.99, sum by (method, le) (rate(switchboard_grpc_server_request_duration_seconds_bucket[{RATE}])))')],
         "The difference to the gateways' view is the network and queueing between them."),
    ]),
    ("Failures: what is going wrong", [
        ("Errors sent to clients, by code", "ops", [
            ("{{code}}", f'sum by (code) (rate(switchboard_gateway_errors_total{{{GW}}}[{RATE}]))')],
         "unavailable and internal are the cluster's fault; the others the clients'."),
        ("Authentication failures, by reason", "ops", [
            ("{{reason}}", f'sum by (reason) (rate(switchboard_gateway_auth_failures_total{{{GW}}}[{RATE}]))')],
         "Expired tokens in numbers point at an application backend minting too short-lived tokens."),
        ("Slow consumers", "ops", [
            ("disconnected (4008)", f'sum(rate(switchboard_gateway_slow_consumer_disconnects_total{{{GW}}}[{RATE}]))'),
            ("messages dropped", f'sum(rate(switchboard_gateway_send_queue_drops_total{{{GW}}}[{RATE}]))')],
         "Clients cut off because their send queue was full."),
        ("Room-service calls, by method and status", "reqps", [
            ("{{method}} {{code}}", f'sum by (method, code) (rate(switchboard_grpc_server_requests_total[{RATE}]))')],
         "Everything but OK is worth a look; Unavailable means Redis."),
        ("Bus", "short", [
            ("connected {{instance}}", f'min by (instance) (switchboard_bus_connected{{{GW}}})'),
            ("publish errors/s", f'sum(rate(switchboard_bus_publish_errors_total{{{GW}}}[{RATE}]))'),
            ("subscribe errors/s", f'sum(rate(switchboard_bus_subscribe_errors_total{{{GW}}}[{RATE}]))'),
            ("interruptions", f'sum(increase(switchboard_bus_interruptions_total{{{GW}}}[{RATE}]))')],
         "1 = the gateway reaches Redis. Interruptions: resubscriptions after a lost connection."),
    ]),
    ("Lifecycle: resumes, drains, dying nodes", [
        ("Resumes, by outcome", "ops", [
            ("{{outcome}}", f'sum by (outcome) (rate(switchboard_gateway_resumes_total{{{GW}}}[{RATE}]))')],
         "gap: the client was told messages may be lost (docs/reliability.md)."),
        ("Drain progress", "short", [
            ("draining {{instance}}", f'max by (instance) (switchboard_gateway_draining{{{GW}}})'),
            ("sessions left {{instance}}", f'max by (instance) (switchboard_gateway_drain_sessions_remaining{{{GW}}})'),
            ("handovers/s {{direction}}", f'sum by (direction) (rate(switchboard_gateway_handovers_total{{{GW}}}[{RATE}]))')],
         "During a rolling deploy: sessions still on a draining gateway, and sessions handed over."),
        ("Dead gateways cleaned up", "short", [
            ("nodes", f'sum(increase(switchboard_lease_cleanups_total[{RATE}]))'),
            ("members removed", f'sum(increase(switchboard_lease_cleanup_members_total[{RATE}]))'),
            ("state losses", f'sum(increase(switchboard_gateway_state_losses_total{{{GW}}}[{RATE}]))'),
            ("lease renewal failures", f'sum(increase(switchboard_gateway_lease_renewal_failures_total{{{GW}}}[{RATE}]))')],
         "Any cleaned-up node died without draining."),
    ]),
    ("Resources", [
        ("CPU per process", "percentunit", [
            ("{{instance}}", f'sum by (instance) (rate(process_cpu_seconds_total[{RATE}]))')],
         "Gateways and room services."),
        ("Memory per process", "bytes", [
            ("{{instance}}", 'sum by (instance) (process_resident_memory_bytes)')],
         "Resident memory."),
        ("Memory per connection", "bytes", [
            ("{{instance}}", f'sum by (instance) (process_resident_memory_bytes{{{GW}}}) / sum by (instance) (switchboard_gateway_connections{{{GW}}} > 0)')],
         "Resident memory of a gateway divided by its connections."),
    ]),
]


def dashboard():
    panels, y, next_id = [], 0, 1
    for title, row_panels in ROWS:
        panels.append({"type": "row", "title": title, "id": next_id, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}})
        next_id += 1
        y += 1
        for i, (panel_title, unit, targets, description) in enumerate(row_panels):
            panels.append({
                "type": "timeseries",
                "title": panel_title,
                "description": description,
                "id": next_id,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                            "tooltip": {"mode": "multi"}},
                "targets": [{"refId": chr(ord("A") + k), "expr": expr, "legendFormat": legend,
                             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                            for k, (legend, expr) in enumerate(targets)],
            })
            next_id += 1
        y += 8 * ((len(row_panels) + 1) // 2)
    return {
        "title": "Switchboard signaling cluster",
        "uid": "switchboard-cluster",
        "description": "Sockets, rooms, traffic, latency and failures of the signaling cluster (docs/observability.md).",
        "tags": ["switchboard", "webrtc", "signaling"],
        "editable": True,
        "schemaVersion": 39,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
            {"name": "instance", "type": "query", "label": "Gateway",
             "datasource": {"type": "prometheus", "uid": "${datasource}"},
             "query": {"query": "label_values(switchboard_gateway_connections, instance)", "refId": "instance"},
             "definition": "label_values(switchboard_gateway_connections, instance)",
             "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
             "current": {"text": "All", "value": "$__all"}},
        ]},
        "panels": panels,
    }


if __name__ == "__main__":
    root = pathlib.Path(__file__).resolve().parents[2]
    out = root / "helm/switchboard/files/grafana-dashboard.json"
    out.write_text(json.dumps(dashboard(), indent=2) + "\n")
    print(f"wrote {out.relative_to(root)}")
