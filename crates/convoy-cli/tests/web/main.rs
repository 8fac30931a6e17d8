//! The web UI, in a real browser: crates published with the real `cargo`
//! into `cargo convoy serve`, pages loaded by headless Chromium over
//! WebDriver, assertions on the rendered DOM. Plain HTTP covers status
//! codes, cookie attributes and CSRF.
//!
//! - `pages`: README, versions and yank marker, dependencies and
//!   dependents, search, home, users, XSS, staged crates;
//! - `private`: `--auth-required` login, logout, cookies, CSRF;
//! - `screenshots` (ignored): regenerates the PNGs in `docs/`.
#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::print_stdout)]

mod pages;
mod private;
mod screenshots;

use std::path::{Path, PathBuf};

use convoy_test_support::{Cargo, REGISTRY, Server, manifest};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_cargo-convoy");

/// A server, alice's token and a cargo sandbox that publishes as her.
pub(crate) struct Fixture {
    pub(crate) server: Server,
    pub(crate) token: String,
    pub(crate) cargo: Cargo,
}

impl Fixture {
    pub(crate) fn new(args: &[&str]) -> Self {
        let server = Server::start(BIN, args);
        let token = server.token("alice", &[]);
        let mut cargo = Cargo::new(&server, Some(&token));
        // A private registry needs cargo's token provider named.
        cargo.env("CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS", "cargo:token");
        Self {
            server,
            token,
            cargo,
        }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url)
    }

    /// Writes a package (`extra` goes into `[package]`; `files` besides
    /// the manifest and `src/lib.rs`) and publishes it with cargo.
    pub(crate) fn publish(
        &self,
        name: &str,
        version: &str,
        extra: &str,
        files: &[(&str, &str)],
    ) -> PathBuf {
        let dir = format!("{name}-{version}");
        let manifest = manifest(name, version, extra);
        let mut all = vec![("Cargo.toml", manifest.as_str()), ("src/lib.rs", "")];
        all.extend_from_slice(files);
        let root = self.cargo.project(&dir, &all);
        publish_dir(&self.cargo, &root);
        root
    }
}

pub(crate) fn publish_dir(cargo: &Cargo, root: &Path) {
    cargo.ok(
        root,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "--no-verify",
            "--allow-dirty",
        ],
    );
}
