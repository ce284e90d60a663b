//! The embedded default as a developer first meets it: no Redis, no secret; the demo
//! page fetches development tokens and two browsers connect.

use e2e::browser::Browsers;
use e2e::http_get;

use crate::{CONNECT_TIMEOUT, TestCluster, connected_to, demo_url};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_demo_works_with_development_tokens() {
    let cluster = TestCluster::embedded_with(|config| config.auth.jwt_secret = None).await;
    let base = cluster.http_url(0);
    let (status, body) = http_get(&base, "/demo/config").await;
    assert_eq!((status, body.as_str()), (200, r#"{"dev_tokens":true}"#));
    let browsers = Browsers::start().await;
    let one = browsers.open("one", &demo_url(&base, "lobby", "Uno", None)).await;
    let two = browsers.open("two", &demo_url(&base, "lobby", "Dos", None)).await;
    let snapshot = one.wait_for(&connected_to(1), CONNECT_TIMEOUT).await;
    assert_eq!(snapshot["peers"][0]["name"], "Dos", "the display name came with the development token");
    two.wait_for(&connected_to(1), CONNECT_TIMEOUT).await;
    one.close().await;
    two.close().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_tokens_exist_only_while_anonymous_access_is_on() {
    let cluster = TestCluster::redis(1).await;
    let base = cluster.http_url(0);
    assert_eq!(http_get(&base, "/dev/token?identity=x").await.0, 404);
    assert_eq!(http_get(&base, "/demo/config").await.1, r#"{"dev_tokens":false}"#);
    let (status, sdk) = http_get(&base, "/sdk/signal.js").await;
    assert_eq!(status, 200);
    assert!(sdk.contains("export class SignalingClient"), "the SDK is served");
    cluster.shutdown().await;

    let embedded = TestCluster::embedded_with(|config| config.auth.jwt_secret = None).await;
    let (status, body) = http_get(&embedded.http_url(0), "/dev/token?identity=ann&name=Ann&room=r1").await;
    assert_eq!(status, 200, "{body}");
    let token: serde_json::Value = serde_json::from_str(&body).unwrap();
    let mut client = protocol::client::Client::connect(&embedded.ws_url(0), token["token"].as_str()).await.unwrap();
    assert_eq!((client.welcome().identity.as_str(), client.welcome().name.as_deref()), ("ann", Some("Ann")));
    client.join("r1", None).await.unwrap();
    let refused = client.join("r2", None).await.unwrap_err();
    assert_eq!(refused.code(), Some(protocol::ErrorCode::Forbidden), "a dev token is held to its room");
    assert_eq!(http_get(&embedded.http_url(0), "/dev/token?room=bad%7Bname%7D").await.0, 400);
    embedded.shutdown().await;
}

/// Without Chromium the browser tests fail at once, saying what to install.
#[test]
#[should_panic(expected = "install Debian's chromium and chromium-driver packages")]
fn a_missing_browser_is_reported_clearly() {
    e2e::browser::find_executable("CHROMIUM", None, &["/nonexistent/chromium"]);
}
