//! `version` on generated workspaces with the real `cargo metadata` and
//! `cargo update`, without git or a registry: `-p` with a fixed level needs
//! neither.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use convoy_workflow::{BumpSpec, Level, VersionOptions, Why, WorkflowError, version};
use convoy_workspace::Selection;
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};

fn chain(extra: &str) -> WorkspaceBuilder {
    WorkspaceBuilder::new()
        .workspace_toml(extra)
        .package(Pkg::new("vb-a").version("1.4.2"))
        .package(Pkg::new("vb-b").version("2.0.0").local("vb-a", "1.4.2"))
        .package(
            Pkg::new("vb-c")
                .version("0.1.0")
                .dev_dep("vb-a", r#"{ path = "../vb-a", version = "1.4.2" }"#),
        )
}

fn opts(root: &Path, spec: BumpSpec, pre: Option<&str>, dry_run: bool) -> VersionOptions {
    VersionOptions {
        runtime: convoy_test_support::runtime(),
        manifest_path: Some(root.join("Cargo.toml")),
        selection: Selection {
            packages: vec!["vb-a".into()],
            exclude: Vec::new(),
        },
        registry: Default::default(),
        spec,
        pre: pre.map(str::to_owned),
        dry_run,
    }
}

fn manifest(root: &Path, name: &str) -> toml::Table {
    toml::from_str(
        &std::fs::read_to_string(root.join("crates").join(name).join("Cargo.toml")).unwrap(),
    )
    .unwrap()
}

#[test]
fn dependent_bump_none_moves_requirements_but_not_versions() {
    let dir = tempfile::tempdir().unwrap();
    chain("[workspace.metadata.convoy]\ndependent-bump = \"none\"\n")
        .write(dir.path())
        .unwrap();
    let report = version(&opts(
        dir.path(),
        BumpSpec::Level(Level::Minor),
        None,
        false,
    ))
    .unwrap();
    let names: Vec<&str> = report.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["vb-a"]);
    assert_eq!(report.packages[0].to, "1.5.0");
    let b = manifest(dir.path(), "vb-b");
    assert_eq!(b["package"]["version"].as_str(), Some("2.0.0"));
    assert_eq!(b["dependencies"]["vb-a"]["version"].as_str(), Some("1.5.0"));
    // A dev-dependency moves too (or the path would no longer match), but
    // it is not part of the package, so it never asks for a release.
    let c = manifest(dir.path(), "vb-c");
    assert_eq!(
        c["dev-dependencies"]["vb-a"]["version"].as_str(),
        Some("1.5.0")
    );
    assert_eq!(report.requirements.len(), 2);
}

#[test]
fn pre_releases_reach_dependents_but_dev_dependents_stay() {
    let dir = tempfile::tempdir().unwrap();
    chain("").write(dir.path()).unwrap();
    let report = version(&opts(
        dir.path(),
        BumpSpec::Level(Level::Major),
        Some("rc"),
        true,
    ))
    .unwrap();
    let got: Vec<(&str, &str, Why)> = report
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.to.as_str(), p.why))
        .collect();
    assert_eq!(
        got,
        [
            ("vb-a", "2.0.0-rc.1", Why::Selected),
            ("vb-b", "2.0.1-rc.1", Why::Dependent),
        ]
    );
    assert!(report.dry_run);
    assert_eq!(
        manifest(dir.path(), "vb-a")["package"]["version"].as_str(),
        Some("1.4.2")
    );
}

#[test]
fn refusals_leave_every_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    chain("").write(dir.path()).unwrap();
    let before = std::fs::read_to_string(dir.path().join("crates/vb-b/Cargo.toml")).unwrap();
    let older = BumpSpec::Exact(semver::Version::new(1, 4, 2));
    let err = version(&opts(dir.path(), older, None, false)).unwrap_err();
    assert!(matches!(err, WorkflowError::Version { .. }), "{err}");
    assert!(err.to_string().contains("not newer"), "{err}");
    let err = version(&opts(
        dir.path(),
        BumpSpec::Level(Level::Patch),
        Some("r.c"),
        false,
    ))
    .unwrap_err();
    assert!(matches!(err, WorkflowError::Config { .. }), "{err}");
    let after = std::fs::read_to_string(dir.path().join("crates/vb-b/Cargo.toml")).unwrap();
    assert_eq!(before, after);
}
