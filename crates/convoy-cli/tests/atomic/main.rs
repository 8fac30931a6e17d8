//! `cargo convoy publish --atomic` and `cargo convoy yank --release`, end to
//! end: generated workspaces, the real `cargo-convoy` binary, the real
//! cargo, and the Convoy registry on 127.0.0.1. Modules by feature area:
//!
//! - `release`: a whole workspace appears at once to a concurrent reader,
//!   a consumer builds, several registries, and release yanks;
//! - `failures`: a refused upload and a killed client leave nothing
//!   visible, and a rerun completes the release;
//! - `refusal`: registries without staging are refused before packaging.
//!
//! The registry's own rules (races, commits, expiry) are tested in
//! `tests/registry/staging.rs`.
#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::print_stdout)]

#[path = "../common/mod.rs"]
mod common;
mod failures;
mod refusal;
mod release;

use std::path::Path;

use convoy_test_support::{REGISTRY, Server, http};

pub(crate) use common::{BIN, Fixture, consume, index_lines, member};

/// The atomic tests' own views of a fixture.
impl Fixture {
    /// `cargo convoy publish --atomic --format json` plus `extra`; panics
    /// unless it succeeded; returns the result document.
    pub(crate) fn publish_atomic(&self, root: &Path, extra: &[&str]) -> serde_json::Value {
        let mut args = vec![
            "publish",
            "--atomic",
            "--registry",
            REGISTRY,
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        let out = self.convoy(root, &args);
        assert!(
            out.status.success(),
            "cargo convoy {} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `GET {staging api}{path}` with alice's token: status and JSON body.
    pub(crate) fn staging_get(&self, path: &str) -> (u16, serde_json::Value) {
        let resp = http()
            .get(format!("{}/api/v1/convoy{path}", self.server.url))
            .header("Authorization", &self.token)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }

    /// Alice's open stages on the registry.
    pub(crate) fn open_stages(&self) -> Vec<serde_json::Value> {
        let (status, body) = self.staging_get("/stages");
        assert_eq!(status, 200, "{body}");
        body["stages"].as_array().unwrap().clone()
    }

    /// `target/convoy/stages.json` of the sandbox, as the client wrote it.
    pub(crate) fn ledger(&self) -> Vec<serde_json::Value> {
        let path = self.cargo.target_dir().join("convoy").join("stages.json");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
                doc["stages"].as_array().unwrap().clone()
            }
            Err(_) => Vec::new(),
        }
    }
}

/// Panics if any of `names` has any version in the ordinary index.
pub(crate) fn assert_nothing_visible(server: &Server, names: &[&str]) {
    for name in names {
        assert!(
            index_lines(server, name).is_none(),
            "`{name}` is visible in the ordinary index"
        );
    }
}

/// `(name, outcome)` of every crate of the result document's `registry`-th
/// registry.
pub(crate) fn outcomes(doc: &serde_json::Value, registry: usize) -> Vec<(String, String)> {
    doc["registries"][registry]["crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
