//! Integration tests of `convoy-workspace` on workspaces generated in temp
//! directories. Ordering tests go in `order`, selection tests in `select`,
//! what the model records in `model`.
#![allow(clippy::unwrap_used)]

use convoy_workspace::testing::{Pkg, WorkspaceBuilder, assert_valid_order};
use convoy_workspace::{PublishOrder, Selection, Workspace, load, select};

/// Writes the workspace into a fresh temp dir and loads it.
fn generate(builder: WorkspaceBuilder) -> (tempfile::TempDir, Workspace) {
    let dir = tempfile::tempdir().unwrap();
    let manifest = builder.write(dir.path()).unwrap();
    let ws = load(Some(&manifest)).unwrap();
    (dir, ws)
}

/// Selects everything, orders it, checks the order and returns
/// `(name, wave)` pairs in publish order.
fn plan_all(ws: &Workspace) -> Vec<(String, usize)> {
    let selected = select(ws, &Selection::default()).unwrap();
    let order = PublishOrder::new(&selected).unwrap();
    assert_valid_order(&selected, &order);
    order
        .packages
        .iter()
        .map(|p| (p.name.clone(), p.wave))
        .collect()
}

fn pairs(v: &[(&str, usize)]) -> Vec<(String, usize)> {
    v.iter().map(|(n, w)| ((*n).to_owned(), *w)).collect()
}

mod order {
    use super::*;

    #[test]
    fn chain() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("a"))
                .package(Pkg::new("b").local("a", "0.1.0"))
                .package(Pkg::new("c").local("b", "0.1.0"))
                .package(Pkg::new("d").local("c", "0.1.0")),
        );
        assert_eq!(
            plan_all(&ws),
            pairs(&[("a", 0), ("b", 1), ("c", 2), ("d", 3)])
        );
        let selected = select(&ws, &Selection::default()).unwrap();
        let order = PublishOrder::new(&selected).unwrap();
        assert_eq!(order.critical_path(), ["a", "b", "c", "d"]);
        assert_eq!(order.wave_count(), 4);
    }

    #[test]
    fn diamond() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("base"))
                .package(Pkg::new("left").local("base", "0.1.0"))
                .package(Pkg::new("right").local("base", "0.1.0"))
                .package(
                    Pkg::new("top")
                        .local("left", "0.1.0")
                        .local("right", "0.1.0"),
                ),
        );
        assert_eq!(
            plan_all(&ws),
            pairs(&[("base", 0), ("left", 1), ("right", 1), ("top", 2)])
        );
    }

    #[test]
    fn wide_fan_out() {
        let mut b = WorkspaceBuilder::new().package(Pkg::new("core"));
        for i in 0..40 {
            b = b.package(Pkg::new(&format!("leaf{i:02}")).local("core", "0.1.0"));
        }
        b = b.package(Pkg::new("lonely"));
        let (_d, ws) = generate(b);
        let plan = plan_all(&ws);
        assert_eq!(plan.len(), 42);
        assert_eq!(plan[0], ("core".to_owned(), 0));
        assert_eq!(plan[1], ("lonely".to_owned(), 0));
        assert!(plan[2..].iter().all(|(_, w)| *w == 1));
    }

    #[test]
    fn dev_dependency_cycle_does_not_order() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("a").dev_dep("b", r#"{ path = "../b", version = "0.1.0" }"#))
                .package(Pkg::new("b").local("a", "0.1.0")),
        );
        assert_eq!(plan_all(&ws), pairs(&[("a", 0), ("b", 1)]));
    }

    /// serde 1.0.2xx: `serde` depends on `serde_core` and (optionally) on
    /// `serde_derive`; `serde_derive` dev-depends on `serde`; `serde_core`
    /// dev-depends on `serde` and `serde_derive`. Cargo 1.95 cannot publish
    /// this shape (rust-lang/cargo#15412).
    #[test]
    fn serde_shape() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(
                    Pkg::new("serde")
                        .version("1.0.228")
                        .dep(
                            "serde_core",
                            r#"{ path = "../serde_core", version = "=1.0.228" }"#,
                        )
                        .dep(
                            "serde_derive",
                            r#"{ path = "../serde_derive", version = "1", optional = true }"#,
                        )
                        .entry(
                            "target.'cfg(any())'.dependencies",
                            "serde_derive",
                            r#"{ path = "../serde_derive", version = "=1.0.228" }"#,
                        )
                        .field("features", "{}")
                        .dev_dep(
                            "serde_derive",
                            r#"{ path = "../serde_derive", version = "1" }"#,
                        ),
                )
                .package(
                    Pkg::new("serde_core")
                        .version("1.0.228")
                        .dev_dep("serde", r#"{ path = "../serde", version = "1" }"#)
                        .dev_dep(
                            "serde_derive",
                            r#"{ path = "../serde_derive", version = "1" }"#,
                        ),
                )
                .package(
                    Pkg::new("serde_derive")
                        .version("1.0.228")
                        .dev_dep("serde", r#"{ path = "../serde", version = "1" }"#),
                ),
        );
        assert_eq!(
            plan_all(&ws),
            pairs(&[("serde_core", 0), ("serde_derive", 0), ("serde", 1)])
        );
    }

    #[test]
    fn renamed_optional_target_and_build_dependencies_order() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("base"))
                .package(Pkg::new("gen"))
                .package(Pkg::new("plat"))
                .package(Pkg::new("opt"))
                .package(
                    Pkg::new("top")
                        .dep(
                            "renamed",
                            r#"{ package = "base", path = "../base", version = "0.1" }"#,
                        )
                        .dep(
                            "opt",
                            r#"{ path = "../opt", version = "0.1", optional = true }"#,
                        )
                        .build_dep("gen", r#"{ path = "../gen", version = "0.1" }"#)
                        .entry(
                            "target.'cfg(unix)'.dependencies",
                            "plat",
                            r#"{ path = "../plat", version = "0.1" }"#,
                        ),
                ),
        );
        let plan = plan_all(&ws);
        assert_eq!(plan.last().unwrap(), &("top".to_owned(), 1));
        let top = ws.member("top").unwrap();
        let renamed = top.dependencies.iter().find(|d| d.name == "base").unwrap();
        assert_eq!(renamed.rename.as_deref(), Some("renamed"));
        assert!(
            top.dependencies
                .iter()
                .any(|d| d.name == "opt" && d.optional)
        );
        assert!(
            top.dependencies
                .iter()
                .any(|d| d.name == "plat" && d.target.as_deref() == Some("cfg(unix)"))
        );
        assert!(
            top.dependencies
                .iter()
                .any(|d| d.name == "gen" && d.kind == convoy_workspace::DepKind::Build)
        );
        let selected = select(&ws, &Selection::default()).unwrap();
        let order = PublishOrder::new(&selected).unwrap();
        assert_eq!(
            order.get("top").unwrap().depends_on,
            ["base", "gen", "opt", "plat"]
        );
    }

    #[test]
    fn registry_dependency_on_member_orders_only_when_satisfied() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("tortilla").version("2.0.0"))
                .package(Pkg::new("taco").dep("tortilla", "\"1.3\""))
                .package(Pkg::new("burrito").dep("tortilla", "\"2\"")),
        );
        assert_eq!(
            plan_all(&ws),
            pairs(&[("taco", 0), ("tortilla", 0), ("burrito", 1)])
        );
    }

    #[test]
    fn publish_false_members_are_left_out() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("a"))
                .package(
                    Pkg::new("internal")
                        .field("publish", "false")
                        .local("a", "0.1.0"),
                )
                .package(Pkg::new("b").local("a", "0.1.0")),
        );
        assert_eq!(plan_all(&ws), pairs(&[("a", 0), ("b", 1)]));
    }

    #[test]
    fn workspace_inherited_versions_and_dependencies() {
        let (_d, ws) = generate(WorkspaceBuilder::new()
            .workspace_toml(
                "[workspace.package]\nversion = \"3.1.4\"\n\n[workspace.dependencies]\nbase = { path = \"crates/base\", version = \"3.1.4\" }\nmid = { path = \"crates/mid\", version = \"3\" }\n",
            )
            .package(Pkg::new("base").version_inherited())
            .package(Pkg::new("mid").version_inherited().dep("base", "{ workspace = true }"))
            .package(
                Pkg::new("top")
                    .version_inherited()
                    .dep("mid", "{ workspace = true }")
                    .dev_dep("base", "{ workspace = true }"),
            ));
        assert_eq!(plan_all(&ws), pairs(&[("base", 0), ("mid", 1), ("top", 2)]));
        let top = ws.member("top").unwrap();
        assert_eq!(top.version.to_string(), "3.1.4");
        let mid = top.dependencies.iter().find(|d| d.name == "mid").unwrap();
        assert_eq!(mid.req.to_string(), "^3");
        assert!(mid.path().is_some());
    }

    #[test]
    fn root_package_workspace() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .root_package(Pkg::new("app").local_at("lib", "crates/lib", "0.1.0"))
                .package(Pkg::new("lib")),
        );
        assert_eq!(plan_all(&ws), pairs(&[("lib", 0), ("app", 1)]));
    }

    #[test]
    fn nested_workspace_is_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let outer = WorkspaceBuilder::new()
            .workspace_toml("exclude = [\"inner\"]")
            .members(&["crates/*"])
            .package(Pkg::new("outer_a"))
            .write(dir.path())
            .unwrap();
        let inner = WorkspaceBuilder::new()
            .package(Pkg::new("inner_a"))
            .package(Pkg::new("inner_b").local("inner_a", "0.1.0"))
            .write(&dir.path().join("inner"))
            .unwrap();
        let outer = load(Some(&outer)).unwrap();
        let inner = load(Some(&inner)).unwrap();
        assert_eq!(plan_all(&outer), pairs(&[("outer_a", 0)]));
        assert_eq!(plan_all(&inner), pairs(&[("inner_a", 0), ("inner_b", 1)]));
    }

    #[test]
    fn normal_cycle_is_an_error() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("a").local("b", "0.1.0"))
                .package(Pkg::new("b").local("a", "0.1.0"))
                .package(Pkg::new("c")),
        );
        let selected = select(&ws, &Selection::default()).unwrap();
        let err = PublishOrder::new(&selected).unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle through normal or build dependencies between `a`, `b`"
        );
    }
}

mod select_tests {
    use super::*;
    use convoy_workspace::SelectError;

    fn ws() -> (tempfile::TempDir, Workspace) {
        generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("a"))
                .package(Pkg::new("b").local("a", "0.1.0"))
                .package(Pkg::new("private").field("publish", "false"))
                .package(Pkg::new("only_mine").field("publish", "[\"mine\"]")),
        )
    }

    fn names(ws: &Workspace, sel: Selection) -> Result<Vec<String>, SelectError> {
        select(ws, &sel).map(|v| v.iter().map(|m| m.name.clone()).collect())
    }

    #[test]
    fn default_is_every_publishable_member() {
        let (_d, ws) = ws();
        assert_eq!(
            names(&ws, Selection::default()).unwrap(),
            ["a", "b", "only_mine"]
        );
    }

    #[test]
    fn package_and_exclude() {
        let (_d, ws) = ws();
        let sel = Selection {
            packages: vec!["b".into(), "a".into()],
            exclude: vec!["a".into()],
        };
        assert_eq!(names(&ws, sel).unwrap(), ["b"]);
        let sel = Selection {
            packages: vec![],
            exclude: vec!["a".into()],
        };
        assert_eq!(names(&ws, sel).unwrap(), ["b", "only_mine"]);
    }

    #[test]
    fn naming_an_unpublishable_package_is_an_error() {
        let (_d, ws) = ws();
        let sel = Selection {
            packages: vec!["private".into()],
            exclude: vec![],
        };
        assert_eq!(
            names(&ws, sel).unwrap_err().to_string(),
            "package `private` cannot be published, it has `publish = false`"
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let (_d, ws) = ws();
        let sel = Selection {
            packages: vec!["nope".into()],
            exclude: vec![],
        };
        assert_eq!(
            names(&ws, sel).unwrap_err(),
            SelectError::NotAMember {
                name: "nope".into()
            }
        );
        let sel = Selection {
            packages: vec![],
            exclude: vec!["a".into(), "b".into(), "only_mine".into()],
        };
        assert_eq!(names(&ws, sel).unwrap_err(), SelectError::Empty);
    }

    #[test]
    fn publish_settings_are_recorded() {
        use convoy_workspace::Publish;
        let (_d, ws) = ws();
        assert_eq!(ws.member("private").unwrap().publish, Publish::Never);
        assert_eq!(ws.member("a").unwrap().publish, Publish::Anywhere);
        assert_eq!(
            ws.member("only_mine").unwrap().publish,
            Publish::Only(vec!["mine".into()])
        );
        assert!(ws.member("only_mine").unwrap().publish.allows(Some("mine")));
        assert!(
            !ws.member("only_mine")
                .unwrap()
                .publish
                .allows(Some("crates-io"))
        );
    }
}

mod sublibrary {
    use super::*;
    use convoy_workspace::SublibraryProblem;

    fn helper(name: &str) -> Pkg {
        Pkg::new(name).unversioned().bare()
    }

    #[test]
    fn a_versionless_helper_becomes_its_parents_companion() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(
                    Pkg::new("app")
                        .version("2.1.0")
                        .dep("util", r#"{ path = "../util" }"#)
                        .dep("app-macros", r#"{ path = "../app-macros" }"#),
                )
                .package(helper("util"))
                .package(helper("app-macros"))
                .package(helper("unused")),
        );
        let util = ws.member("app-util").unwrap();
        let c = util.companion.as_ref().unwrap();
        assert_eq!(
            (c.workspace_name.as_str(), c.parent.as_str()),
            ("util", "app")
        );
        assert_eq!(util.version.to_string(), "2.1.0");
        assert_eq!(
            util.description.as_deref(),
            Some("Part of `app`; not a public API")
        );
        assert_eq!(util.license.as_deref(), Some("MIT OR Apache-2.0"));
        assert!(ws.member("app-macros").unwrap().companion.is_some());
        // Nobody published uses it: an ordinary `publish = false` member.
        assert!(ws.member("unused").unwrap().companion.is_none());
        let app = ws.member("app").unwrap();
        let dep = app
            .dependencies
            .iter()
            .find(|d| d.name == "app-util")
            .unwrap();
        assert_eq!(dep.rename.as_deref(), Some("util"));
        assert_eq!(dep.req.to_string(), "=2.1.0");
        // The companions are released with the parent, and first.
        let names: Vec<String> = plan_all(&ws).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["app-macros", "app-util", "app"]);
        let only_app = select(
            &ws,
            &Selection {
                packages: vec!["app".into()],
                exclude: vec![],
            },
        )
        .unwrap();
        assert_eq!(only_app.len(), 3);
    }

    #[test]
    fn several_users_need_one_that_the_others_depend_on() {
        let (_d, ws) = generate(
            WorkspaceBuilder::new()
                .package(Pkg::new("core").dep("shared", r#"{ path = "../shared" }"#))
                .package(
                    Pkg::new("cli")
                        .local("core", "0.1.0")
                        .dep("shared", r#"{ path = "../shared" }"#),
                )
                .package(helper("shared"))
                .package(Pkg::new("left").dep("both", r#"{ path = "../both" }"#))
                .package(Pkg::new("right").dep("both", r#"{ path = "../both" }"#))
                .package(helper("both"))
                .package(
                    helper("named")
                        .entry("package.metadata.convoy", "sublibrary-of", "\"right\"")
                        .entry(
                            "package.metadata.convoy",
                            "publish-as",
                            "\"right-named-impl\"",
                        ),
                )
                .package(Pkg::new("user").dep("named", r#"{ path = "../named" }"#)),
        );
        // `cli` depends on `core`, so `core` owns the helper.
        assert_eq!(
            ws.member("core-shared")
                .unwrap()
                .companion
                .as_ref()
                .unwrap()
                .parent,
            "core"
        );
        // Neither of `left` and `right` depends on the other: ambiguous.
        assert!(ws.member("both").unwrap().companion.is_none());
        assert_eq!(
            ws.sublibrary_problems,
            [SublibraryProblem::Ambiguous {
                name: "both".into(),
                users: vec!["left".into(), "right".into()],
            }]
        );
        // An explicit parent and name win over the graph.
        let named = ws.member("right-named-impl").unwrap();
        assert_eq!(named.companion.as_ref().unwrap().parent, "right");
        assert!(!named.companion.as_ref().unwrap().derived);
    }
}

mod process {
    use convoy_workspace::process::Cmd;

    #[test]
    fn failure_carries_command_status_and_stderr() {
        let err = Cmd::new("sh")
            .args(["-c", "echo oops >&2; exit 3"])
            .output()
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("`sh -c \"echo oops >&2; exit 3\"` failed"),
            "{msg}"
        );
        assert!(msg.contains("exit status: 3"), "{msg}");
        assert!(msg.ends_with("--- stderr\noops"), "{msg}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let err = Cmd::new("/nonexistent/convoy-test").output().unwrap_err();
        assert_eq!(err.to_string(), "could not run `/nonexistent/convoy-test`");
    }
}
