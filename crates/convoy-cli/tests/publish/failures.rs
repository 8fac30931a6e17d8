//! What must stop a release, and what a rerun must finish.

use convoy_test_support::{REGISTRY, manifest};
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};

use crate::{Fixture, index_lines, member};

/// A crate that compiles in the workspace only because a sibling turns on a
/// feature of a shared dependency must fail verification, and nothing may
/// be uploaded.
#[test]
fn missing_feature_fails_verification_and_uploads_nothing() {
    let fx = Fixture::new(&[]);
    let shared = fx.cargo.project(
        "shared",
        &[
            ("Cargo.toml", &manifest("mf-shared", "1.0.0", "\n[features]\nextra = []\n")),
            ("src/lib.rs", "#[cfg(feature = \"extra\")]\npub fn extra() -> u32 { 7 }\npub fn base() -> u32 { 1 }\n"),
        ],
    );
    fx.cargo.ok(
        &shared,
        &["publish", "--registry", REGISTRY, "--allow-dirty"],
    );
    let dep =
        |features: &str| format!("{{ version = \"1\", registry = \"{REGISTRY}\"{features} }}");
    let ws = WorkspaceBuilder::new()
        .package(Pkg::new("mf-needs").dep("mf-shared", &dep("")).file(
            "src/lib.rs",
            "pub fn value() -> u32 { mf_shared::extra() }\n",
        ))
        .package(
            Pkg::new("mf-enables")
                .dep("mf-shared", &dep(", features = [\"extra\"]"))
                .file(
                    "src/lib.rs",
                    "pub fn value() -> u32 { mf_shared::base() }\n",
                ),
        );
    let root = fx.workspace("missing-feature", &ws);
    // The workspace itself builds: features are unified across members.
    fx.cargo.ok(&root, &["build", "--workspace", "-q"]);

    let out = fx.convoy(&root, &["publish", "--registry", REGISTRY]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("mf-needs"), "{stderr}");
    assert!(
        stderr.contains("extra"),
        "the compiler's error is shown: {stderr}"
    );
    assert!(index_lines(&fx.server, "mf-needs").is_none());
    assert!(
        index_lines(&fx.server, "mf-enables").is_none(),
        "nothing is uploaded"
    );
}

/// A run that fails halfway (here: a token that may only publish the first
/// crate) leaves a state that a rerun completes, skipping what is there and
/// saying what happened before.
#[test]
fn rerun_after_a_failure_completes_the_release() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .package(member("rs-a", &[]))
        .package(member("rs-b", &["rs-a"]))
        .package(member("rs-c", &["rs-b"]))
        .package(member("rs-free", &[]));
    let root = fx.workspace("resume", &ws);

    let limited = fx
        .server
        .token("alice", &["--crate", "rs-a", "--crate", "rs-free"]);
    let out = fx
        .cargo
        .program(
            crate::BIN,
            &root,
            &["convoy", "publish", "--registry", REGISTRY],
        )
        .env("CARGO_REGISTRIES_CONVOY_TOKEN", &limited)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("rs-b"), "{stderr}");
    assert!(index_lines(&fx.server, "rs-a").is_some());
    assert!(
        index_lines(&fx.server, "rs-free").is_some(),
        "independent crates still go"
    );
    assert!(index_lines(&fx.server, "rs-b").is_none());
    assert!(
        index_lines(&fx.server, "rs-c").is_none(),
        "dependents of a failure wait"
    );

    let doc = fx.publish(&root, &[]);
    let outcomes: Vec<(String, String)> = doc["registries"][0]["crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        outcomes.contains(&("rs-a".into(), "skipped".into())),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("rs-b".into(), "published".into())),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&("rs-c".into(), "published".into())),
        "{outcomes:?}"
    );
    let previous = &doc["previous_run"];
    assert!(
        previous["failures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f.as_str().unwrap().contains("rs-b")),
        "the rerun explains the previous failure: {previous}"
    );
}

/// A registry that answers 429 is waited out, not given up on.
#[test]
fn rate_limited_registry_is_paced_by_retry_after() {
    let fx = Fixture::new(&["--publish-burst", "2", "--publish-refill-secs", "1"]);
    let mut ws = WorkspaceBuilder::new();
    for i in 0..5 {
        ws = ws.package(member(&format!("rl-{i}"), &[]));
    }
    let doc = fx.publish(&fx.workspace("rate", &ws), &[]);
    let crates = doc["registries"][0]["crates"].as_array().unwrap();
    assert!(crates.iter().all(|c| c["outcome"] == "published"), "{doc}");
}

/// The packaged files are checked in the `.crate`s cargo made: a key file
/// that would ship stops the release after packaging and before anything
/// is verified or uploaded. When a manifest check already fails, the
/// report still names the file, from `cargo package --list`.
#[test]
fn packaged_secrets_stop_the_release_before_verification() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .package(Pkg::new("ps-keys").file("certs/server.pem", "-----BEGIN-----"))
        .package(Pkg::new("ps-clean"));
    let root = fx.workspace("packaged-secret", &ws);
    let out = fx.convoy(&root, &["publish", "--registry", REGISTRY]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("certs/server.pem"), "{stderr}");
    assert!(stderr.contains("1 preflight check(s) failed"), "{stderr}");
    assert!(!stderr.contains("Verifying"), "{stderr}");
    let packaged = |name: &str| {
        fx.cargo
            .target_dir()
            .join("package")
            .join(format!("{name}-0.1.0.crate"))
            .exists()
    };
    assert!(
        packaged("ps-keys"),
        "the files were read from cargo's `.crate`"
    );
    assert!(
        index_lines(&fx.server, "ps-clean").is_none(),
        "nothing is uploaded"
    );

    let ws = WorkspaceBuilder::new().package(
        Pkg::new("ps-bare")
            .bare()
            .file("certs/server.pem", "-----BEGIN-----"),
    );
    let root = fx.workspace("packaged-secret-bare", &ws);
    let out = fx.convoy(&root, &["publish", "--registry", REGISTRY]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("missing-license"), "{stderr}");
    assert!(
        stderr.contains("certs/server.pem"),
        "one report holds both: {stderr}"
    );
    assert!(
        !packaged("ps-bare"),
        "a failed manifest check packages nothing"
    );
    assert!(index_lines(&fx.server, "ps-bare").is_none());
}
