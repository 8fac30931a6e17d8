//! Failures before the commit leave nothing visible; a rerun completes the
//! release.

use std::time::{Duration, Instant};

use convoy_test_support::REGISTRY;
use convoy_workspace::testing::WorkspaceBuilder;

use crate::{Fixture, assert_nothing_visible, index_lines, member, outcomes};

/// Acceptance 2: the registry refuses one crate mid-upload (the token may
/// not publish it: 403). The stage is aborted, nothing is visible, and a
/// rerun with a token that may publish everything re-stages the same bytes
/// (allowed after an abort) and completes the release.
#[test]
fn refused_upload_aborts_the_stage_and_a_rerun_completes() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .package(member("af-a", &[]))
        .package(member("af-b", &["af-a"]))
        .package(member("af-c", &["af-b"]))
        .package(member("af-free", &[]));
    let root = fx.workspace("refused", &ws);
    let names = ["af-a", "af-b", "af-c", "af-free"];

    let limited = fx.server.token(
        "alice",
        &["--crate", "af-a", "--crate", "af-b", "--crate", "af-free"],
    );
    let out = fx
        .convoy_command(
            &root,
            &[
                "publish",
                "--atomic",
                "--registry",
                REGISTRY,
                "--format",
                "json",
            ],
        )
        .env("CARGO_REGISTRIES_CONVOY_TOKEN", &limited)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("af-c"), "{stderr}");
    assert!(stderr.contains("403"), "the refusal is shown: {stderr}");
    assert!(stderr.contains("Aborted"), "{stderr}");
    assert!(
        !stderr.contains(&limited),
        "the token is never printed: {stderr}"
    );
    assert_nothing_visible(&fx.server, &names);

    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let got = outcomes(&doc, 0);
    assert!(got.contains(&("af-c".into(), "failed".into())), "{got:?}");
    assert!(got.contains(&("af-a".into(), "aborted".into())), "{got:?}");
    assert!(doc["registries"][0].get("release").is_none(), "{doc}");
    assert!(fx.open_stages().is_empty(), "the stage is aborted");
    assert!(fx.ledger().is_empty(), "{:?}", fx.ledger());

    let doc = fx.publish_atomic(&root, &["--verify", "none"]);
    assert!(
        outcomes(&doc, 0).iter().all(|(_, o)| o == "published"),
        "{doc}"
    );
    for name in names {
        assert!(index_lines(&fx.server, name).is_some(), "{name}");
    }
}

/// Acceptance 2: the client is killed (SIGKILL) while its stage is open and
/// partly uploaded. Nothing is visible; the stage stays recorded in
/// `stages.json`; a rerun aborts it and completes the release.
#[test]
fn killed_client_leaves_nothing_and_a_rerun_completes() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .package(member("ak-a", &[]))
        .package(member("ak-b", &["ak-a"]))
        .package(member("ak-c", &["ak-b"]));
    let root = fx.workspace("killed", &ws);
    let names = ["ak-a", "ak-b", "ak-c"];
    let journal = fx.cargo.target_dir().join("convoy").join("journal.jsonl");

    // Verification (`cargo check` of each crate against the stage) runs
    // after the uploads, so a staged crate means the stage is open and
    // not yet committed.
    let mut child = fx
        .convoy_command(&root, &["publish", "--atomic", "--registry", REGISTRY])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let text = std::fs::read_to_string(&journal).unwrap_or_default();
        if text.contains("\"event\":\"staged\"") {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the publish ended ({status}) before anything was staged");
        }
        assert!(Instant::now() < deadline, "nothing was staged in time");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let journal_text = std::fs::read_to_string(&journal).unwrap();
    assert!(
        !journal_text.contains("\"event\":\"committed\""),
        "killed too late to test anything: {journal_text}"
    );

    assert_nothing_visible(&fx.server, &names);
    let ledger = fx.ledger();
    assert_eq!(ledger.len(), 1, "{ledger:?}");
    let old = ledger[0]["id"].as_str().unwrap().to_owned();
    assert!(
        !std::fs::read_to_string(fx.cargo.target_dir().join("convoy").join("stages.json"))
            .unwrap()
            .contains("cvy_"),
        "no token is written to disk"
    );
    let (_, stage) = fx.staging_get(&format!("/stages/{old}"));
    assert_eq!(stage["state"], "open", "{stage}");
    assert!(!stage["crates"].as_array().unwrap().is_empty(), "{stage}");

    let doc = fx.publish_atomic(&root, &[]);
    assert!(
        outcomes(&doc, 0).iter().all(|(_, o)| o == "published"),
        "{doc}"
    );
    let release = doc["registries"][0]["release"].as_str().unwrap();
    assert_ne!(release, old, "a fresh stage");
    let (_, stage) = fx.staging_get(&format!("/stages/{old}"));
    assert_eq!(stage["state"], "aborted", "{stage}");
    assert!(fx.ledger().is_empty(), "{:?}", fx.ledger());
    for name in names {
        assert!(index_lines(&fx.server, name).is_some(), "{name}");
    }
}

/// A crate that does not build from the staged bytes (it compiles in the
/// workspace only because a sibling turns on a feature of a shared
/// dependency) fails verification against the staging view: every stage is
/// aborted and nothing is visible.
#[test]
fn verification_failure_against_the_stage_aborts_it() {
    let fx = Fixture::new(&[]);
    let shared = fx.cargo.project(
        "shared",
        &[
            (
                "Cargo.toml",
                &convoy_test_support::manifest("av-shared", "1.0.0", "\n[features]\nextra = []\n"),
            ),
            (
                "src/lib.rs",
                "#[cfg(feature = \"extra\")]\npub fn extra() -> u32 { 7 }\npub fn base() -> u32 { 1 }\n",
            ),
        ],
    );
    fx.cargo.ok(
        &shared,
        &["publish", "--registry", REGISTRY, "--allow-dirty"],
    );
    let dep =
        |features: &str| format!("{{ version = \"1\", registry = \"{REGISTRY}\"{features} }}");
    let ws = WorkspaceBuilder::new()
        .package(
            convoy_workspace::testing::Pkg::new("av-needs")
                .dep("av-shared", &dep(""))
                .file(
                    "src/lib.rs",
                    "pub fn value() -> u32 { av_shared::extra() }\n",
                ),
        )
        .package(
            convoy_workspace::testing::Pkg::new("av-enables")
                .dep("av-shared", &dep(", features = [\"extra\"]"))
                .file(
                    "src/lib.rs",
                    "pub fn value() -> u32 { av_shared::base() }\n",
                ),
        );
    let root = fx.workspace("unverified", &ws);
    let out = fx.convoy(&root, &["publish", "--atomic", "--registry", REGISTRY]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("verification against the staged release"),
        "{stderr}"
    );
    assert!(stderr.contains("av-needs"), "{stderr}");
    assert!(stderr.contains("Aborted"), "{stderr}");
    assert_nothing_visible(&fx.server, &["av-needs", "av-enables"]);
    assert!(fx.open_stages().is_empty());
    assert!(fx.ledger().is_empty(), "{:?}", fx.ledger());
}
