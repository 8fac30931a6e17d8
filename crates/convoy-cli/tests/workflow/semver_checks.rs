//! `auto` raised by cargo-semver-checks, against the registry's latest
//! version as the baseline.

use convoy_test_support::REGISTRY;
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};

use crate::{commit, fixture, git};

fn installed() -> bool {
    std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["semver-checks", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn auto_takes_the_api_break_from_cargo_semver_checks() {
    if !installed() {
        eprintln!(
            "SKIPPED auto_takes_the_api_break_from_cargo_semver_checks: cargo-semver-checks is not installed (`cargo install cargo-semver-checks` to run it)"
        );
        return;
    }
    let fx = fixture();
    let ws = WorkspaceBuilder::new().package(
        Pkg::new("sv-lib")
            .version("0.2.0")
            .file("src/lib.rs", "pub fn a() {}\npub fn b() {}\n"),
    );
    let root = fx.workspace("sv", &ws);
    git(&root, &["init", "-q", "-b", "main"]);
    fx.cargo.ok(&root, &["generate-lockfile", "--offline"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "feat: a and b"]);
    fx.publish(&root, &["--verify", "none", "--tag"]);
    // Removing a public function is breaking, whatever the commit says.
    commit(
        &root,
        "crates/sv-lib/src/lib.rs",
        "pub fn a() {}\n",
        "fix: tidy up",
    );
    let report: serde_json::Value = serde_json::from_str(&fx.convoy_ok(
        &root,
        &[
            "version",
            "auto",
            "-p",
            "sv-lib",
            "--registry",
            REGISTRY,
            "--dry-run",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(report["semver_checks"]["status"], "installed", "{report:#}");
    assert_eq!(report["packages"][0]["level"], "major", "{report:#}");
    assert_eq!(report["packages"][0]["to"], "0.3.0", "{report:#}");
}
