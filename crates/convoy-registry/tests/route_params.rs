//! Arbitrary route parameters never panic a handler: every route that takes
//! a name, version or id gets random text, percent-encoded, and must answer
//! with a 4xx (or 2xx) in cargo's JSON envelope, never a 500.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request};
use convoy_registry::{App, Limits, Settings};
use convoy_store::NewToken;
use convoy_store::fs::FsBlobStore;
use convoy_store::sqlite::SqliteStore;
use proptest::prelude::*;
use tower::ServiceExt;

fn encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,12}",
        "[a-z]{1,5}",
        Just("foo".to_owned()),
        Just("1.0.0".to_owned()),
        Just("stg_0123456789abcdef".to_owned()),
        "\\PC{0,80}",
        any::<Vec<u8>>().prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

#[test]
fn arbitrary_route_parameters_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("db.sqlite")).unwrap();
    let token = store
        .create_token_blocking(NewToken {
            login: "alice".into(),
            name: "t".into(),
            scopes: vec![],
            crates: vec![],
            expires_at: None,
        })
        .unwrap()
        .expose()
        .to_owned();
    let blobs = FsBlobStore::open(dir.path().join("crates")).unwrap();
    let app = App::new(
        Arc::new(store),
        Arc::new(blobs),
        Settings {
            public_url: "http://127.0.0.1:1".into(),
            auth_required: false,
            limits: Limits::default(),
            publish_rate: None,
            companions: true,
        },
    );
    let router = convoy_registry::router(app);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let templates: &[(Method, &str)] = &[
        (Method::GET, "/index/{a}"),
        (Method::GET, "/index/{a}/{b}"),
        (Method::GET, "/index/{a}/{b}/{c}"),
        (Method::GET, "/api/v1/crates/{a}/{b}/download"),
        (Method::DELETE, "/api/v1/crates/{a}/{b}/yank"),
        (Method::PUT, "/api/v1/crates/{a}/{b}/unyank"),
        (Method::GET, "/api/v1/crates/{a}/owners"),
        (Method::PUT, "/api/v1/crates/{a}/owners"),
        (Method::GET, "/api/v1/convoy/stages/{a}"),
        (Method::POST, "/api/v1/convoy/stages/{a}/extend"),
        (Method::POST, "/api/v1/convoy/stages/{a}/commit"),
        (Method::DELETE, "/api/v1/convoy/stages/{a}"),
        (Method::GET, "/api/v1/convoy/releases/{a}"),
        (Method::DELETE, "/api/v1/convoy/releases/{a}/yank"),
        (Method::GET, "/stages/{a}/index/config.json"),
        (Method::GET, "/stages/{a}/index/{b}/{c}"),
        (Method::GET, "/stages/{a}/dl/{b}/{c}/download"),
        (Method::DELETE, "/api/v1/me/tokens/{a}"),
        (Method::GET, "/api/v1/convoy/crates/{a}/companions"),
        (Method::GET, "/api/v1/crates?q={a}&per_page={b}"),
    ];
    let config = ProptestConfig {
        cases: 400,
        ..ProptestConfig::default()
    };
    proptest!(config, |(
        which in 0..templates.len(),
        a in segment(),
        b in segment(),
        c in segment(),
        authorized in any::<bool>(),
    )| {
        let (method, template) = &templates[which];
        let uri = template
            .replace("{a}", &encode(&a))
            .replace("{b}", &encode(&b))
            .replace("{c}", &encode(&c));
        let mut request = Request::builder().method(method.clone()).uri(&uri);
        if authorized {
            request = request.header("Authorization", &token);
        }
        let request = request.body(Body::from("{\"users\":[\"x\"]}")).unwrap();
        let response = runtime.block_on(router.clone().oneshot(request)).unwrap();
        let status = response.status();
        prop_assert!(!status.is_server_error(), "{} {} gave {}", method, uri, status);
        let body = runtime
            .block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        prop_assert!(text.len() < 4096, "{} bytes for {}", text.len(), uri);
        prop_assert!(!text.contains('\n') || status.is_success(), "{}", text);
    });
}
