//! Fixtures shared by the `publish` and `atomic` test binaries: a registry
//! with a token, a cargo sandbox pointing at it, generated workspaces, and
//! the real `cargo-convoy` binary. Each binary uses a subset.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use convoy_test_support::{Cargo, REGISTRY, Server, http};
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};
use sha2::{Digest, Sha256};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cargo-convoy");

/// A registry, alice's token for it, and a cargo sandbox pointing at it.
pub(crate) struct Fixture {
    pub(crate) server: Server,
    pub(crate) cargo: Cargo,
    pub(crate) token: String,
}

impl Fixture {
    pub(crate) fn new(server_args: &[&str]) -> Self {
        let server = Server::start(BIN, server_args);
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
    pub(crate) fn convoy_command(&self, cwd: &Path, args: &[&str]) -> Command {
        let mut full = vec!["convoy"];
        full.extend_from_slice(args);
        self.cargo.program(BIN, cwd, &full)
    }

    /// Runs `cargo convoy <args>` in `cwd`.
    pub(crate) fn convoy(&self, cwd: &Path, args: &[&str]) -> Output {
        self.convoy_command(cwd, args).output().unwrap()
    }

    /// Runs `cargo convoy <args>` and panics with its output unless it
    /// succeeded; returns stdout.
    pub(crate) fn convoy_ok(&self, cwd: &Path, args: &[&str]) -> String {
        let out = self.convoy(cwd, args);
        assert!(
            out.status.success(),
            "cargo convoy {} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `cargo convoy publish --registry convoy --format json` plus `extra`;
    /// panics unless it succeeded. Checks that every published or skipped
    /// checksum is the sha256 of the very `.crate` Convoy verified, and the
    /// one the index holds.
    pub(crate) fn publish(&self, root: &Path, extra: &[&str]) -> serde_json::Value {
        let mut args = vec!["publish", "--registry", REGISTRY, "--format", "json"];
        args.extend_from_slice(extra);
        let doc: serde_json::Value = serde_json::from_str(&self.convoy_ok(root, &args)).unwrap();
        for registry in doc["registries"].as_array().unwrap() {
            for krate in registry["crates"].as_array().unwrap() {
                let outcome = krate["outcome"].as_str().unwrap();
                if outcome != "published" && outcome != "skipped" {
                    continue;
                }
                let file = std::fs::read(krate["crate_file"].as_str().unwrap()).unwrap();
                let cksum = hex::encode(Sha256::digest(&file));
                assert_eq!(krate["cksum"], cksum.as_str());
                let name = krate["name"].as_str().unwrap();
                let lines = index_lines(&self.server, name).expect("published crate is indexed");
                let line = lines
                    .iter()
                    .find(|l| l["vers"] == krate["version"])
                    .expect("version is indexed");
                assert_eq!(line["cksum"], cksum.as_str(), "{name}");
            }
        }
        doc
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
