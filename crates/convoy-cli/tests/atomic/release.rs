//! Whole releases: one commit per registry, and yanking a release.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use convoy_test_support::{Cargo, REGISTRY, Server, http};
use convoy_workspace::testing::WorkspaceBuilder;

use crate::{BIN, Fixture, consume, index_lines, member, outcomes};

/// What a reader of the ordinary index saw while the release ran.
#[derive(Debug, Default)]
struct Observed {
    reads: usize,
    absent_before_first_sight: usize,
    violations: Vec<String>,
}

/// Reads the index files of `names` over raw HTTP, in a loop, until `stop`;
/// once any of them has been seen with `version`, every later read of any
/// of them must show it too.
fn poll(base: String, names: Vec<String>, version: &str, stop: Arc<AtomicBool>) -> Observed {
    let client = http();
    let mut observed = Observed::default();
    let mut seen = false;
    let needle = format!("\"vers\":\"{version}\"");
    while !stop.load(Ordering::SeqCst) {
        for name in &names {
            let url = format!("{base}/index/{}", convoy_protocol::index::index_path(name));
            let Ok(resp) = client.get(&url).send() else {
                observed.violations.push(format!("read of `{name}` failed"));
                continue;
            };
            let status = resp.status().as_u16();
            let body = resp.text().unwrap_or_default();
            let present = status == 200 && body.contains(&needle);
            observed.reads += 1;
            if present {
                seen = true;
            } else if seen {
                observed.violations.push(format!(
                    "read {} of `{name}` missed it after another crate of the release was seen (status {status})",
                    observed.reads
                ));
            } else {
                observed.absent_before_first_sight += 1;
            }
        }
    }
    observed
}

/// Acceptance 1: a 6-crate workspace is published atomically while a reader
/// polls the ordinary index; it never sees part of the release; afterwards
/// a consumer builds against it.
#[test]
fn six_crates_appear_at_once_and_a_consumer_builds() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .package(member("at-a", &[]))
        .package(member("at-b", &["at-a"]))
        .package(member("at-c", &["at-a"]))
        .package(member("at-d", &["at-b", "at-c"]))
        .package(member("at-e", &["at-d"]))
        .package(member("at-f", &[]));
    let root = fx.workspace("six", &ws);
    let names: Vec<String> = ["at-a", "at-b", "at-c", "at-d", "at-e", "at-f"]
        .map(str::to_owned)
        .to_vec();

    let stop = Arc::new(AtomicBool::new(false));
    let poller = {
        let (base, names, stop) = (fx.server.url.clone(), names.clone(), Arc::clone(&stop));
        std::thread::spawn(move || poll(base, names, "0.1.0", stop))
    };
    let doc = fx.publish_atomic(&root, &[]);
    // A few more rounds after the commit, to see the complete release.
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let observed = poller.join().unwrap();

    assert!(
        observed.violations.is_empty(),
        "a reader saw part of the release: {:#?}",
        observed.violations
    );
    assert!(
        observed.absent_before_first_sight >= names.len(),
        "the reader ran before the commit: {observed:?}"
    );
    for name in &names {
        let lines = index_lines(&fx.server, name).expect("published");
        assert_eq!(lines.len(), 1, "{name}");
        assert_eq!(lines[0]["vers"], "0.1.0");
    }

    let release = doc["registries"][0]["release"].as_str().unwrap();
    assert!(release.starts_with("stg_"), "{doc}");
    assert!(
        outcomes(&doc, 0).iter().all(|(_, o)| o == "published"),
        "{doc}"
    );
    let (status, recorded) = fx.staging_get(&format!("/releases/{release}"));
    assert_eq!(status, 200, "{recorded}");
    assert_eq!(recorded["committed_by"], "alice");
    assert_eq!(recorded["crates"].as_array().unwrap().len(), 6);
    // The client cleaned up after itself.
    assert!(fx.ledger().is_empty(), "{:?}", fx.ledger());
    assert!(fx.open_stages().is_empty());

    let deps = format!(
        "at-e = {{ version = \"0.1.0\", registry = \"{REGISTRY}\" }}\nat-f = {{ version = \"0.1.0\", registry = \"{REGISTRY}\" }}"
    );
    let printed = consume(
        &fx.cargo,
        "at-consumer",
        &deps,
        "fn main() { println!(\"{}\", at_e::value() + at_f::value()); }\n",
    );
    // e = 1 + d; d = 1 + b + c; b = c = 1 + a; a = 1: e = 6, f = 1.
    assert_eq!(printed, "7");

    // A rerun has nothing to commit: every version is skipped.
    let again = fx.publish_atomic(&root, &["--verify", "none"]);
    assert!(
        outcomes(&again, 0).iter().all(|(_, o)| o == "skipped"),
        "{again}"
    );
    assert!(again["registries"][0].get("release").is_none(), "{again}");
    assert!(fx.open_stages().is_empty());
}

/// Acceptance 6: `cargo convoy yank --release ID` yanks every crate of the
/// release, and `--undo` restores them.
#[test]
fn yank_and_restore_a_whole_release() {
    let fx = Fixture::new(&[]);
    let ws = WorkspaceBuilder::new()
        .package(member("yk-a", &[]))
        .package(member("yk-b", &["yk-a"]))
        .package(member("yk-c", &[]));
    let root = fx.workspace("yank", &ws);
    let doc = fx.publish_atomic(&root, &["--verify", "none"]);
    let release = doc["registries"][0]["release"].as_str().unwrap().to_owned();
    let yanked = |name: &str| {
        index_lines(&fx.server, name).expect("published")[0]["yanked"]
            .as_bool()
            .unwrap()
    };

    let out = fx.convoy(
        &root,
        &["yank", "--release", &release, "--registry", REGISTRY],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for name in ["yk-a", "yk-b", "yk-c"] {
        assert!(
            stderr.contains(&format!("      Yanked {name} v0.1.0")),
            "{stderr}"
        );
        assert!(yanked(name), "{name}");
    }
    let (_, recorded) = fx.staging_get(&format!("/releases/{release}"));
    assert!(
        recorded["crates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["yanked"] == true),
        "{recorded}"
    );

    let out = fx.convoy(
        &root,
        &[
            "yank",
            "--release",
            &release,
            "--undo",
            "--registry",
            REGISTRY,
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    for name in ["yk-a", "yk-b", "yk-c"] {
        assert!(
            stderr.contains(&format!("    Unyanked {name} v0.1.0")),
            "{stderr}"
        );
        assert!(!yanked(name), "{name}");
    }

    // A release that does not exist, and an id that cannot be one.
    let out = fx.convoy(
        &root,
        &["yank", "--release", "stg_nope", "--registry", REGISTRY],
    );
    assert!(!out.status.success());
    let out = fx.convoy(
        &root,
        &["yank", "--release", "../me", "--registry", REGISTRY],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("is not a stage or release id"), "{stderr}");
}

/// Two registries: each gets its own release, committed only after both
/// are staged and verified.
#[test]
fn each_registry_gets_its_own_release() {
    let fx = Fixture::new(&[]);
    let second = Server::start(BIN, &[]);
    let second_token = second.token("alice", &[]);
    let mut cargo = Cargo::new(&fx.server, Some(&fx.token));
    cargo.env("CARGO_REGISTRIES_SECOND_INDEX", &second.index_url());
    cargo.env("CARGO_REGISTRIES_SECOND_TOKEN", &second_token);
    let ws = WorkspaceBuilder::new()
        .package(member("tr-a", &[]))
        .package(member("tr-b", &["tr-a"]));
    let root = cargo.root().join("two");
    ws.write(&root).unwrap();
    let out = cargo
        .program(
            BIN,
            &root,
            &[
                "convoy",
                "publish",
                "--atomic",
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
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = doc["registries"][0]["release"].as_str().unwrap();
    let other = doc["registries"][1]["release"].as_str().unwrap();
    assert_ne!(first, other);
    // Both stages were open before the first commit.
    let committing = stderr.find("Committing").expect("commits are shown");
    assert_eq!(
        stderr[..committing].matches("Staging").count(),
        2,
        "{stderr}"
    );
    for server in [&fx.server, &second] {
        for name in ["tr-a", "tr-b"] {
            assert!(index_lines(server, name).is_some(), "{name}");
        }
    }
}
