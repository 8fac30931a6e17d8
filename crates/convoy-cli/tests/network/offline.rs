//! `--offline`: with the registry stopped, plan, check and a dry run work
//! from what cargo has cached, as `cargo check --offline` does.

use convoy_test_support::{Cargo, REGISTRY, Server};
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};

use crate::{BIN, cargo_ok, cargo_publishes, command, convoy_ok};

#[test]
fn plan_check_and_dry_run_from_a_warm_cache() {
    let mut server = Server::start(BIN, &[]);
    let token = server.token("alice", &[]);
    let cargo = Cargo::new(&server, Some(&token));
    // A dependency from the registry, which the cache must hold.
    cargo_publishes(&cargo, "off-dep", &[]);
    let dep = format!("{{ version = \"0.1.0\", registry = \"{REGISTRY}\" }}");
    let ws = WorkspaceBuilder::new()
        .package(Pkg::new("off-a").dep("off-dep", &dep).file(
            "src/lib.rs",
            "pub fn value() -> u32 { off_dep::one() + 1 }\n",
        ))
        .package(crate::member("off-b", &["off-a"]));
    let root = cargo.root().join("offline");
    ws.write(&root).unwrap();
    // Warm the cache the ordinary way, then stop the registry.
    cargo_ok(&cargo, &root, &["fetch"]);
    server.kill9();

    // The baseline: cargo builds offline.
    cargo_ok(&cargo, &root, &["check", "--offline"]);
    // And without `--offline`, cargo (and Convoy) cannot reach the registry.
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = command(&cargo, &program, &root, &["update"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "the registry is really stopped");

    let out = convoy_ok(
        &cargo,
        &root,
        &[
            "plan",
            "--offline",
            "--registry",
            REGISTRY,
            "--format",
            "json",
        ],
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["registry"]["checked"], false, "{plan:#}");

    convoy_ok(
        &cargo,
        &root,
        &["check", "--offline", "--registry", REGISTRY],
    );

    let out = convoy_ok(
        &cargo,
        &root,
        &[
            "publish",
            "--offline",
            "--dry-run",
            "--registry",
            REGISTRY,
            "--format",
            "json",
        ],
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let crates = doc["registries"][0]["crates"].as_array().unwrap();
    assert_eq!(crates.len(), 2, "{doc:#}");
    for krate in crates {
        assert_eq!(krate["outcome"], "dry-run", "{doc:#}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Verifying"), "{stderr}");

    // Uploading offline is refused, clearly.
    let mut cmd = command(
        &cargo,
        BIN,
        &root,
        &["convoy", "publish", "--offline", "--registry", REGISTRY],
    );
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("`--offline` can only be used with `--dry-run`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
