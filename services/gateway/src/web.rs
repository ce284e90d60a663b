//! What the gateway serves to browsers besides the WebSocket: the JavaScript SDK, the
//! demo app, and, while anonymous access is on, a development token endpoint.
//!
//! The files live in `services/gateway/web/` as readable source and are compiled into
//! the binary, so a gateway serves them without any file on disk.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use protocol::names::validate_room_name;
use serde::Deserialize;
use serde_json::json;

use crate::Gateway;
use crate::auth::{ANY_ROOM, Claims, MAX_IDENTITY_LEN};

const SDK: &str = include_str!("../web/signal.js");
const DEMO_HTML: &str = include_str!("../web/index.html");
const DEMO_JS: &str = include_str!("../web/demo.js");
const DEMO_CSS: &str = include_str!("../web/demo.css");

/// Lifetime of development tokens.
const DEV_TOKEN_TTL: Duration = Duration::from_secs(3600);

pub fn routes(gateway: &Gateway) -> Router<Arc<Gateway>> {
    let mut router = Router::new().route("/sdk/signal.js", get(|| file("text/javascript", SDK)));
    if gateway.config.demo_page {
        router = router
            .route("/", get(|| file("text/html; charset=utf-8", DEMO_HTML)))
            .route("/demo.js", get(|| file("text/javascript", DEMO_JS)))
            .route("/demo.css", get(|| file("text/css", DEMO_CSS)))
            .route("/demo/config", get(demo_config));
    }
    if gateway.auth.anonymous_allowed() {
        router = router.route("/dev/token", get(dev_token));
    }
    router
}

async fn file(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// What the demo page needs to know: whether it may fetch development tokens.
async fn demo_config(State(gateway): State<Arc<Gateway>>) -> Json<serde_json::Value> {
    Json(json!({ "dev_tokens": gateway.auth.anonymous_allowed() }))
}

#[derive(Deserialize)]
struct DevTokenQuery {
    identity: Option<String>,
    name: Option<String>,
    room: Option<String>,
}

/// DEVELOPMENT ONLY. Mints a token for anyone who asks. It exists only while anonymous
/// access is on (embedded mode without a configured secret), where anyone may connect
/// and join any room anyway; it lets the demo show display names.
async fn dev_token(State(gateway): State<Arc<Gateway>>, Query(query): Query<DevTokenQuery>) -> Response {
    let identity = query.identity.unwrap_or_else(|| format!("dev-{:08x}", rand::random::<u32>()));
    let room = query.room.unwrap_or_else(|| ANY_ROOM.to_string());
    let name = query.name.filter(|name| !name.is_empty());
    let invalid = |message: String| (StatusCode::BAD_REQUEST, message).into_response();
    if identity.is_empty() || identity.len() > MAX_IDENTITY_LEN {
        return invalid(format!("identity must be 1 to {MAX_IDENTITY_LEN} bytes"));
    }
    if name.as_ref().is_some_and(|name| name.len() > MAX_IDENTITY_LEN) {
        return invalid(format!("name must be at most {MAX_IDENTITY_LEN} bytes"));
    }
    if room != ANY_ROOM
        && let Err(message) = validate_room_name(&room)
    {
        return invalid(message);
    }
    let mut claims = Claims::new(identity, vec![room], DEV_TOKEN_TTL);
    claims.name = name;
    match gateway.auth.mint_dev_token(&claims) {
        Some(token) => Json(json!({
            "token": token,
            "warning": "development only: this endpoint exists because anonymous access is on",
        }))
        .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
