//! The registry as stock cargo uses it.

use std::path::Path;

use convoy_test_support::{Cargo, REGISTRY, manifest};
use sha2::{Digest, Sha256};

use crate::{index_lines, server};

/// A family of crates exercising every kind of edge: a renamed dependency
/// with features, an optional one behind `dep:`, a build-dependency and a
/// target-specific one.
fn family(cargo: &Cargo) -> std::path::PathBuf {
    let dep = |name: &str, extra: &str| {
        format!("{{ path = \"../{name}\", version = \"0.1.0\", registry = \"{REGISTRY}\"{extra} }}")
    };
    let app_manifest = manifest(
        "app",
        "0.1.0",
        &format!(
            "build = \"build.rs\"\n\n[dependencies]\nb = {}\nextra = {}\n\n[build-dependencies]\ngen = {}\n\n[target.'cfg(unix)'.dependencies]\nunixy = {}\n\n[features]\nmore = [\"dep:extra\"]\n",
            dep("base", ", package = \"base\", features = [\"fancy\"]"),
            dep("extra", ", optional = true"),
            dep("gen", ""),
            dep("unixy", ""),
        ),
    );
    cargo.project(
        "family",
        &[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"base\", \"gen\", \"extra\", \"unixy\", \"app\"]\nresolver = \"2\"\n",
            ),
            ("base/Cargo.toml", &manifest("base", "0.1.0", "\n[features]\nfancy = []\n")),
            (
                "base/src/lib.rs",
                "pub fn base() -> u32 { if cfg!(feature = \"fancy\") { 40 } else { 0 } }\n",
            ),
            ("gen/Cargo.toml", &manifest("gen", "0.1.0", "")),
            ("gen/src/lib.rs", "pub fn generated() -> &'static str { \"generated\" }\n"),
            ("extra/Cargo.toml", &manifest("extra", "0.1.0", "")),
            ("extra/src/lib.rs", "pub fn extra() -> u32 { 2 }\n"),
            ("unixy/Cargo.toml", &manifest("unixy", "0.1.0", "")),
            ("unixy/src/lib.rs", "pub fn unixy() -> &'static str { \"unix\" }\n"),
            ("app/Cargo.toml", &app_manifest),
            (
                "app/build.rs",
                "fn main() {\n    let out = std::env::var(\"OUT_DIR\").unwrap();\n    std::fs::write(format!(\"{out}/gen.txt\"), gen::generated()).unwrap();\n}\n",
            ),
            (
                "app/src/lib.rs",
                "pub const GENERATED: &str = include_str!(concat!(env!(\"OUT_DIR\"), \"/gen.txt\"));\n\
                 pub fn answer() -> u32 {\n    #[cfg(feature = \"more\")]\n    let e = extra::extra();\n    #[cfg(not(feature = \"more\"))]\n    let e = 0;\n    b::base() + e\n}\n\
                 #[cfg(unix)]\npub fn platform() -> &'static str { unixy::unixy() }\n",
            ),
        ],
    )
}

fn consumer(cargo: &Cargo, name: &str, deps: &str, main: &str) -> std::path::PathBuf {
    cargo.project(
        name,
        &[
            (
                "Cargo.toml",
                &format!(
                    "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n[dependencies]\n{deps}\n"
                ),
            ),
            ("src/main.rs", main),
        ],
    )
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Semantic view of an index line: what a resolver reads. Cargo's local
/// registry writes every optional field as `null` and keeps all features in
/// `features`; the sparse index omits them and splits `features2`. Both mean
/// the same to cargo, and that meaning is what must match.
fn normalize(line: &serde_json::Value, own_index: &str) -> serde_json::Value {
    let mut features = serde_json::Map::new();
    for key in ["features", "features2"] {
        if let Some(map) = line.get(key).and_then(|f| f.as_object()) {
            features.extend(map.clone());
        }
    }
    let mut deps: Vec<serde_json::Value> = line["deps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let registry = d.get("registry").and_then(|r| r.as_str());
            let registry = registry.filter(|r| *r != own_index && *r != own_index.trim_start_matches("sparse+"));
            serde_json::json!({
                "name": d["name"],
                "req": d["req"],
                "features": d.get("features").cloned().unwrap_or_else(|| serde_json::json!([])),
                "optional": d.get("optional").and_then(|v| v.as_bool()).unwrap_or(false),
                "default_features": d.get("default_features").and_then(|v| v.as_bool()).unwrap_or(true),
                "target": d.get("target").cloned().unwrap_or(serde_json::Value::Null),
                "kind": d.get("kind").and_then(|k| k.as_str()).unwrap_or("normal"),
                "registry": registry,
                "package": d.get("package").cloned().unwrap_or(serde_json::Value::Null),
            })
        })
        .collect();
    deps.sort_by_key(|d| d.to_string());
    serde_json::json!({
        "name": line["name"], "vers": line["vers"], "cksum": line["cksum"],
        "deps": deps, "features": features,
        "links": line.get("links").cloned().unwrap_or(serde_json::Value::Null),
        "rust_version": line.get("rust_version").cloned().unwrap_or(serde_json::Value::Null),
        "yanked": line.get("yanked").and_then(|y| y.as_bool()).unwrap_or(false),
    })
}

#[test]
fn publish_family_then_build_a_consumer() {
    let server = server(&[]);
    let token = server.token("alice", &[]);
    let cargo = Cargo::new(&server, Some(&token));
    let ws = family(&cargo);
    cargo.ok(&ws, &["publish", "--workspace", "--registry", REGISTRY]);

    // Every index line means to cargo exactly what cargo's own local
    // registry (the overlay it built while packaging) says, and its checksum
    // is the sha256 of the very file cargo uploaded.
    let tmp_registry = cargo.target_dir().join("package/tmp-registry");
    let own_index = server.index_url();
    for name in ["base", "gen", "extra", "unixy", "app"] {
        let ours = index_lines(&server, name).expect("published crate has an index file");
        assert_eq!(ours.len(), 1, "{name}");
        let pubtime = ours[0]["pubtime"].as_str().expect("pubtime");
        assert_eq!(
            pubtime.len(),
            20,
            "pubtime is YYYY-MM-DDTHH:MM:SSZ: {pubtime}"
        );
        let theirs_path = tmp_registry
            .join("index")
            .join(convoy_protocol::index::index_path(name));
        let theirs: serde_json::Value =
            serde_json::from_str(std::fs::read_to_string(&theirs_path).unwrap().trim()).unwrap();
        assert_eq!(
            normalize(&ours[0], &own_index),
            normalize(&theirs, &own_index),
            "{name}"
        );
        let uploaded = std::fs::read(tmp_registry.join(format!("{name}-0.1.0.crate"))).unwrap();
        assert_eq!(
            ours[0]["cksum"],
            hex::encode(Sha256::digest(&uploaded)),
            "{name}"
        );
    }
    let app = &index_lines(&server, "app").unwrap()[0];
    assert_eq!(app["features2"]["more"], serde_json::json!(["dep:extra"]));
    assert_eq!(app["v"], 2);

    let bin = consumer(
        &cargo,
        "consumer",
        &format!(
            "app = {{ version = \"0.1.0\", registry = \"{REGISTRY}\", features = [\"more\"] }}"
        ),
        "fn main() { println!(\"{} {} {}\", app::answer(), app::GENERATED, app::platform()); }\n",
    );
    let out = cargo.ok(&bin, &["run", "-q"]);
    assert_eq!(stdout(&out).trim(), "42 generated unix");
}

fn publish_single(cargo: &Cargo, dir: &Path, name: &str, version: &str) {
    cargo.project(
        dir.file_name().unwrap().to_str().unwrap(),
        &[
            ("Cargo.toml", &manifest(name, version, "")),
            (
                "src/lib.rs",
                &format!("pub const VERSION: &str = \"{version}\";\n"),
            ),
        ],
    );
    cargo.ok(dir, &["publish", "--registry", REGISTRY, "--allow-dirty"]);
}

fn locked_version(cargo: &Cargo, project: &Path, name: &str) -> String {
    let _ = std::fs::remove_file(project.join("Cargo.lock"));
    cargo.ok(project, &["generate-lockfile"]);
    let lock = std::fs::read_to_string(project.join("Cargo.lock")).unwrap();
    let needle = format!("name = \"{name}\"\nversion = \"");
    let start = lock.find(&needle).expect("package in lock file") + needle.len();
    lock[start..].split('"').next().unwrap().to_owned()
}

#[test]
fn yank_owner_search_and_login() {
    let server = server(&[]);
    let alice = server.token("alice", &[]);
    let _bob = server.token("bob", &[]);
    let cargo = Cargo::new(&server, Some(&alice));
    let dir = cargo.root().join("yk");
    publish_single(&cargo, &dir, "yk", "0.1.0");
    publish_single(&cargo, &dir, "yk", "0.1.1");

    let user = consumer(
        &cargo,
        "user",
        &format!("yk = {{ version = \"0.1\", registry = \"{REGISTRY}\" }}"),
        "fn main() {}\n",
    );
    assert_eq!(locked_version(&cargo, &user, "yk"), "0.1.1");
    cargo.ok(&user, &["yank", "yk@0.1.1", "--registry", REGISTRY]);
    assert_eq!(locked_version(&cargo, &user, "yk"), "0.1.0");
    cargo.ok(
        &user,
        &["yank", "yk@0.1.1", "--undo", "--registry", REGISTRY],
    );
    assert_eq!(locked_version(&cargo, &user, "yk"), "0.1.1");

    let add = cargo.ok(
        &user,
        &["owner", "--add", "bob", "yk", "--registry", REGISTRY],
    );
    assert!(String::from_utf8_lossy(&add.stderr).contains("bob"));
    let list = stdout(&cargo.ok(&user, &["owner", "--list", "yk", "--registry", REGISTRY]));
    assert_eq!(list.lines().collect::<Vec<_>>(), ["alice", "bob"]);
    cargo.ok(
        &user,
        &["owner", "--remove", "bob", "yk", "--registry", REGISTRY],
    );
    let list = stdout(&cargo.ok(&user, &["owner", "--list", "yk", "--registry", REGISTRY]));
    assert_eq!(list.lines().collect::<Vec<_>>(), ["alice"]);
    let unknown = cargo.fails(
        &user,
        &["owner", "--add", "nobody", "yk", "--registry", REGISTRY],
    );
    assert!(
        unknown.contains("user `nobody` does not exist"),
        "{unknown}"
    );

    let found = stdout(&cargo.ok(&user, &["search", "yk", "--registry", REGISTRY]));
    assert!(found.contains("yk = \"0.1.1\""), "{found}");
    let none = stdout(&cargo.ok(&user, &["search", "zzz", "--registry", REGISTRY]));
    assert!(!none.contains("yk"), "{none}");

    // `cargo login` stores a created token; publishing then needs nothing else.
    let mut fresh = Cargo::new(&server, None);
    fresh.env_remove("CARGO_REGISTRIES_CONVOY_TOKEN");
    let carol = server.token("carol", &[]);
    let mut login = fresh.command(fresh.root(), &["login", "--registry", REGISTRY]);
    login
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = login.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{carol}\n").as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let credentials =
        std::fs::read_to_string(fresh.root().join("cargo-home/credentials.toml")).unwrap();
    assert!(credentials.contains(&carol));
    publish_single(&fresh, &fresh.root().join("carols"), "carols", "1.0.0");
    assert!(index_lines(&server, "carols").is_some());
}
