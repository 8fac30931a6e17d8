//! Staged releases, from the registry's side: reservations, races, the
//! staging view with real cargo, commits that fail or crash, expiry.

use convoy_tarball::TarballBuilder;
use convoy_test_support::{Cargo, REGISTRY, Server, http, manifest};

use crate::{index_lines, meta, publish_raw, server};

pub(crate) struct Staged {
    pub(crate) id: String,
    pub(crate) token: String,
    pub(crate) index: String,
}

pub(crate) fn create_stage(server: &Server, token: &str, ttl: u64) -> Staged {
    let resp = http()
        .post(format!("{}/api/v1/convoy/stages", server.url))
        .header("Authorization", token)
        .body(format!("{{\"ttl_secs\": {ttl}}}"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 201);
    let stage: serde_json::Value = resp.json().unwrap();
    Staged {
        id: stage["id"].as_str().unwrap().to_owned(),
        token: stage["token"].as_str().unwrap().to_owned(),
        index: stage["index"].as_str().unwrap().to_owned(),
    }
}

pub(crate) fn stage_call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (u16, serde_json::Value) {
    let resp = http()
        .request(method, format!("{}/api/v1/convoy{path}", server.url))
        .header("Authorization", token)
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(serde_json::Value::Null))
}

pub(crate) fn crate_bytes(name: &str, vers: &str, salt: &str) -> Vec<u8> {
    TarballBuilder::minimal(name, vers)
        .file(&format!("{name}-{vers}/salt"), salt.as_bytes())
        .build()
}

pub(crate) fn with_dep(name: &str, vers: &str, dep: &str, req: &str) -> serde_json::Value {
    let mut m = meta(name, vers);
    m["deps"] = serde_json::json!([{"name": dep, "version_req": req, "features": [], "optional": false,
        "default_features": true, "target": null, "kind": "normal"}]);
    m
}

#[test]
fn config_advertises_staging() {
    let server = server(&[]);
    let cfg: serde_json::Value = http()
        .get(format!("{}/index/config.json", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(cfg["convoy-staging"]["v"], 1);
    assert_eq!(
        cfg["convoy-staging"]["api"],
        format!("{}/api/v1/convoy", server.url)
    );
}

/// Staged versions are invisible to ordinary readers, visible through the
/// staging view with the stage token, reserved against everyone, and all
/// published by one commit.
#[test]
fn stage_reserve_view_and_commit() {
    let server = server(&[]);
    let alice = server.token("alice", &[]);
    let bob = server.token("bob", &[]);
    let stage = create_stage(&server, &alice, 600);

    let (status, body) = publish_raw(
        &server,
        Some(&stage.token),
        &meta("st-a", "1.0.0"),
        &crate_bytes("st-a", "1.0.0", ""),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = publish_raw(
        &server,
        Some(&stage.token),
        &with_dep("st-b", "1.0.0", "st-a", "^1"),
        &crate_bytes("st-b", "1.0.0", ""),
    );
    assert_eq!(status, 200, "{body}");

    // Invisible to ordinary readers: index, download, search.
    assert!(index_lines(&server, "st-a").is_none());
    let dl = http()
        .get(format!("{}/api/v1/crates/st-a/1.0.0/download", server.url))
        .send()
        .unwrap();
    assert_eq!(dl.status(), 404);
    let found: serde_json::Value = http()
        .get(format!("{}/api/v1/crates?q=st-", server.url))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(found["meta"]["total"], 0);

    // Reserved: the same version cannot be published or staged by anyone.
    let (status, body) = publish_raw(
        &server,
        Some(&alice),
        &meta("st-a", "1.0.0"),
        &crate_bytes("st-a", "1.0.0", ""),
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("staged release"), "{body}");
    let other = create_stage(&server, &alice, 600);
    let (status, _) = publish_raw(
        &server,
        Some(&other.token),
        &meta("st-a", "1.0.0"),
        &crate_bytes("st-a", "1.0.0", "x"),
    );
    assert_eq!(status, 409);

    // The staging view: needs the stage token, shows staged lines.
    let view = stage.index.trim_start_matches("sparse+");
    let anon = http().get(format!("{view}config.json")).send().unwrap();
    assert_eq!(anon.status(), 401);
    let foreign = http()
        .get(format!("{view}config.json"))
        .header("Authorization", &bob)
        .send()
        .unwrap();
    assert_eq!(foreign.status(), 404, "another user's token sees nothing");
    let cfg: serde_json::Value = http()
        .get(format!("{view}config.json"))
        .header("Authorization", &stage.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(cfg["auth-required"], true);
    let lines = http()
        .get(format!("{view}st/-b/st-b"))
        .header("Authorization", &stage.token)
        .send()
        .unwrap();
    assert_eq!(lines.status(), 200);
    assert!(
        lines.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("no-store")
    );
    // The ordinary index with a stage token gives the same view.
    let same = http()
        .get(format!("{}/index/st/-a/st-a", server.url))
        .header("Authorization", &stage.token)
        .send()
        .unwrap();
    assert_eq!(same.status(), 200);

    // A stage token can do nothing but upload.
    let (status, _) = stage_call(&server, reqwest::Method::POST, "/stages", &stage.token);
    assert_eq!(status, 403);
    let yank = http()
        .delete(format!("{}/api/v1/crates/st-a/1.0.0/yank", server.url))
        .header("Authorization", &stage.token)
        .send()
        .unwrap();
    assert_eq!(yank.status(), 403);

    // Commit: everything at once.
    let (status, release) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/commit", stage.id),
        &stage.token,
    );
    assert_eq!(status, 200, "{release}");
    assert_eq!(release["crates"].as_array().unwrap().len(), 2);
    assert_eq!(release["committed_by"], "alice");
    for name in ["st-a", "st-b"] {
        let lines = index_lines(&server, name).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["pubtime"].as_str().unwrap().len(), 20);
    }
    // The token died with the stage.
    let (status, _) = publish_raw(
        &server,
        Some(&stage.token),
        &meta("st-c", "1.0.0"),
        &crate_bytes("st-c", "1.0.0", ""),
    );
    assert_eq!(status, 401);
    let (status, _) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/commit", stage.id),
        &alice,
    );
    assert_eq!(status, 409, "a committed stage cannot commit again");

    // The release is recorded, and yanks and unyanks as a whole.
    let (status, rec) = stage_call(
        &server,
        reqwest::Method::GET,
        &format!("/releases/{}", stage.id),
        &alice,
    );
    assert_eq!((status, rec["crates"].as_array().unwrap().len()), (200, 2));
    let (status, _) = stage_call(
        &server,
        reqwest::Method::DELETE,
        &format!("/releases/{}/yank", stage.id),
        &bob,
    );
    assert_eq!(status, 403, "only owners yank a release");
    let (status, body) = stage_call(
        &server,
        reqwest::Method::DELETE,
        &format!("/releases/{}/yank", stage.id),
        &alice,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        ["st-a", "st-b"]
            .iter()
            .all(|n| index_lines(&server, n).unwrap()[0]["yanked"] == true)
    );
    let (status, _) = stage_call(
        &server,
        reqwest::Method::PUT,
        &format!("/releases/{}/unyank", stage.id),
        &alice,
    );
    assert_eq!(status, 200);
    assert!(
        ["st-a", "st-b"]
            .iter()
            .all(|n| index_lines(&server, n).unwrap()[0]["yanked"] == false)
    );
}

/// Two clients race to stage the same version: exactly one wins, the other
/// gets a clear 409.
#[test]
fn racing_stages_for_one_version() {
    let server = std::sync::Arc::new(server(&[]));
    let alice = server.token("alice", &[]);
    let (status, _) = publish_raw(
        &server,
        Some(&alice),
        &meta("race-st", "0.1.0"),
        &crate_bytes("race-st", "0.1.0", ""),
    );
    assert_eq!(status, 200);
    for round in 0..5 {
        let vers = format!("1.0.{round}");
        let stages = [
            create_stage(&server, &alice, 600),
            create_stage(&server, &alice, 600),
        ];
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let results: Vec<(u16, String)> = stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (server, token, barrier, vers) = (
                    server.clone(),
                    s.token.clone(),
                    barrier.clone(),
                    vers.clone(),
                );
                std::thread::spawn(move || {
                    barrier.wait();
                    publish_raw(
                        &server,
                        Some(&token),
                        &meta("race-st", &vers),
                        &crate_bytes("race-st", &vers, &i.to_string()),
                    )
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let wins = results.iter().filter(|(s, _)| *s == 200).count();
        assert_eq!(wins, 1, "{results:?}");
        let loser = results.iter().find(|(s, _)| *s != 200).unwrap();
        assert_eq!(loser.0, 409, "{loser:?}");
        assert!(
            loser.1.contains("reserved by a staged release"),
            "{loser:?}"
        );
    }
}

/// A commit that fails validation changes nothing and names every problem.
#[test]
fn failing_commit_changes_nothing_and_says_why() {
    let server = server(&[]);
    let alice = server.token("alice", &[]);
    let (status, _) = publish_raw(
        &server,
        Some(&alice),
        &meta("fc-base", "1.0.0"),
        &crate_bytes("fc-base", "1.0.0", ""),
    );
    assert_eq!(status, 200);
    let stage = create_stage(&server, &alice, 600);
    let (status, body) = publish_raw(
        &server,
        Some(&stage.token),
        &with_dep("fc-a", "1.0.0", "fc-base", "^2"),
        &crate_bytes("fc-a", "1.0.0", ""),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = publish_raw(
        &server,
        Some(&stage.token),
        &with_dep("fc-b", "1.0.0", "fc-base", "^3"),
        &crate_bytes("fc-b", "1.0.0", ""),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/commit", stage.id),
        &alice,
    );
    assert_eq!(status, 400, "{body}");
    let details: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("fc-a@1.0.0") && d.contains("`fc-base` `^2`")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("fc-b@1.0.0") && d.contains("`fc-base` `^3`")),
        "{details:?}"
    );
    assert!(index_lines(&server, "fc-a").is_none());
    let (_, stage_now) = stage_call(
        &server,
        reqwest::Method::GET,
        &format!("/stages/{}", stage.id),
        &alice,
    );
    assert_eq!(
        stage_now["state"], "open",
        "a failed commit leaves the stage open"
    );
}

/// Abort and expiry release the reservation, but only for the same bytes.
#[test]
fn aborted_and_expired_versions_take_only_the_same_bytes() {
    let server = server(&[]);
    let alice = server.token("alice", &[]);
    let stage = create_stage(&server, &alice, 600);
    let staged = crate_bytes("ab-x", "1.0.0", "first");
    assert_eq!(
        publish_raw(&server, Some(&stage.token), &meta("ab-x", "1.0.0"), &staged).0,
        200
    );
    let (status, aborted) = stage_call(
        &server,
        reqwest::Method::DELETE,
        &format!("/stages/{}", stage.id),
        &alice,
    );
    assert_eq!(
        (status, aborted["state"].as_str().unwrap()),
        (200, "aborted")
    );
    assert!(index_lines(&server, "ab-x").is_none());
    let (status, body) = publish_raw(
        &server,
        Some(&alice),
        &meta("ab-x", "1.0.0"),
        &crate_bytes("ab-x", "1.0.0", "second"),
    );
    assert_eq!(status, 409);
    assert!(body.contains("different content"), "{body}");
    let (status, body) = publish_raw(&server, Some(&alice), &meta("ab-x", "1.0.0"), &staged);
    assert_eq!(status, 200, "the same bytes may go: {body}");
    assert_eq!(index_lines(&server, "ab-x").unwrap().len(), 1);

    // Expiry: a two-second stage. Expiry has whole-second precision, so a
    // one-second stage could expire before the upload below.
    let short = create_stage(&server, &alice, 2);
    let bytes = crate_bytes("ab-y", "1.0.0", "first");
    assert_eq!(
        publish_raw(&server, Some(&short.token), &meta("ab-y", "1.0.0"), &bytes).0,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(3100));
    let (_, expired) = stage_call(
        &server,
        reqwest::Method::GET,
        &format!("/stages/{}", short.id),
        &alice,
    );
    assert_eq!(expired["state"], "expired");
    assert_eq!(
        publish_raw(
            &server,
            Some(&short.token),
            &meta("ab-y", "1.0.1"),
            &crate_bytes("ab-y", "1.0.1", "")
        )
        .0,
        401
    );
    assert_eq!(
        publish_raw(
            &server,
            Some(&alice),
            &meta("ab-y", "1.0.0"),
            &crate_bytes("ab-y", "1.0.0", "other")
        )
        .0,
        409
    );
    assert_eq!(
        publish_raw(&server, Some(&alice), &meta("ab-y", "1.0.0"), &bytes).0,
        200
    );
}

/// The registry killed during a commit: after restart the release is
/// either fully visible or not at all, and a commit after restart finishes.
#[test]
fn kill_during_commit_is_all_or_nothing() {
    // Each commit holds its transaction open for 1.5 s, so the kill lands
    // inside it.
    let mut server = with_env_server(&[("CONVOY_FAULT_COMMIT_DELAY_MS", "1500")]);
    let alice = server.token("alice", &[]);
    let stage = create_stage(&server, &alice, 600);
    let names = ["kc-a", "kc-b", "kc-c"];
    for n in names {
        assert_eq!(
            publish_raw(
                &server,
                Some(&stage.token),
                &meta(n, "1.0.0"),
                &crate_bytes(n, "1.0.0", "")
            )
            .0,
            200
        );
    }
    let url = format!("{}/api/v1/convoy/stages/{}/commit", server.url, stage.id);
    let token = alice.clone();
    let commit = std::thread::spawn(move || {
        http()
            .post(url)
            .header("Authorization", token)
            .send()
            .map(|r| r.status().as_u16())
    });
    std::thread::sleep(std::time::Duration::from_millis(500));
    server.kill9();
    assert!(commit.join().unwrap().is_err(), "the commit was cut off");
    server.restart();
    let visible: Vec<bool> = names
        .iter()
        .map(|n| index_lines(&server, n).is_some())
        .collect();
    assert!(
        visible.iter().all(|v| *v) || visible.iter().all(|v| !*v),
        "{visible:?}"
    );
    assert!(
        visible.iter().all(|v| !*v),
        "a killed transaction rolls back"
    );
    let (status, body) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/commit", stage.id),
        &alice,
    );
    assert_eq!(status, 200, "{body}");
    assert!(names.iter().all(|n| index_lines(&server, n).is_some()));
}

fn with_env_server(env: &[(&str, &str)]) -> Server {
    Server::start_with_env(crate::BIN, &[], env)
}

/// Plain cargo: `cargo publish --token <stage token>` against the staging
/// index stages (the ordinary index stays empty), and `cargo build`
/// against the staging view resolves the staged crates.
#[test]
fn plain_cargo_stages_and_builds_against_the_staging_view() {
    let server = server(&[]);
    let alice = server.token("alice", &[]);
    let stage = create_stage(&server, &alice, 600);
    let mut cargo = Cargo::new(&server, None);
    cargo.env_remove("CARGO_REGISTRIES_CONVOY_TOKEN");
    cargo.env("CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS", "cargo:token");
    cargo.env("CARGO_REGISTRIES_STAGED_INDEX", &stage.index);
    cargo.env("CARGO_REGISTRIES_STAGED_TOKEN", &stage.token);
    let lib = cargo.project(
        "pc-lib",
        &[
            ("Cargo.toml", &manifest("pc-lib", "1.0.0", "")),
            ("src/lib.rs", "pub fn answer() -> u32 { 42 }\n"),
        ],
    );
    cargo.ok(&lib, &["publish", "--registry", "staged", "--allow-dirty"]);
    assert!(
        index_lines(&server, "pc-lib").is_none(),
        "staged, not published"
    );

    let app = cargo.project(
        "pc-app",
        &[
            ("Cargo.toml", "[package]\nname = \"pc-app\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\npc-lib = { version = \"1\", registry = \"staged\" }\n"),
            ("src/main.rs", "fn main() { println!(\"{}\", pc_lib::answer()); }\n"),
        ],
    );
    let out = cargo.ok(&app, &["run", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");

    let (status, _) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/commit", stage.id),
        &alice,
    );
    assert_eq!(status, 200);
    let mut user = Cargo::new(&server, Some(&alice));
    user.env("CARGO_TERM_COLOR", "never");
    let consumer = user.project(
        "pc-user",
        &[
            ("Cargo.toml", &format!("[package]\nname = \"pc-user\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\npc-lib = {{ version = \"1\", registry = \"{REGISTRY}\" }}\n")),
            ("src/main.rs", "fn main() { println!(\"{}\", pc_lib::answer()); }\n"),
        ],
    );
    let out = user.ok(&consumer, &["run", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
}
