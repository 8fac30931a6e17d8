//! The registry, driven by the real `cargo` against `cargo convoy serve` on
//! 127.0.0.1. One binary, modules by feature area:
//!
//! - `cargo_flow`: publish, build, yank, owner, search and login with cargo;
//! - `private`: `--auth-required`;
//! - `validation`: every refused upload, sent as raw HTTP;
//! - `durability`: kill -9 during publishes, and concurrent publishers;
//! - `staging`: staged releases (docs/STAGING.md), server side;
//! - `hostile`: the attacks of issue 8 on archives, the index and routes;
//! - `slow_clients`: half-open connections and every kind of stall;
//! - `tokens`: revocation, `/api/v1/me/tokens`, creator-bounded stage tokens;
//! - `stage_rules`: stage scopes, invisible staged data, search, orphan sweep;
//! - `scaleout`: several nodes on PostgreSQL and S3 behind a balancer.
//!
//! Every module but `scaleout` and `slow_clients` (the connection layer,
//! the same whatever the backend) runs twice: as itself, on the embedded
//! backend, and again under `on_postgres`, where every server it starts
//! runs on a fresh PostgreSQL database (see
//! `convoy_test_support::on_postgres`). That is the conformance
//! parametrization of the acceptance suite: the same tests, not a copy.
#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::print_stdout)]
// Compiling the same modules twice, once per backend, is the point.
#![allow(clippy::duplicate_mod)]

mod cargo_flow;
mod durability;
mod hostile;
mod private;
mod scaleout;
mod slow_clients;
mod stage_rules;
mod staging;
mod tokens;
mod validation;

/// The same modules again, on PostgreSQL.
#[path = "."]
mod on_postgres {
    #[path = "cargo_flow.rs"]
    mod cargo_flow;
    #[path = "durability.rs"]
    mod durability;
    #[path = "hostile.rs"]
    mod hostile;
    #[path = "private.rs"]
    mod private;
    #[path = "stage_rules.rs"]
    mod stage_rules;
    #[path = "staging.rs"]
    mod staging;
    #[path = "tokens.rs"]
    mod tokens;
    #[path = "validation.rs"]
    mod validation;
}

use convoy_test_support::Server;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cargo-convoy");

pub(crate) fn server(args: &[&str]) -> Server {
    Server::start(BIN, args)
}

/// Publishes `tarball` with `meta` over raw HTTP; returns status and body.
pub(crate) fn publish_raw(
    server: &Server,
    token: Option<&str>,
    meta: &serde_json::Value,
    tarball: &[u8],
) -> (u16, String) {
    let body = convoy_protocol::publish::encode_publish_body(
        serde_json::to_vec(meta).unwrap().as_slice(),
        tarball,
    );
    send_publish(server, token, body)
}

pub(crate) fn send_publish(server: &Server, token: Option<&str>, body: Vec<u8>) -> (u16, String) {
    let mut req = convoy_test_support::http()
        .put(format!("{}/api/v1/crates/new", server.url))
        .body(body);
    if let Some(token) = token {
        req = req.header("Authorization", token);
    }
    let resp = req.send().expect("send publish");
    (resp.status().as_u16(), resp.text().unwrap_or_default())
}

/// Minimal publish metadata, as cargo would send it.
pub(crate) fn meta(name: &str, vers: &str) -> serde_json::Value {
    serde_json::json!({
        "name": name, "vers": vers, "deps": [], "features": {}, "authors": [],
        "description": "test", "license": "MIT", "keywords": [], "categories": [],
        "badges": {}, "links": null, "rust_version": null
    })
}

/// The index file of `name`, or `None` on 404.
pub(crate) fn index_lines(server: &Server, name: &str) -> Option<Vec<serde_json::Value>> {
    let url = format!(
        "{}/index/{}",
        server.url,
        convoy_protocol::index::index_path(name)
    );
    let resp = convoy_test_support::http().get(url).send().unwrap();
    if resp.status() == 404 {
        return None;
    }
    assert_eq!(resp.status(), 200);
    let text = resp.text().unwrap();
    Some(
        text.lines()
            .map(|l| serde_json::from_str(l).expect("index line is JSON"))
            .collect(),
    )
}
