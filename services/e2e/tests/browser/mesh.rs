//! A mesh of three browsers on three gateways, and one of them leaving by closing.

use e2e::browser::{Browsers, Page};

use crate::{CONNECT_TIMEOUT, TestCluster, connected_to, demo_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_browsers_on_three_gateways_form_a_mesh() {
    let cluster = TestCluster::redis(3).await;
    let browsers = Browsers::start().await;
    let mut pages = Vec::new();
    for (index, name) in ["Ana", "Ben", "Cy"].into_iter().enumerate() {
        let token = cluster.token_named(&name.to_lowercase(), name, &["mesh"]);
        pages.push(browsers.open(name, &demo_url(&cluster.http_url(index), "mesh", name, Some(&token))).await);
    }
    let all: Vec<&Page> = pages.iter().collect();
    let snapshots = Page::wait_all(&all, &connected_to(2), CONNECT_TIMEOUT).await;
    let ids: Vec<String> = snapshots.iter().map(|snapshot| snapshot["peerId"].as_str().unwrap().to_string()).collect();
    // Reported, not asserted (docs/benchmarks.md): link creation to `connected`.
    for (page, snapshot) in pages.iter().zip(&snapshots) {
        let times: Vec<_> = snapshot["peers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["negotiation"]["connectedAfterMs"].clone())
            .collect();
        eprintln!("{}: connected after {times:?} ms", page.name);
    }

    // Cy closes the page: the others see it leave and tear their link down.
    let cy = pages.pop().unwrap();
    cy.close().await;
    let left = format!(
        "s.peers.length === 1 && s.departed.some((d) => d.peerId === '{}' && d.reason === 'disconnected')",
        ids[2]
    );
    for page in &pages {
        page.wait_for(&left, CONNECT_TIMEOUT).await;
        page.wait_for(&connected_to(1), CONNECT_TIMEOUT).await;
    }
    for page in pages {
        page.close().await;
    }
    cluster.shutdown().await;
}
