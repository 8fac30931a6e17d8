//! Several registries, dry runs, and the result document.

use convoy_test_support::{REGISTRY, Server};
use convoy_workspace::testing::WorkspaceBuilder;

use crate::{BIN, Fixture, consume, index_lines, member};

#[test]
fn dry_run_goes_all_the_way_but_uploads_nothing() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .package(member("dr-a", &[]))
        .package(member("dr-b", &["dr-a"]));
    let root = fx.workspace("dry", &ws);
    let out = fx.convoy(&root, &["publish", "--registry", REGISTRY, "--dry-run"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("Verifying"), "{stderr}");
    assert!(
        stderr.contains("target registry"),
        "manifest changes are shown: {stderr}"
    );
    assert!(index_lines(&fx.server, "dr-a").is_none());
    assert!(index_lines(&fx.server, "dr-b").is_none());
}

#[test]
fn one_release_to_two_registries() {
    let fx = Fixture::new(&[]);
    let second = Server::start(BIN, &[]);
    let second_token = second.token("alice", &[]);
    let mut cargo =
        convoy_test_support::Cargo::new(&fx.server, Some(&fx.server.token("alice", &[])));
    cargo.env("CARGO_REGISTRIES_SECOND_INDEX", &second.index_url());
    cargo.env("CARGO_REGISTRIES_SECOND_TOKEN", &second_token);
    let ws = WorkspaceBuilder::new()
        .package(member("two-a", &[]))
        .package(member("two-b", &["two-a"]));
    let root = cargo.root().join("two");
    ws.write(&root).unwrap();
    let out = cargo
        .program(
            BIN,
            &root,
            &[
                "convoy",
                "publish",
                "--registry",
                REGISTRY,
                "--registry",
                "second",
                "--format",
                "json",
            ],
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["registries"].as_array().unwrap().len(), 2);
    for server in [&fx.server, &second] {
        let line = &index_lines(server, "two-b").unwrap()[0];
        assert_eq!(line["deps"][0]["name"], "two-a");
        assert!(
            line["deps"][0].get("registry").is_none(),
            "the sibling is in the same registry"
        );
    }
    // Each registry's copy resolves within that registry.
    let mut via_second = convoy_test_support::Cargo::new(&second, Some(&second_token));
    via_second.env("CARGO_TERM_COLOR", "never");
    let printed = consume(
        &via_second,
        "consumer2",
        &format!("two-b = {{ version = \"0.1.0\", registry = \"{REGISTRY}\" }}\n"),
        "fn main() { println!(\"{}\", two_b::value()); }\n",
    );
    assert_eq!(printed, "2");
}

#[test]
fn workspace_metadata_names_the_registries() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .workspace_toml("[workspace.metadata.convoy]\nregistries = [\"convoy\"]\n")
        .package(member("md-a", &[]));
    let root = fx.workspace("metadata", &ws);
    let out = fx.convoy(&root, &["publish", "--verify", "none"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("for `convoy`"), "{stderr}");
    assert!(index_lines(&fx.server, "md-a").is_some());
}

/// `plan` against the Convoy registry after a release: what Convoy published
/// is `skip` with the same content (the plan packages exactly as publish
/// does), and a changed source is flagged as different content.
#[test]
fn plan_after_publish_skips_and_flags_changed_content() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .package(member("pl-a", &[]))
        .package(member("pl-b", &["pl-a"]))
        .package(member("pl-c", &["pl-b"]));
    let root = fx.workspace("plan", &ws);
    fx.convoy_ok(
        &root,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "-p",
            "pl-a",
            "-p",
            "pl-b",
        ],
    );

    let plan: serde_json::Value = serde_json::from_str(
        &fx.convoy_ok(&root, &["plan", "--registry", REGISTRY, "--format", "json"]),
    )
    .unwrap();
    let row = |name: &str| {
        plan["packages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("pl-a")["action"], "skip", "{plan}");
    assert_eq!(row("pl-a")["content"], "same", "{plan}");
    assert_eq!(row("pl-b")["content"], "same", "{plan}");
    assert_eq!(row("pl-c")["action"], "publish", "{plan}");

    std::fs::write(
        root.join("crates/pl-a/src/lib.rs"),
        "pub fn value() -> u32 { 100 }\n",
    )
    .unwrap();
    let out = fx.convoy(&root, &["plan", "--registry", REGISTRY, "--format", "json"]);
    assert!(!out.status.success(), "a content mismatch is an error");
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = plan["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "pl-a")
        .unwrap()
        .clone();
    assert_eq!(a["content"], "different", "{plan}");
}
