//! The release workflow end to end: a real git repository, the real cargo,
//! the real `cargo-convoy` binary and the Convoy registry on 127.0.0.1.
//!
//! - `release`: the acceptance steps of the workflow (tags after publish,
//!   `changed`, `version` through the graph with changelogs, a registry that
//!   is down, the rerun, `--dry-run`, `auto`);
//! - `semver_checks`: `auto` with cargo-semver-checks, skipped (saying so)
//!   where it is not installed.
#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::print_stdout)]

#[path = "../common/mod.rs"]
mod common;
mod release;
mod semver_checks;

use std::path::Path;
use std::process::Command;

pub(crate) use common::{BIN, Fixture, index_lines};

/// A registry fixture whose commands (cargo, git, `cargo-convoy`) commit and
/// tag as a fixed identity, untouched by the machine's git configuration.
pub(crate) fn fixture() -> Fixture {
    let mut fx = Fixture::new(&[]);
    for (k, v) in GIT_ENV {
        fx.cargo.env(k, v);
    }
    fx
}

const GIT_ENV: [(&str, &str); 6] = [
    ("GIT_AUTHOR_NAME", "Convoy Test"),
    ("GIT_AUTHOR_EMAIL", "test@example.invalid"),
    ("GIT_COMMITTER_NAME", "Convoy Test"),
    ("GIT_COMMITTER_EMAIL", "test@example.invalid"),
    ("GIT_CONFIG_GLOBAL", "/dev/null"),
    ("GIT_CONFIG_NOSYSTEM", "1"),
];

/// Runs git in `dir` and returns stdout; panics on failure.
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .envs(GIT_ENV)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {} failed\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Writes `contents` to `root/path` and commits everything with `message`.
pub(crate) fn commit(root: &Path, path: &str, contents: &str, message: &str) {
    std::fs::write(root.join(path), contents).unwrap();
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", message]);
}

/// Every tag of the repository, sorted.
pub(crate) fn tags(root: &Path) -> Vec<String> {
    let mut tags: Vec<String> = git(root, &["tag", "--list"])
        .lines()
        .map(str::to_owned)
        .collect();
    tags.sort();
    tags
}
