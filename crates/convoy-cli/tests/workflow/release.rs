//! The acceptance steps, in order, on one workspace:
//!
//! - inheritance through `[workspace.package]` and `[workspace.dependencies]`;
//! - `wf-tools`, a `publish = false` member with an `=` pin;
//! - the chain `wf-base` ← `wf-middle` (renamed dependency) ← `wf-top`
//!   (which also takes `wf-base` from the workspace, as a target-specific
//!   and a build dependency);
//! - `wf-solo`, which nothing touches: it is never bumped, and every later
//!   `publish` of the whole workspace finds it already on the registry;
//! - conventional commits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use convoy_test_support::{REGISTRY, Server};
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};

use crate::{BIN, Fixture, commit, fixture, git, index_lines, tags};

const ROOT_EXTRA: &str = r#"
[workspace.package]
version = "0.3.0"
license = "MIT"
repository = "https://example.invalid/wf"

[workspace.dependencies]
# The base crate, shared by the top crate and the tools.
wf-base = { path = "crates/wf-base", version = "0.3.0" }
"#;

fn workspace() -> WorkspaceBuilder {
    let inherited = |pkg: Pkg, what: &str| {
        pkg.bare()
            .field("description", &format!("\"The {what}\""))
            .field("license.workspace", "true")
            .field("repository.workspace", "true")
    };
    WorkspaceBuilder::new()
        .workspace_toml(ROOT_EXTRA)
        .package(
            inherited(Pkg::new("wf-base").version_inherited(), "base")
                .file("src/lib.rs", "pub fn value() -> u32 {\n    1\n}\n"),
        )
        .package(
            inherited(Pkg::new("wf-middle").version("0.3.0"), "middle")
                .dep(
                    "base",
                    r#"{ package = "wf-base", path = "../wf-base", version = "0.3.0" }"#,
                )
                .file(
                    "src/lib.rs",
                    "pub fn value() -> u32 {\n    base::value() + 1\n}\n",
                ),
        )
        .package(
            inherited(Pkg::new("wf-top").version("1.2.0"), "top")
                .local("wf-middle", "0.3.0")
                .entry(
                    "target.'cfg(all())'.dependencies",
                    "wf-base",
                    "{ workspace = true }",
                )
                .build_dep("wf-base", "{ workspace = true }")
                .file(
                    "build.rs",
                    "fn main() {\n    assert_eq!(wf_base::value(), 1);\n}\n",
                )
                .file(
                    "src/lib.rs",
                    "pub fn value() -> u32 {\n    wf_middle::value() + wf_base::value()\n}\n",
                ),
        )
        .package(
            inherited(Pkg::new("wf-solo").version("0.1.0"), "solo")
                .file("src/lib.rs", "pub fn alone() {}\n"),
        )
        .package(
            inherited(Pkg::new("wf-tools").version_inherited(), "tools")
                .field("publish", "false")
                .dep("wf-top", r#"{ path = "../wf-top" }"#)
                .dep(
                    "wf-middle",
                    r#"{ path = "../wf-middle", version = "=0.3.0" }"#,
                )
                .dep("wf-base", "{ workspace = true }"),
        )
}

/// The workspace in a fresh git repository with a bare `origin`, its lock
/// file committed.
fn repository(fx: &Fixture, name: &str) -> PathBuf {
    let root = fx.workspace(name, &workspace());
    git(&root, &["init", "-q", "-b", "main"]);
    let origin = fx.cargo.root().join(format!("{name}-origin.git"));
    git(
        fx.cargo.root(),
        &["init", "-q", "--bare", origin.to_str().unwrap()],
    );
    git(
        &root,
        &["remote", "add", "origin", origin.to_str().unwrap()],
    );
    fx.cargo.ok(&root, &["generate-lockfile", "--offline"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "feat: the first release"]);
    root
}

fn read(root: &Path, path: &str) -> String {
    std::fs::read_to_string(root.join(path)).unwrap()
}

fn toml(root: &Path, path: &str) -> toml::Table {
    toml::from_str(&read(root, path)).unwrap()
}

fn row<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in {doc:#}"))
}

/// Every file under `root` but `.git`, with its content.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.file_name().is_some_and(|n| n == ".git") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// A loopback index URL with nothing listening: a registry that is down.
fn down_index() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("sparse+http://127.0.0.1:{port}/index/")
}

#[test]
fn release_cycle_tags_changes_bumps_and_recovers() {
    let mut fx = fixture();
    fx.cargo.env("CARGO_REGISTRIES_DOWN_INDEX", &down_index());
    fx.cargo.env("CARGO_REGISTRIES_DOWN_TOKEN", "unused-token");
    let refusing = Server::start(BIN, &[]);
    let token = refusing.token("alice", &["--crate", "other-*"]);
    fx.cargo
        .env("CARGO_REGISTRIES_REFUSING_INDEX", &refusing.index_url());
    fx.cargo.env("CARGO_REGISTRIES_REFUSING_TOKEN", &token);
    let root = repository(&fx, "wf");

    // 1. The first `publish --tag` tags every published crate, not the
    //    `publish = false` member.
    let doc = fx.publish(&root, &["--verify", "none", "--tag"]);
    assert!(
        doc["registries"][0]["crates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["name"] != "wf-tools")
    );
    assert_eq!(
        tags(&root),
        [
            "wf-base-v0.3.0",
            "wf-middle-v0.3.0",
            "wf-solo-v0.1.0",
            "wf-top-v1.2.0"
        ]
    );
    let head = git(&root, &["rev-parse", "HEAD"]);
    let tagged = git(&root, &["rev-parse", "wf-top-v1.2.0^{commit}"]);
    assert_eq!(tagged, head);
    assert_eq!(
        git(&root, &["cat-file", "-t", "wf-top-v1.2.0"]).trim(),
        "tag",
        "annotated"
    );
    // Right after publishing, nothing differs (the commit id and the lock
    // file Convoy added do not count).
    let changed: serde_json::Value = serde_json::from_str(&fx.convoy_ok(
        &root,
        &["changed", "--registry", REGISTRY, "--format", "json"],
    ))
    .unwrap();
    for name in ["wf-base", "wf-middle", "wf-solo", "wf-top"] {
        assert_eq!(row(&changed, name)["changed"], false, "{changed:#}");
    }

    // 2. A `feat` in the base and a `fix` in the middle: `changed` lists
    //    both, not the top crate, which shows as their dependent.
    commit(
        &root,
        "crates/wf-base/src/lib.rs",
        "pub fn value() -> u32 {\n    1\n}\n\npub fn double() -> u32 {\n    2 * value()\n}\n",
        "feat(base): add `double`",
    );
    commit(
        &root,
        "crates/wf-middle/src/lib.rs",
        "pub fn value() -> u32 {\n    base::value() + 1 // one more\n}\n",
        "fix: count the middle once",
    );
    commit(
        &root,
        "README.md",
        "# wf\n",
        "docs: a readme outside every crate",
    );
    let changed: serde_json::Value = serde_json::from_str(&fx.convoy_ok(
        &root,
        &["changed", "--registry", REGISTRY, "--format", "json"],
    ))
    .unwrap();
    let names: Vec<&str> = changed["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["wf-base", "wf-middle", "wf-solo", "wf-top"],
        "{changed:#}"
    );
    assert_eq!(row(&changed, "wf-solo")["changed"], false, "{changed:#}");
    for name in ["wf-base", "wf-middle"] {
        let p = row(&changed, name);
        assert_eq!(p["changed"], true, "{changed:#}");
        assert_eq!(p["reason"], "content", "{changed:#}");
        assert_eq!(p["published_version"], p["version"], "{changed:#}");
        assert_eq!(p["files"], serde_json::json!(["src/lib.rs"]), "{changed:#}");
    }
    let top = row(&changed, "wf-top");
    assert_eq!(top["changed"], false, "{changed:#}");
    assert!(top["reason"].is_null());
    assert_eq!(
        row(&changed, "wf-middle")["dependents"],
        serde_json::json!(["wf-top"])
    );
    assert_eq!(
        row(&changed, "wf-base")["dependents"],
        serde_json::json!(["wf-middle", "wf-top"])
    );

    // `plan` agrees: untouched crates are the registry's files (`same`),
    // edited ones conflict with their published version.
    let out = fx.convoy(&root, &["plan", "--registry", REGISTRY, "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!out.status.success(), "edited crates need a bump: {plan:#}");
    for (name, content) in [
        ("wf-base", "different"),
        ("wf-middle", "different"),
        ("wf-solo", "same"),
        ("wf-top", "same"),
    ] {
        assert_eq!(row(&plan, name)["content"], content, "{name}: {plan:#}");
    }

    // 3. `version minor -p wf-base`.
    let lock_before = read(&root, "Cargo.lock");
    let report: serde_json::Value = serde_json::from_str(&fx.convoy_ok(
        &root,
        &["version", "minor", "-p", "wf-base", "--format", "json"],
    ))
    .unwrap();
    let versions: BTreeMap<&str, &str> = report["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        versions,
        BTreeMap::from([
            ("wf-base", "0.4.0"),
            ("wf-middle", "0.3.1"),
            ("wf-tools", "0.4.0"),
            ("wf-top", "1.2.1"),
        ]),
        "{report:#}"
    );
    let root_toml = read(&root, "Cargo.toml");
    assert!(
        root_toml.contains("# The base crate, shared by the top crate and the tools."),
        "comments are kept:\n{root_toml}"
    );
    let manifest = toml(&root, "Cargo.toml");
    assert_eq!(
        manifest["workspace"]["package"]["version"].as_str(),
        Some("0.4.0")
    );
    assert_eq!(
        manifest["workspace"]["dependencies"]["wf-base"]["version"].as_str(),
        Some("0.4.0")
    );
    let middle = toml(&root, "crates/wf-middle/Cargo.toml");
    assert_eq!(middle["package"]["version"].as_str(), Some("0.3.1"));
    assert_eq!(
        middle["dependencies"]["base"]["version"].as_str(),
        Some("0.4.0")
    );
    let top = toml(&root, "crates/wf-top/Cargo.toml");
    assert_eq!(top["package"]["version"].as_str(), Some("1.2.1"));
    assert_eq!(
        top["dependencies"]["wf-middle"]["version"].as_str(),
        Some("0.3.1")
    );
    let tools = toml(&root, "crates/wf-tools/Cargo.toml");
    assert_eq!(
        tools["dependencies"]["wf-middle"]["version"].as_str(),
        Some("=0.3.1"),
        "a pin stays a pin"
    );
    let base = toml(&root, "crates/wf-base/Cargo.toml");
    assert_eq!(
        base["package"]["version"]["workspace"].as_bool(),
        Some(true)
    );
    let lock = read(&root, "Cargo.lock");
    assert_ne!(lock, lock_before);
    assert!(
        lock.contains("name = \"wf-base\"\nversion = \"0.4.0\""),
        "{lock}"
    );
    assert!(
        lock.contains("name = \"wf-top\"\nversion = \"1.2.1\""),
        "{lock}"
    );
    // The workspace builds, and building needs no further lock change.
    fx.cargo.ok(&root, &["build", "--offline", "--workspace"]);
    assert_eq!(read(&root, "Cargo.lock"), lock);
    let changelog = read(&root, "crates/wf-base/CHANGELOG.md");
    assert!(changelog.contains("## [Unreleased]"), "{changelog}");
    assert!(changelog.contains("## [0.4.0] - "), "{changelog}");
    assert!(
        changelog.contains("### Features\n\n- **base:** add `double` ("),
        "{changelog}"
    );
    assert!(!changelog.contains("count the middle"), "{changelog}");
    assert!(!changelog.contains("readme"), "{changelog}");
    let middle_log = read(&root, "crates/wf-middle/CHANGELOG.md");
    assert!(middle_log.contains("## [0.3.1] - "), "{middle_log}");
    assert!(
        middle_log.contains("### Fixes\n\n- count the middle once ("),
        "{middle_log}"
    );
    assert!(
        middle_log.contains("`wf-base` requirement `0.4.0`"),
        "{middle_log}"
    );
    assert!(
        !root.join("crates/wf-tools/CHANGELOG.md").exists(),
        "not published"
    );
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "chore: release"]);
    // The new versions are not on the registry yet: `unpublished`, shown
    // against the latest version the registry has.
    let changed: serde_json::Value = serde_json::from_str(&fx.convoy_ok(
        &root,
        &["changed", "--registry", REGISTRY, "--format", "json"],
    ))
    .unwrap();
    let base = row(&changed, "wf-base");
    assert_eq!(
        (
            &base["version"],
            &base["published_version"],
            &base["reason"]
        ),
        (&"0.4.0".into(), &"0.3.0".into(), &"unpublished".into()),
        "{changed:#}"
    );
    assert_eq!(row(&changed, "wf-solo")["changed"], false, "{changed:#}");

    // 4. A live registry plus one that is down: the run fails and tags none
    //    of the new versions.
    let out = fx.convoy(
        &root,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "--registry",
            "down",
            "--verify",
            "none",
            "--tag",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(
        tags(&root),
        [
            "wf-base-v0.3.0",
            "wf-middle-v0.3.0",
            "wf-solo-v0.1.0",
            "wf-top-v1.2.0"
        ],
        "{stderr}"
    );

    // A registry that is up but refuses these crates (its token may publish
    // others only): each crate reaches the live registry and fails on the
    // other, so none is confirmed everywhere and none is tagged.
    let out = fx.convoy(
        &root,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "--registry",
            "refusing",
            "--verify",
            "none",
            "--tag",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Published wf-top v1.2.1 at `convoy`"),
        "{stderr}"
    );
    assert!(stderr.contains("Failed wf-base v0.4.0"), "{stderr}");
    assert_eq!(
        tags(&root),
        [
            "wf-base-v0.3.0",
            "wf-middle-v0.3.0",
            "wf-solo-v0.1.0",
            "wf-top-v1.2.0"
        ],
        "{stderr}"
    );

    // 5. The rerun against the live registry tags them (skipped there as
    //    identical), and pushes them.
    let doc = fx.publish(&root, &["--verify", "none", "--tag", "--push"]);
    for c in doc["registries"][0]["crates"].as_array().unwrap() {
        assert!(
            c["outcome"] == "published" || c["outcome"] == "skipped",
            "{doc:#}"
        );
    }
    let expected = [
        "wf-base-v0.3.0",
        "wf-base-v0.4.0",
        "wf-middle-v0.3.0",
        "wf-middle-v0.3.1",
        "wf-solo-v0.1.0",
        "wf-top-v1.2.0",
        "wf-top-v1.2.1",
    ];
    assert_eq!(tags(&root), expected);
    let remote = git(&root, &["ls-remote", "--tags", "origin"]);
    for t in ["wf-base-v0.4.0", "wf-middle-v0.3.1", "wf-top-v1.2.1"] {
        assert!(remote.contains(&format!("refs/tags/{t}\n")), "{remote}");
    }
    // A third run creates nothing new and fails on nothing.
    let again = fx.convoy(
        &root,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "--verify",
            "none",
            "--tag",
        ],
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("wf-top-v1.2.1 (already)"), "{stderr}");
    assert_eq!(tags(&root), expected);

    // 6. `--dry-run` changes nothing on disk.
    let before = snapshot(&root);
    let out = fx.convoy_ok(
        &root,
        &[
            "version",
            "major",
            "-p",
            "wf-base",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        row(&report, "wf-base")["to"],
        "0.5.0",
        "breaking on 0.x is minor"
    );
    assert!(
        !report["files"].as_array().unwrap().is_empty(),
        "{report:#}"
    );
    assert_eq!(snapshot(&root), before);
    assert_eq!(git(&root, &["status", "--porcelain"]), "");

    // `auto`: levels from the conventional commits since each crate's tag.
    commit(
        &root,
        "crates/wf-base/src/lib.rs",
        "pub fn value() -> u32 {\n    1\n}\n\npub fn twice() -> u32 {\n    2 * value()\n}\n",
        "feat(base)!: rename `double` to `twice`",
    );
    commit(
        &root,
        "crates/wf-middle/src/lib.rs",
        "pub fn value() -> u32 {\n    base::value() + 1\n}\n",
        "fix: drop a stray comment",
    );
    let out = fx.convoy(
        &root,
        &[
            "version",
            "auto",
            "--registry",
            REGISTRY,
            "--format",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cargo-semver-checks is not installed"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["semver_checks"]["status"], "not-installed");
    let base = row(&report, "wf-base");
    assert_eq!(
        (&base["level"], &base["to"]),
        (&"major".into(), &"0.5.0".into()),
        "{report:#}"
    );
    let middle = row(&report, "wf-middle");
    assert_eq!(middle["why"], "selected", "{report:#}");
    assert_eq!(
        (&middle["level"], &middle["to"]),
        (&"patch".into(), &"0.3.2".into()),
        "{report:#}"
    );
    assert_eq!(row(&report, "wf-top")["to"], "1.2.2", "{report:#}");
    let changelog = read(&root, "crates/wf-base/CHANGELOG.md");
    let newest = changelog.find("## [0.5.0]").expect("new section");
    assert!(
        newest < changelog.find("## [0.4.0]").unwrap(),
        "{changelog}"
    );
    assert!(
        changelog.contains("### Breaking\n\n- **base:** rename `double` to `twice` ("),
        "{changelog}"
    );
    assert_eq!(
        changelog.matches("add `double`").count(),
        1,
        "only commits since the last tag:\n{changelog}"
    );
}

/// `--tag` refuses before anything is uploaded when it could not tag
/// afterwards.
#[test]
fn tag_needs_a_repository_and_a_version_in_the_format() {
    let fx = fixture();
    let root = fx.workspace("untracked", &workspace());
    let out = fx.convoy(
        &root,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "--verify",
            "none",
            "--tag",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("is not in a git repository"), "{stderr}");
    assert!(
        index_lines(&fx.server, "wf-base").is_none(),
        "nothing was uploaded"
    );

    git(&root, &["init", "-q", "-b", "main"]);
    let out = fx.convoy(
        &root,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "--tag",
            "--tag-format",
            "release-{name}",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("has no `{version}`"), "{stderr}");
    assert!(
        index_lines(&fx.server, "wf-base").is_none(),
        "nothing was uploaded"
    );
}
