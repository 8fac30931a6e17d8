//! Convoy works wherever cargo works: each test first shows that plain
//! cargo succeeds in a setup (the baseline), then that `cargo convoy` does
//! in the same one. Real cargo, the real registry on 127.0.0.1, an isolated
//! `CARGO_HOME`, and network fixtures from `convoy_test_support::net`:
//!
//! - `tls`: a registry behind HTTPS whose CA exists only for the test,
//!   trusted through `http.cainfo`, then through `SSL_CERT_FILE`;
//! - `credentials`: a token only `cargo:token-from-stdout` knows;
//! - `proxy`: a forward proxy named in `http.proxy` sees the uploads;
//! - `crates_io`: `plan` reads crates.io's index (read only);
//! - `offline`: plan, check and a dry run with the registry stopped, from a
//!   warm cache.
#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::print_stdout)]

#[path = "../common/mod.rs"]
mod common;
mod crates_io;
mod credentials;
mod offline;
mod proxy;
mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use convoy_test_support::{Cargo, REGISTRY, manifest};
use convoy_workspace::testing::WorkspaceBuilder;

pub(crate) use common::{BIN, index_lines, member};

/// Proxy variables of the machine running the tests, removed from every
/// command so that only what a test sets applies.
const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

/// `program args` in the sandbox, without the machine's proxy settings.
pub(crate) fn command(cargo: &Cargo, program: &str, cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = cargo.program(program, cwd, args);
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// Runs and panics with the output unless it succeeded.
pub(crate) fn ok(mut cmd: Command, what: &str) -> Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{what} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The real cargo with `args`, which must succeed.
pub(crate) fn cargo_ok(cargo: &Cargo, cwd: &Path, args: &[&str]) -> Output {
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    ok(
        command(cargo, &program, cwd, args),
        &format!("cargo {}", args.join(" ")),
    )
}

/// `cargo convoy args`, which must succeed.
pub(crate) fn convoy_ok(cargo: &Cargo, cwd: &Path, args: &[&str]) -> Output {
    let mut full = vec!["convoy"];
    full.extend_from_slice(args);
    ok(
        command(cargo, BIN, cwd, &full),
        &format!("cargo convoy {}", args.join(" ")),
    )
}

/// The baseline: plain `cargo publish` of a one-crate package `name`.
pub(crate) fn cargo_publishes(cargo: &Cargo, name: &str, extra: &[&str]) {
    let dir = cargo.project(
        name,
        &[
            ("Cargo.toml", &manifest(name, "0.1.0", "")),
            ("src/lib.rs", "pub fn one() -> u32 { 1 }\n"),
        ],
    );
    let mut args = vec!["publish", "--registry", REGISTRY, "--no-verify"];
    args.extend_from_slice(extra);
    cargo_ok(cargo, &dir, &args);
}

/// A two-crate workspace, `<prefix>-b` depending on `<prefix>-a`.
pub(crate) fn workspace(cargo: &Cargo, prefix: &str) -> PathBuf {
    let a = format!("{prefix}-a");
    let b = format!("{prefix}-b");
    let ws = WorkspaceBuilder::new()
        .package(member(&a, &[]))
        .package(member(&b, &[&a]));
    let root = cargo.root().join(prefix);
    ws.write(&root).unwrap();
    root
}

/// `cargo convoy publish --registry convoy --format json` plus `extra`,
/// which must succeed with every crate published; returns the document.
pub(crate) fn convoy_publishes(
    cargo: &Cargo,
    root: &Path,
    extra: &[&str],
) -> (serde_json::Value, String) {
    let mut args = vec!["publish", "--registry", REGISTRY, "--format", "json"];
    args.extend_from_slice(extra);
    let out = convoy_ok(cargo, root, &args);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for krate in doc["registries"][0]["crates"].as_array().unwrap() {
        assert_eq!(krate["outcome"], "published", "{doc:#}");
    }
    (doc, String::from_utf8_lossy(&out.stderr).into_owned())
}
