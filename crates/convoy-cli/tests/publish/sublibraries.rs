//! Sublibraries (`docs/SUBLIBRARIES.md`): a parent, a plain helper with an
//! external dependency and a proc-macro helper whose derive the parent
//! re-exports, none of the helpers with a `version`. Plain cargo builds the
//! workspace and cannot publish it; `cargo convoy publish` ships the helpers
//! as companions, and the registry keeps them private to the parent.

use std::path::{Path, PathBuf};

use convoy_test_support::{Cargo, REGISTRY, Server, http};

use crate::{Fixture, consume, index_lines};

/// `extdep`, the helper's "external" dependency: an ordinary crate in the
/// test registry, so nothing needs crates.io.
fn publish_external(fx: &Fixture) {
    let dir = fx.cargo.project(
        "extdep",
        &[
            (
                "Cargo.toml",
                &convoy_test_support::manifest("extdep", "1.0.0", ""),
            ),
            ("src/lib.rs", "pub fn factor() -> u32 { 2 }\n"),
        ],
    );
    fx.cargo.ok(
        &dir,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "--no-verify",
            "--allow-dirty",
        ],
    );
}

const DERIVE: &str = r#"use proc_macro::{TokenStream, TokenTree};

/// `impl ::app::Hello` for the struct it is put on.
#[proc_macro_derive(Hello)]
pub fn hello(input: TokenStream) -> TokenStream {
    let mut tokens = input.into_iter();
    let mut name = String::new();
    while let Some(t) = tokens.next() {
        if matches!(&t, TokenTree::Ident(i) if i.to_string() == "struct") {
            if let Some(TokenTree::Ident(n)) = tokens.next() {
                name = n.to_string();
            }
            break;
        }
    }
    format!("impl ::app::Hello for {name} {{ fn hello() -> String {{ \"hello from {name}\".to_string() }} }}")
        .parse()
        .unwrap()
}
"#;

/// The fixture workspace, committed to git so that a dirty tree would show.
fn workspace(cargo: &Cargo, name: &str) -> PathBuf {
    let root = cargo.project(
        name,
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"app\", \"helper\", \"derive\"]\nresolver = \"2\"\n",
            ),
            (
                "app/Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.3.0\"\nedition = \"2021\"\ndescription = \"The app\"\nlicense = \"MIT OR Apache-2.0\"\nrepository = \"https://example.invalid/app\"\n\n[dependencies]\nhelper = { path = \"../helper\" }\napp-derive = { path = \"../derive\" }\n",
            ),
            (
                "app/src/lib.rs",
                "pub use app_derive::Hello;\n\n/// Greets.\npub trait Hello {\n    fn hello() -> String;\n}\n\npub fn answer() -> u32 {\n    helper::double(21)\n}\n",
            ),
            (
                "helper/Cargo.toml",
                "[package]\nname = \"helper\"\nedition = \"2021\"\n\n[dependencies]\nextdep = { version = \"1\", registry = \"convoy\" }\n",
            ),
            (
                "helper/src/lib.rs",
                "pub fn double(x: u32) -> u32 {\n    x * extdep::factor()\n}\n",
            ),
            (
                "derive/Cargo.toml",
                "[package]\nname = \"app-derive\"\nedition = \"2021\"\n\n[lib]\nproc-macro = true\n",
            ),
            ("derive/src/lib.rs", DERIVE),
        ],
    );
    // Plain cargo builds and tests it: only publishing is missing.
    cargo.ok(&root, &["build", "-q"]);
    git(&root, &["init", "-q"]);
    git(&root, &["add", "-A"]);
    git(
        &root,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "init",
        ],
    );
    root
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn search(server: &Server, q: &str) -> Vec<String> {
    let doc: serde_json::Value = http()
        .get(format!("{}/api/v1/crates?q={q}&per_page=50", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    doc["crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

fn yanked(server: &Server, name: &str, version: &str) -> bool {
    let lines = index_lines(server, name).unwrap();
    let line = lines.iter().find(|l| l["vers"] == version).unwrap();
    line["yanked"].as_bool().unwrap()
}

/// A crate of `name` by `token`'s user with `extra` manifest text; returns
/// cargo's stderr, asserting that the registry refused it.
fn refused_publish(fx: &Fixture, token: &str, name: &str, version: &str, extra: &str) -> String {
    let dir = fx.cargo.project(
        name,
        &[
            (
                "Cargo.toml",
                &convoy_test_support::manifest(name, version, extra),
            ),
            ("src/lib.rs", "pub fn f() {}\n"),
        ],
    );
    fx.cargo.fails(
        &dir,
        &[
            "publish",
            "--registry",
            REGISTRY,
            "--no-verify",
            "--allow-dirty",
            "--token",
            token,
        ],
    )
}

#[test]
fn sublibraries_ship_as_private_companions() {
    let fx = Fixture::new(&[]);
    publish_external(&fx);
    let root = workspace(&fx.cargo, "family");

    // The baseline: cargo itself cannot publish this workspace.
    let stderr = fx.cargo.fails(
        &root,
        &[
            "publish",
            "--workspace",
            "--registry",
            REGISTRY,
            "--no-verify",
        ],
    );
    assert!(stderr.contains("does not specify a version"), "{stderr}");
    assert!(index_lines(&fx.server, "app").is_none());

    // The plan lists the companions under their parent.
    let plan: serde_json::Value = serde_json::from_str(
        &fx.convoy_ok(&root, &["plan", "--registry", REGISTRY, "--format", "json"]),
    )
    .unwrap();
    let planned: Vec<(String, Option<String>)> = plan["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["sublibrary_of"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert!(
        planned.contains(&("app-helper".into(), Some("app".into()))),
        "{planned:?}"
    );
    assert!(
        planned.contains(&("app-derive".into(), Some("app".into()))),
        "{planned:?}"
    );
    assert!(planned.contains(&("app".into(), None)), "{planned:?}");
    let text = fx.convoy_ok(&root, &["plan", "--registry", REGISTRY]);
    assert!(
        text.contains("app-helper v0.3.0") && text.contains("companion of app"),
        "{text}"
    );
    let check = fx.convoy(&root, &["check", "--registry", REGISTRY]);
    let check_out = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{check_out}");
    assert!(
        !check_out.contains("companion-privacy-convention"),
        "{check_out}"
    );

    // Convoy publishes all three, in one staged release; the parent pins
    // each companion.
    let doc = fx.publish(&root, &["--atomic"]);
    let release = doc["registries"][0]["release"].as_str().unwrap();
    assert!(release.starts_with("stg_"), "{doc}");
    let recorded: serde_json::Value = http()
        .get(format!(
            "{}/api/v1/convoy/releases/{release}",
            fx.server.url
        ))
        .header("Authorization", &fx.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        recorded["crates"].as_array().unwrap().len(),
        3,
        "{recorded}"
    );
    let crates: Vec<&str> = doc["registries"][0]["crates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(crates.len(), 3, "{crates:?}");
    assert_eq!(
        git(&root, &["status", "--porcelain"]),
        "",
        "workspace unchanged"
    );
    let app = &index_lines(&fx.server, "app").unwrap()[0];
    let deps = app["deps"].as_array().unwrap();
    let helper = deps.iter().find(|d| d["name"] == "helper").unwrap();
    assert_eq!(helper["package"], "app-helper");
    assert_eq!(helper["req"], "=0.3.0");
    let derive = deps.iter().find(|d| d["name"] == "app-derive").unwrap();
    assert_eq!(derive["req"], "=0.3.0");
    let companion = &index_lines(&fx.server, "app-helper").unwrap()[0];
    assert_eq!(companion["vers"], "0.3.0");
    assert!(
        companion["deps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "extdep"),
        "{companion}"
    );

    // A consumer naming only the parent runs the helper and the derive.
    let out = consume(
        &fx.cargo,
        "consumer",
        r#"app = { version = "0.3", registry = "convoy" }"#,
        "use app::Hello;\n\n#[derive(Hello)]\nstruct Thing;\n\nfn main() {\n    println!(\"{} {}\", app::answer(), Thing::hello());\n}\n",
    );
    assert_eq!(out, "42 hello from Thing");

    // Search shows the parent and hides the companions, which the
    // parent's page lists.
    let hits = search(&fx.server, "app");
    assert!(hits.contains(&"app".to_owned()), "{hits:?}");
    assert!(!hits.iter().any(|h| h.starts_with("app-")), "{hits:?}");
    assert!(search(&fx.server, "helper").is_empty());
    let page: serde_json::Value = http()
        .get(format!(
            "{}/api/v1/convoy/crates/app/companions",
            fx.server.url
        ))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        page["companions"],
        serde_json::json!(["app-derive", "app-helper"])
    );

    // An outsider cannot depend on a companion, nor publish one.
    let bob = fx.server.token("bob", &[]);
    let stderr = refused_publish(
        &fx,
        &bob,
        "outsider",
        "0.1.0",
        "\n[dependencies]\napp-helper = { version = \"=0.3.0\", registry = \"convoy\" }\n",
    );
    assert!(stderr.contains("private part of `app`"), "{stderr}");
    let stderr = refused_publish(
        &fx,
        &bob,
        "app-helper",
        "0.4.0",
        "\n[package.metadata.convoy]\nsublibrary-of = \"app\"\n",
    );
    assert!(stderr.contains("not an owner of crate `app`"), "{stderr}");
    let stderr = fx.cargo.fails(
        &root,
        &[
            "owner",
            "--registry",
            REGISTRY,
            "--add",
            "bob",
            "app-helper",
        ],
    );
    assert!(stderr.contains("owned with its parent `app`"), "{stderr}");

    // Yanking the parent yanks its companions of that version, and back.
    fx.cargo
        .ok(&root, &["yank", "--registry", REGISTRY, "app@0.3.0"]);
    assert!(yanked(&fx.server, "app", "0.3.0"));
    assert!(yanked(&fx.server, "app-helper", "0.3.0"));
    assert!(yanked(&fx.server, "app-derive", "0.3.0"));
    fx.cargo.ok(
        &root,
        &["yank", "--registry", REGISTRY, "--undo", "app@0.3.0"],
    );
    assert!(!yanked(&fx.server, "app-helper", "0.3.0"));
    assert!(!yanked(&fx.server, "app-derive", "0.3.0"));

    // A rerun packages the same bytes and skips everything.
    let again = fx.publish(&root, &[]);
    for krate in again["registries"][0]["crates"].as_array().unwrap() {
        assert_eq!(krate["outcome"], "skipped", "{krate}");
    }
    assert_eq!(git(&root, &["status", "--porcelain"]), "");
}

#[test]
fn without_the_extension_companions_are_ordinary_crates() {
    let fx = Fixture::new(&["--no-companions"]);
    publish_external(&fx);
    let root = workspace(&fx.cargo, "family");
    let config: serde_json::Value = http()
        .get(format!("{}/index/config.json", fx.server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert!(config.get("convoy-companions").is_none(), "{config}");

    let check = fx.convoy(&root, &["check", "--registry", REGISTRY]);
    let out = String::from_utf8_lossy(&check.stdout).into_owned()
        + &String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{out}");
    assert!(
        out.contains("warning[companion-privacy-convention]") && out.contains("`app-helper`"),
        "{out}"
    );

    fx.publish(&root, &[]);
    let app = &index_lines(&fx.server, "app").unwrap()[0];
    let helper = app["deps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "helper")
        .unwrap()
        .clone();
    assert_eq!(helper["package"], "app-helper");
    assert_eq!(helper["req"], "=0.3.0");
    // Ordinary crates: found by search, usable by anyone.
    let hits = search(&fx.server, "app");
    assert!(hits.contains(&"app-helper".to_owned()), "{hits:?}");
    // The library keeps its name in the workspace, `helper`.
    let out = consume(
        &fx.cargo,
        "direct",
        r#"app-helper = { version = "=0.3.0", registry = "convoy" }"#,
        "fn main() {\n    println!(\"{}\", helper::double(4));\n}\n",
    );
    assert_eq!(out, "8");
}
