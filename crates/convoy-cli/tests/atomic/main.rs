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

mod failures;
mod refusal;
mod release;

use std::path::{Path, PathBuf};
use std::process::Output;

use convoy_test_support::{Cargo, REGISTRY, Server, http};
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cargo-convoy");

/// A registry, alice's token for it, and a cargo sandbox pointing at it.
pub(crate) struct Fixture {
    pub(crate) server: Server,
    pub(crate) cargo: Cargo,
    pub(crate) token: String,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let server = Server::start(BIN, &[]);
        let token = server.token("alice", &[]);
        let cargo = Cargo::new(&server, Some(&token));
        Self {
            server,
            cargo,
            token,
        }
    }

    /// Generates `builder` under the sandbox as `name`; returns its root.
    pub(crate) fn workspace(&self, name: &str, builder: &WorkspaceBuilder) -> PathBuf {
        let root = self.cargo.root().join(name);
        builder.write(&root).unwrap();
        root
    }

    /// `cargo convoy <args>` in `cwd`, not yet run.
    pub(crate) fn convoy_command(&self, cwd: &Path, args: &[&str]) -> std::process::Command {
        let mut full = vec!["convoy"];
        full.extend_from_slice(args);
        self.cargo.program(BIN, cwd, &full)
    }

    /// Runs `cargo convoy <args>` in `cwd`.
    pub(crate) fn convoy(&self, cwd: &Path, args: &[&str]) -> Output {
        self.convoy_command(cwd, args).output().unwrap()
    }

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

/// `pub fn value() -> u32` adding one to the values of `deps` (names as
/// used in code).
pub(crate) fn lib_rs(deps: &[&str]) -> String {
    let sum: String = deps.iter().map(|d| format!(" + {d}::value()")).collect();
    format!("pub fn value() -> u32 {{ 1{sum} }}\n")
}

/// A member with a path dependency (with version) on each of `deps`,
/// whose `value()` adds theirs.
pub(crate) fn member(name: &str, deps: &[&str]) -> Pkg {
    let idents: Vec<String> = deps.iter().map(|d| d.replace('-', "_")).collect();
    let idents: Vec<&str> = idents.iter().map(String::as_str).collect();
    let mut pkg = Pkg::new(name).file("src/lib.rs", lib_rs(&idents));
    for d in deps {
        pkg = pkg.local(d, "0.1.0");
    }
    pkg
}

/// The ordinary index file of `name` as JSON lines, `None` on 404.
pub(crate) fn index_lines(server: &Server, name: &str) -> Option<Vec<serde_json::Value>> {
    let url = format!(
        "{}/index/{}",
        server.url,
        convoy_protocol::index::index_path(name)
    );
    let resp = http().get(url).send().unwrap();
    if resp.status() == 404 {
        return None;
    }
    assert_eq!(resp.status(), 200);
    let text = resp.text().unwrap();
    Some(
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    )
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

/// A binary crate depending on `deps` (TOML lines) that prints `main`'s
/// output; returns what it printed.
pub(crate) fn consume(cargo: &Cargo, name: &str, deps: &str, main: &str) -> String {
    let dir = cargo.project(
        name,
        &[
            (
                "Cargo.toml",
                &format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{deps}\n"
                ),
            ),
            ("src/main.rs", main),
        ],
    );
    let out = cargo.ok(&dir, &["run", "-q"]);
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
