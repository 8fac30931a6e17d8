//! Tests of `convoy-plan`. `checks`: every check has a package that triggers
//! it and a near miss that does not. `registry`: plans against a sparse
//! index fixture on 127.0.0.1. `render`: output formats. `config`: lint
//! overrides.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use convoy_index_client::RegistryTarget;
use convoy_plan::{
    CheckContext, CheckReport, Code, Diagnostic, FileList, Severity, ops, run_checks,
};
use convoy_protocol::crates_io::INDEX as CRATES_IO_INDEX;
use convoy_workspace::testing::{Pkg, WorkspaceBuilder};
use convoy_workspace::{Selection, Workspace, load, select};

fn crates_io() -> RegistryTarget {
    RegistryTarget {
        name: Some("crates-io".into()),
        index: CRATES_IO_INDEX.into(),
        token: None,
        http: Default::default(),
    }
}

fn generate(builder: WorkspaceBuilder, config: Option<&str>) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = builder.write(dir.path()).unwrap();
    if let Some(config) = config {
        std::fs::create_dir_all(dir.path().join(".cargo")).unwrap();
        std::fs::write(dir.path().join(".cargo/config.toml"), config).unwrap();
    }
    (dir, load(Some(&manifest)).unwrap())
}

/// Runs the pure checks; file lists only for packages whose name contains
/// `files` (listing costs a cargo run each).
fn diagnose(ws: &Workspace, target: &RegistryTarget) -> Vec<Diagnostic> {
    let selected = select(ws, &Selection::default()).unwrap();
    let files: BTreeMap<String, FileList> = selected
        .iter()
        .filter(|m| m.name.contains("files"))
        .map(|m| (m.name.clone(), ops::file_list(ws, m)))
        .collect();
    let raw = run_checks(&CheckContext {
        workspace: ws,
        selected: &selected,
        target,
        files: &files,
    });
    CheckReport::new(&ws.convoy_metadata, selected.len(), raw).diagnostics
}

/// Sublibraries: the checks over the workspace's resolution and the
/// registry's answers (`docs/SUBLIBRARIES.md`).
mod sublibraries {
    use super::*;
    use convoy_plan::{CompanionFacts, check_sublibraries};

    fn helper(name: &str) -> Pkg {
        Pkg::new(name).unversioned().bare()
    }

    #[test]
    fn parents_names_and_privacy() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("app").dep("util", r#"{ path = "../util" }"#))
                .package(helper("util"))
                .package(Pkg::new("left").dep("both", r#"{ path = "../both" }"#))
                .package(Pkg::new("right").dep("both", r#"{ path = "../both" }"#))
                .package(helper("both"))
                .package(helper("stray").entry(
                    "package.metadata.convoy",
                    "sublibrary-of",
                    "\"nobody\"",
                )),
            None,
        );
        let selected = select(&ws, &Selection::default()).unwrap();
        let codes = |facts: &CompanionFacts| -> Vec<(Code, String)> {
            check_sublibraries(&ws, &selected, "reg", facts)
                .into_iter()
                .map(|d| (d.code, d.package.unwrap_or_default()))
                .collect()
        };
        // A registry with the extension and a free name: only the
        // workspace's own problems.
        let fine = CompanionFacts {
            extension: Some(true),
            taken: BTreeMap::new(),
        };
        assert_eq!(
            codes(&fine),
            [
                (Code::SublibraryParentAmbiguous, "both".to_owned()),
                (Code::SublibraryParentUnknown, "stray".to_owned()),
            ]
        );
        let diags = check_sublibraries(&ws, &selected, "reg", &fine);
        assert!(
            diags[0].hint.contains("sublibrary-of = \"left\""),
            "{diags:#?}"
        );
        let taken = CompanionFacts {
            extension: Some(false),
            taken: BTreeMap::from([("app-util".to_owned(), vec!["mallory".to_owned()])]),
        };
        let found = codes(&taken);
        assert!(found.contains(&(Code::CompanionNameTaken, "app-util".to_owned())));
        assert!(found.contains(&(Code::CompanionPrivacyConvention, "app-util".to_owned())));
        assert_eq!(
            Code::CompanionPrivacyConvention.default_severity(),
            Severity::Warning
        );
        assert_eq!(Code::CompanionNameTaken.default_severity(), Severity::Error);
        // An unreadable registry claims nothing.
        assert_eq!(codes(&CompanionFacts::default()).len(), 2);
    }
}

mod checks {
    use super::*;

    fn cases() -> Vec<(Code, Pkg, Pkg)> {
        let big_text = vec![b'a'; 11 * 1024 * 1024];
        let mut big_binary = vec![0u8; 1100 * 1024];
        big_binary[1] = 1;
        let many_features = (0..301)
            .map(|i| format!("f{i} = []"))
            .collect::<Vec<_>>()
            .join(", ");
        let few_features = (0..300)
            .map(|i| format!("f{i} = []"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut many_deps = Pkg::new("bad-too-many-dependencies");
        let mut few_deps = Pkg::new("good-too-many-dependencies");
        for i in 0..501 {
            many_deps = many_deps.dep(&format!("d{i}"), "\"1\"");
            if i < 500 {
                few_deps = few_deps.dep(&format!("d{i}"), "\"1\"");
            }
        }
        let p = |code: &str| {
            (
                Pkg::new(&format!("bad-{code}")),
                Pkg::new(&format!("good-{code}")),
            )
        };
        let mut v = Vec::new();
        let (b, g) = p("missing-description");
        v.push((
            Code::MissingDescription,
            b.bare()
                .field("license", "\"MIT\"")
                .field("repository", "\"https://x.invalid\""),
            g,
        ));
        let (b, g) = p("missing-license");
        v.push((
            Code::MissingLicense,
            b.bare()
                .field("description", "\"d\"")
                .field("repository", "\"https://x.invalid\""),
            g.bare()
                .field("description", "\"d\"")
                .field("repository", "\"https://x.invalid\"")
                .field("license-file", "\"LICENSE\"")
                .file("LICENSE", "text"),
        ));
        let (b, g) = p("invalid-license");
        v.push((
            Code::InvalidLicense,
            b.bare()
                .field("description", "\"d\"")
                .field("repository", "\"https://x.invalid\"")
                .field("license", "\"MIT OR Apache 2\""),
            g.bare()
                .field("description", "\"d\"")
                .field("repository", "\"https://x.invalid\"")
                .field("license", "\"MIT/Apache-2.0 AND GPL-2.0+\""),
        ));
        let (b, g) = p("missing-repository");
        v.push((
            Code::MissingRepository,
            b.bare()
                .field("description", "\"d\"")
                .field("license", "\"MIT\""),
            g,
        ));
        let (b, g) = p("readme-not-found");
        v.push((
            Code::ReadmeNotFound,
            b.field("readme", "\"NOPE.md\""),
            g.field("readme", "\"docs/README.md\"")
                .file("docs/README.md", "# hi"),
        ));
        let (b, g) = p("license-file-not-found");
        v.push((
            Code::LicenseFileNotFound,
            b.field("license-file", "\"NOPE\""),
            g.field("license-file", "\"LICENSE\"")
                .file("LICENSE", "text"),
        ));
        let (b, g) = p("too-many-keywords");
        v.push((
            Code::TooManyKeywords,
            b.field("keywords", r#"["a", "b", "c", "d", "e", "f"]"#),
            g.field("keywords", r#"["a", "b", "c", "d", "e"]"#),
        ));
        let (b, g) = p("invalid-keyword");
        v.push((
            Code::InvalidKeyword,
            b.field("keywords", r#"["-dash-first", "abcdefghijklmnopqrstu"]"#),
            g.field("keywords", r#"["c++", "no_std", "abcdefghijklmnopqrst"]"#),
        ));
        let (b, g) = p("too-many-categories");
        v.push((
            Code::TooManyCategories,
            b.field(
                "categories",
                r#"["algorithms", "caching", "config", "email", "games", "gui"]"#,
            ),
            g.field(
                "categories",
                r#"["algorithms", "caching", "config", "email", "games"]"#,
            ),
        ));
        let (b, g) = p("unknown-category");
        v.push((
            Code::UnknownCategory,
            b.field("categories", r#"["web"]"#),
            g.field("categories", r#"["development-tools::testing"]"#),
        ));
        let (_, g) = p("invalid-crate-name");
        v.push((Code::InvalidCrateName, Pkg::new("nul"), g));
        let (b, g) = p("local-version-mismatch");
        v.push((
            Code::LocalVersionMismatch,
            b.dep("tortilla", "\"1.3\""),
            g.dep("tortilla", "\"2\""),
        ));
        let (b, g) = p("path-dependency-without-version");
        v.push((
            Code::PathDependencyWithoutVersion,
            b.dep("tortilla", r#"{ path = "../tortilla" }"#),
            g.dev_dep("tortilla", r#"{ path = "../tortilla" }"#),
        ));
        let (b, g) = p("dependency-on-unpublishable");
        v.push((
            Code::DependencyOnUnpublishable,
            b.dep(
                "private-helper",
                r#"{ path = "../private-helper", version = "0.1" }"#,
            ),
            g.dev_dep("private-helper", r#"{ path = "../private-helper" }"#),
        ));
        let (b, g) = p("git-dependency");
        v.push((
            Code::GitDependency,
            b.dep("g", r#"{ git = "https://example.invalid/g" }"#),
            g.dev_dep("g", r#"{ git = "https://example.invalid/g" }"#),
        ));
        let (b, g) = p("git-dependency-with-version");
        v.push((
            Code::GitDependencyWithVersion,
            b.dep(
                "g",
                r#"{ git = "https://example.invalid/g", version = "1" }"#,
            ),
            g.dep("g", "\"1\""),
        ));
        let (b, g) = p("wildcard-dependency");
        v.push((
            Code::WildcardDependency,
            b.dep("w", "\"*\""),
            g.dep("w", "\"1.*\""),
        ));
        let (b, g) = p("registry-not-allowed");
        v.push((
            Code::RegistryNotAllowed,
            b.field("publish", r#"["other"]"#),
            g.field("publish", r#"["crates-io", "other"]"#),
        ));
        let (b, g) = p("cross-registry-dependency");
        v.push((
            Code::CrossRegistryDependency,
            b.dep("x", r#"{ version = "1", registry = "other" }"#),
            g.dep("x", "\"1\""),
        ));
        let (b, g) = p("files-too-large");
        v.push((
            Code::PackageTooLarge,
            b.file("data.txt", big_text),
            g.file("data.txt", vec![b'a'; 1024 * 1024]),
        ));
        let (b, g) = p("files-secret");
        v.push((
            Code::PackagedSecret,
            b.file(".env", "TOKEN=1").file("certs/server.pem", "x"),
            g.file(".env.example", "TOKEN=").file("src/keys.rs", ""),
        ));
        let (b, g) = p("files-junk");
        v.push((
            Code::PackagedJunk,
            b.file("node_modules/x/index.js", "x"),
            g.file("src/targets.rs", ""),
        ));
        let (b, g) = p("files-large-binary");
        v.push((
            Code::LargeBinaryFile,
            b.file("blob.bin", big_binary),
            g.file("small.bin", vec![0u8; 1024]),
        ));
        v.push((
            Code::TooManyFeatures,
            Pkg::new("bad-too-many-features").entry_raw(&format!(
                "[features]\n{}",
                many_features.replace(", ", "\n")
            )),
            Pkg::new("good-too-many-features")
                .entry_raw(&format!("[features]\n{}", few_features.replace(", ", "\n"))),
        ));
        v.push((Code::TooManyDependencies, many_deps, few_deps));
        v
    }

    #[test]
    fn every_check_triggers_and_has_a_near_miss() {
        let mut builder = WorkspaceBuilder::new()
            .package(Pkg::new("tortilla").version("2.0.0"))
            .package(Pkg::new("private-helper").field("publish", "false"));
        let cases = cases();
        for (_, bad, good) in &cases {
            builder = builder.package(bad.clone()).package(good.clone());
        }
        let (_d, ws) = generate(
            builder,
            Some("[registries.other]\nindex = \"sparse+http://127.0.0.1:1/\"\n"),
        );
        let diags = diagnose(&ws, &crates_io());
        let of = |pkg: &str| {
            diags
                .iter()
                .filter(|d| d.package.as_deref() == Some(pkg))
                .collect::<Vec<_>>()
        };
        let mut seen = std::collections::BTreeSet::new();
        for (code, bad, good) in &cases {
            let bad_name = bad.name();
            let good_name = good.name();
            assert!(
                of(bad_name).iter().any(|d| d.code == *code),
                "{code} not raised for {bad_name}: {:#?}",
                of(bad_name)
            );
            assert!(
                of(good_name).is_empty(),
                "{good_name} should be clean: {:#?}",
                of(good_name)
            );
            seen.insert(*code);
        }
        assert!(of("tortilla").is_empty());
        // Nothing outside the cases fired.
        for d in &diags {
            assert!(
                d.package
                    .as_deref()
                    .is_some_and(|p| p.starts_with("bad-") || p == "nul"),
                "unexpected {d:#?}"
            );
        }
        // Every package-level check code is covered here or in `registry`/`config`.
        for code in Code::ALL {
            let elsewhere = matches!(
                code,
                Code::VersionContentMismatch
                    | Code::ContentUnchecked
                    | Code::RegistryUnreachable
                    | Code::DependencyCycle
                    | Code::FileListUnavailable
                    | Code::UnknownLint
                    | Code::SublibraryParentAmbiguous
                    | Code::SublibraryParentUnknown
                    | Code::CompanionNameTaken
                    | Code::CompanionPrivacyConvention
            );
            assert!(seen.contains(code) || elsewhere, "{code} has no test case");
        }
    }

    /// The release engine checks the files of the `.crate`s cargo made
    /// instead of asking `cargo package --list` again: the same paths, and
    /// the same findings, for every file check's bad and good package.
    #[test]
    fn crate_file_lists_agree_with_cargo_package_list() {
        let mut builder = WorkspaceBuilder::new();
        let cases: Vec<_> = cases()
            .into_iter()
            .filter(|(_, bad, _)| bad.name().starts_with("bad-files"))
            .collect();
        assert_eq!(cases.len(), 4);
        for (_, bad, good) in &cases {
            builder = builder.package(bad.clone()).package(good.clone());
        }
        let (dir, ws) = generate(builder, None);
        let selected = select(&ws, &Selection::default()).unwrap();
        let target = dir.path().join("target");
        let mut cmd = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()));
        cmd.args([
            "package",
            "--no-verify",
            "--allow-dirty",
            "--quiet",
            "--workspace",
        ])
        .arg("--target-dir")
        .arg(&target)
        .current_dir(dir.path());
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut listed = BTreeMap::new();
        let mut packaged = BTreeMap::new();
        for m in &selected {
            let crate_file = target
                .join("package")
                .join(format!("{}-{}.crate", m.name, m.version));
            let from_crate: Vec<convoy_plan::FileEntry> = convoy_package::crate_files(&crate_file)
                .unwrap()
                .into_iter()
                .map(|(path, data)| convoy_plan::FileEntry::new(path, data.len() as u64, &data))
                .collect();
            let from_cargo = ops::file_list(&ws, m).unwrap();
            let paths = |list: &[convoy_plan::FileEntry]| {
                list.iter()
                    .map(|f| f.path.clone())
                    .collect::<std::collections::BTreeSet<_>>()
            };
            assert_eq!(paths(&from_crate), paths(&from_cargo), "{}", m.name);
            // What is on disk is packaged as it is.
            for f in from_cargo
                .iter()
                .filter(|f| f.size > 0 && f.path != "Cargo.toml")
            {
                let packed = from_crate.iter().find(|p| p.path == f.path).unwrap();
                assert_eq!(
                    (packed.size, packed.binary),
                    (f.size, f.binary),
                    "{}",
                    f.path
                );
            }
            listed.insert(m.name.clone(), Ok(from_cargo));
            packaged.insert(m.name.clone(), Ok(from_crate));
        }
        let codes = |files: &BTreeMap<String, FileList>| {
            convoy_plan::check_files(&selected, files)
                .into_iter()
                .map(|d| (d.package, d.code))
                .collect::<Vec<_>>()
        };
        let expected = codes(&listed);
        assert_eq!(
            expected.len(),
            4,
            "one finding per bad package: {expected:?}"
        );
        assert_eq!(codes(&packaged), expected);
        let unreadable = convoy_package::crate_files(&target.join("package/missing-0.0.0.crate"));
        assert!(
            unreadable
                .unwrap_err()
                .to_string()
                .contains("missing-0.0.0.crate")
        );
    }

    #[test]
    fn messages() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("tortilla").version("2.0.0"))
                .package(
                    Pkg::new("taco")
                        .dep("tortilla", "\"1.3\"")
                        .bare()
                        .field("license", "\"Apache 2\""),
                ),
            None,
        );
        let diags = diagnose(&ws, &crates_io());
        let text: Vec<String> = diags
            .iter()
            .map(|d| {
                format!(
                    "{}[{}] {}: {} / {}",
                    d.severity.as_str(),
                    d.code,
                    d.package.as_deref().unwrap_or("-"),
                    d.message,
                    d.hint
                )
            })
            .collect();
        insta::assert_snapshot!(text.join("\n").replace(&ws.root.display().to_string(), "[ROOT]"), @r#"
        error[missing-description] taco: `taco` has no `description` / add `description = "…"` to `[package]` in `[ROOT]/crates/taco/Cargo.toml`
        error[invalid-license] taco: `license = "Apache 2"` is not a valid SPDX expression, unknown term / use SPDX identifiers joined by `OR`/`AND`, see https://spdx.org/licenses/, or use `license-file`
        error[local-version-mismatch] taco: dependency `tortilla` requires `tortilla ^1.3` but the workspace has `tortilla 2.0.0` / require `2.0.0` to build against the local crate, or rename the dependency if the older release is wanted
        warning[missing-repository] taco: `taco` has no `repository` / add `repository = "https://…"` to `[package]` in `[ROOT]/crates/taco/Cargo.toml` so users can find the source
        "#);
    }

    #[test]
    fn file_list_unavailable_and_cross_registry_only_for_crates_io() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("a").dep("x", r#"{ version = "1", registry = "other" }"#)),
            Some("[registries.other]\nindex = \"sparse+http://127.0.0.1:1/\"\n"),
        );
        let selected = select(&ws, &Selection::default()).unwrap();
        let files: BTreeMap<String, FileList> = [("a".to_owned(), Err("boom".to_owned()))].into();
        let other = RegistryTarget {
            name: Some("other".into()),
            index: "sparse+http://127.0.0.1:1/".into(),
            token: None,
            http: Default::default(),
        };
        let raw = run_checks(&CheckContext {
            workspace: &ws,
            selected: &selected,
            target: &other,
            files: &files,
        });
        assert_eq!(
            raw.iter().map(|d| d.code).collect::<Vec<_>>(),
            [Code::FileListUnavailable]
        );
        let raw = run_checks(&CheckContext {
            workspace: &ws,
            selected: &selected,
            target: &crates_io(),
            files: &BTreeMap::new(),
        });
        assert_eq!(
            raw.iter().map(|d| d.code).collect::<Vec<_>>(),
            [Code::CrossRegistryDependency]
        );
    }

    #[test]
    fn check_reports_dependency_cycles_and_exits_with_errors() {
        let (dir, _ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("a").local("b", "0.1.0"))
                .package(Pkg::new("b").local("a", "0.1.0")),
            None,
        );
        let opts = ops::PlanOpts {
            manifest_path: Some(dir.path().join("Cargo.toml")),
            offline: true,
            ..ops::PlanOpts::new(convoy_test_support::runtime())
        };
        let report = ops::check(&opts).unwrap();
        assert!(!report.passed());
        let codes: Vec<Code> = report.diagnostics.iter().map(|d| d.code).collect();
        assert_eq!(codes, [Code::DependencyCycle]);
    }
}

mod config {
    use super::*;

    #[test]
    fn severities_can_be_overridden_or_allowed() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .workspace_toml("[workspace.metadata.convoy.lints]\nmissing-repository = \"error\"\ninvalid-keyword = \"allow\"\nno-such-check = \"error\"\nunknown-category = \"loud\"\n")
                .package(Pkg::new("a").bare().field("description", "\"d\"").field("license", "\"MIT\"").field("keywords", r#"["-x"]"#)),
            None,
        );
        let diags = diagnose(&ws, &crates_io());
        let got: Vec<(Code, &str)> = diags
            .iter()
            .map(|d| (d.code, d.severity.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (Code::UnknownLint, "warning"),
                (Code::UnknownLint, "warning"),
                (Code::MissingRepository, "error")
            ]
        );
    }
}

mod registry {
    use super::*;
    use convoy_index_client::testing::StaticIndex;
    use convoy_plan::{Action, Content};

    fn opts(dir: &Path, fixture: &StaticIndex) -> ops::PlanOpts {
        ops::PlanOpts {
            manifest_path: Some(dir.join("Cargo.toml")),
            registry: convoy_index_client::RegistryRequest {
                index: Some(fixture.index_url()),
                ..Default::default()
            },
            compare_content: true,
            content: None,
            ..ops::PlanOpts::new(convoy_test_support::runtime())
        }
    }

    /// Packages `name` in the generated workspace and returns the `.crate`.
    fn package(dir: &Path, name: &str, version: &str) -> Vec<u8> {
        let target = dir.join("pkg-target");
        let status = std::process::Command::new("cargo")
            .args([
                "package",
                "--no-verify",
                "--allow-dirty",
                "--quiet",
                "-p",
                name,
                "--target-dir",
            ])
            .arg(&target)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(target.join(format!("package/{name}-{version}.crate"))).unwrap()
    }

    fn sha(bytes: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    }

    #[test]
    fn published_versions_are_skipped_and_mismatches_flagged() {
        let (dir, _ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("same"))
                .package(Pkg::new("changed"))
                .package(
                    Pkg::new("fresh")
                        .local("same", "0.1.0")
                        .dev_dep("late", r#"{ path = "../late", version = "0.1.0" }"#),
                )
                .package(Pkg::new("late").local("fresh", "0.1.0")),
            None,
        );
        let fixture = StaticIndex::start().unwrap();
        let same = package(dir.path(), "same", "0.1.0");
        fixture.add_version("same", "0.0.9", "00", None);
        fixture.add_version("same", "0.1.0", &sha(&same), None);
        fixture.add_version("changed", "0.1.0", &"ab".repeat(32), None);
        let plan = ops::plan(&opts(dir.path(), &fixture)).unwrap();
        let row = |n: &str| plan.package(n).unwrap();
        assert!(plan.registry.checked);
        assert_eq!(row("same").action, Action::Skip);
        assert_eq!(row("same").content, Some(Content::Same));
        assert_eq!(row("changed").action, Action::Skip);
        assert_eq!(row("changed").content, Some(Content::Different));
        assert_eq!(row("fresh").action, Action::Publish);
        assert_eq!(row("fresh").strip_dev_dependencies, ["late"]);
        assert_eq!(row("late").action, Action::Publish);
        let codes: Vec<(Code, Option<&str>)> = plan
            .diagnostics
            .iter()
            .map(|d| (d.code, d.package.as_deref()))
            .collect();
        assert_eq!(codes, [(Code::VersionContentMismatch, Some("changed"))]);
        assert_eq!(
            plan.packages
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["changed", "same", "fresh", "late"]
        );

        let report = ops::check(&opts(dir.path(), &fixture)).unwrap();
        assert!(!report.passed());
        assert!(
            report
                .diagnostics
                .iter()
                .any(|d| d.code == Code::VersionContentMismatch)
        );
    }

    #[test]
    fn dev_dependency_on_a_member_is_stripped_whatever_the_registry_holds() {
        let (dir, _ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("a").dev_dep("b", r#"{ path = "../b", version = "0.1.0" }"#))
                .package(Pkg::new("b").local("a", "0.1.0")),
            None,
        );
        let fixture = StaticIndex::start().unwrap();
        fixture.add_version("b", "0.1.0", "00", None);
        let mut o = opts(dir.path(), &fixture);
        o.compare_content = false;
        let plan = ops::plan(&o).unwrap();
        // Stripped even though `b` is published: the packaged bytes must
        // not depend on registry state, or reruns could not resume.
        assert_eq!(plan.package("a").unwrap().strip_dev_dependencies, ["b"]);
        assert_eq!(plan.package("b").unwrap().action, Action::Skip);
        assert_eq!(plan.package("b").unwrap().content, Some(Content::Unchecked));
    }

    #[test]
    fn unreachable_registry_is_not_guessed() {
        let (dir, _ws) = generate(WorkspaceBuilder::new().package(Pkg::new("a")), None);
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let o = ops::PlanOpts {
            manifest_path: Some(dir.path().join("Cargo.toml")),
            registry: convoy_index_client::RegistryRequest {
                index: Some(format!("sparse+http://127.0.0.1:{port}/")),
                ..Default::default()
            },
            ..ops::PlanOpts::new(convoy_test_support::runtime())
        };
        let plan = ops::plan(&o).unwrap();
        assert!(!plan.registry.checked);
        assert_eq!(plan.package("a").unwrap().action, Action::Unknown);
        assert_eq!(plan.diagnostics[0].code, Code::RegistryUnreachable);
    }
}

/// serde's `no-std::no-alloc` is a real slug; and for a registry other than
/// crates.io an unknown category is only a warning, since only crates.io
/// enforces its list.
#[test]
fn categories_are_crates_io_rules() {
    let (_d, ws) = generate(
        WorkspaceBuilder::new()
            .package(Pkg::new("alloc-free").field("categories", r#"["no-std::no-alloc"]"#))
            .package(Pkg::new("odd").field("categories", r#"["our-internal-slug"]"#)),
        None,
    );
    let on_crates_io = diagnose(&ws, &crates_io());
    let unknown: Vec<_> = on_crates_io
        .iter()
        .filter(|d| d.code == Code::UnknownCategory)
        .collect();
    assert_eq!(unknown.len(), 1, "{unknown:?}");
    assert_eq!(unknown[0].package.as_deref(), Some("odd"));
    assert_eq!(unknown[0].severity, Severity::Error);
    let private = RegistryTarget {
        name: Some("private".into()),
        index: "sparse+http://127.0.0.1:1/index/".into(),
        token: None,
        http: Default::default(),
    };
    let elsewhere = diagnose(&ws, &private);
    let unknown: Vec<_> = elsewhere
        .iter()
        .filter(|d| d.code == Code::UnknownCategory)
        .collect();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].severity, Severity::Warning);
}
