//! Stages keep the rules of the endpoints they stand for, staged data stays
//! invisible until commit, search is literal, and orphan blobs are swept.

use std::time::{Duration, Instant};

use convoy_test_support::{Server, http};

use crate::staging::{crate_bytes, create_stage, stage_call, with_dep};
use crate::validation::{assert_refused, stored_blobs};
use crate::{index_lines, meta, publish_raw, server};

fn stage_upload(server: &Server, stage_token: &str, name: &str, vers: &str) {
    let mut m = meta(name, vers);
    m["description"] = serde_json::json!(format!("secret plans for {name}"));
    let (status, body) = publish_raw(
        server,
        Some(stage_token),
        &m,
        &crate_bytes(name, vers, "staged"),
    );
    assert_eq!(status, 200, "{body}");
}

fn search(server: &Server, q: &str) -> serde_json::Value {
    http()
        .get(format!("{}/api/v1/crates", server.url))
        .query(&[("q", q), ("per_page", "100")])
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn committing_needs_publish_scope_and_globs_for_every_staged_crate() {
    let server = server(&[]);
    let full = server.token("alice", &[]);
    let yank_foo = server.token("alice", &["--scope", "yank", "--crate", "foo"]);
    let publish_foo = server.token("alice", &["--crate", "foo"]);
    let stage = create_stage(&server, &full, 600);
    stage_upload(&server, &stage.token, "foo", "1.0.0");
    stage_upload(&server, &stage.token, "bar", "1.0.0");

    let path = |action: &str| format!("/stages/{}{action}", stage.id);
    let (status, body) = stage_call(&server, reqwest::Method::POST, &path("/commit"), &yank_foo);
    assert_eq!(status, 403, "{body}");
    for action in ["", "/extend"] {
        let method = if action.is_empty() {
            reqwest::Method::GET
        } else {
            reqwest::Method::POST
        };
        let (status, body) = stage_call(&server, method, &path(action), &yank_foo);
        assert_eq!(status, 403, "{action}: {body}");
    }
    let (status, body) = stage_call(&server, reqwest::Method::DELETE, &path(""), &yank_foo);
    assert_eq!(status, 403, "{body}");
    let (status, body) = stage_call(
        &server,
        reqwest::Method::POST,
        &path("/commit"),
        &publish_foo,
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("crate `bar`"), "{body}");
    let view = stage.index.trim_start_matches("sparse+");
    let resp = http()
        .get(format!("{view}config.json"))
        .header("Authorization", &yank_foo)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 403);

    // Nothing was published, and the stage is still open for a token that
    // may commit it.
    assert!(index_lines(&server, "foo").is_none());
    assert!(index_lines(&server, "bar").is_none());
    let (status, shown) = stage_call(&server, reqwest::Method::GET, &path(""), &full);
    assert_eq!(status, 200);
    assert_eq!(shown["state"], "open");
    let (status, body) = stage_call(&server, reqwest::Method::POST, &path("/commit"), &full);
    assert_eq!(status, 200, "{body}");
    assert_eq!(index_lines(&server, "bar").unwrap().len(), 1);
}

#[test]
fn staged_data_is_invisible_until_commit() {
    let server = server(&[]);
    let alice = server.token("alice", &[]);
    let stage = create_stage(&server, &alice, 600);
    stage_upload(&server, &stage.token, "ghost", "1.0.0");
    let blobs_before = stored_blobs(&server);

    // Search shows neither the crate nor its staged description.
    assert_eq!(search(&server, "secret plans")["meta"]["total"], 0);
    assert_eq!(search(&server, "ghost")["meta"]["total"], 0);
    // Owners do not reveal it.
    let resp = http()
        .get(format!("{}/api/v1/crates/ghost/owners", server.url))
        .header("Authorization", &alice)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
    // An ordinary publish cannot depend on it.
    assert_refused(
        &server,
        publish_raw(
            &server,
            Some(&alice),
            &with_dep("user", "1.0.0", "ghost", "^1"),
            &crate_bytes("user", "1.0.0", ""),
        ),
        400,
        "no known crate named `ghost`",
    );
    assert!(index_lines(&server, "user").is_none());
    assert_eq!(stored_blobs(&server), blobs_before);
    // The ordinary yank cannot touch the staged version.
    for (method, action) in [
        (reqwest::Method::DELETE, "yank"),
        (reqwest::Method::PUT, "unyank"),
    ] {
        let resp = http()
            .request(
                method,
                format!("{}/api/v1/crates/ghost/1.0.0/{action}", server.url),
            )
            .header("Authorization", &alice)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 404, "{action}");
    }
    // Within the stage, a dependency on its own staged crate is fine.
    let (status, body) = publish_raw(
        &server,
        Some(&stage.token),
        &with_dep("haunt", "1.0.0", "ghost", "^1"),
        &crate_bytes("haunt", "1.0.0", ""),
    );
    assert_eq!(status, 200, "{body}");

    // After an abort, still nothing.
    let (status, _) = stage_call(
        &server,
        reqwest::Method::DELETE,
        &format!("/stages/{}", stage.id),
        &alice,
    );
    assert_eq!(status, 200);
    assert_eq!(search(&server, "secret plans")["meta"]["total"], 0);
    assert!(index_lines(&server, "ghost").is_none());

    // A committed stage publishes unyanked, with its description.
    let stage = create_stage(&server, &alice, 600);
    stage_upload(&server, &stage.token, "shown", "1.0.0");
    let resp = http()
        .delete(format!("{}/api/v1/crates/shown/1.0.0/yank", server.url))
        .header("Authorization", &alice)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
    let (status, _) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/commit", stage.id),
        &alice,
    );
    assert_eq!(status, 200);
    assert_eq!(index_lines(&server, "shown").unwrap()[0]["yanked"], false);
    let found = search(&server, "secret plans for shown");
    assert_eq!(found["meta"]["total"], 1, "{found}");
}

#[test]
fn search_wildcards_are_literal() {
    let server = server(&[]);
    let alice = server.token("alice", &[]);
    for name in ["plain", "with-dash", "under_score"] {
        let (status, body) = publish_raw(
            &server,
            Some(&alice),
            &meta(name, "1.0.0"),
            &crate_bytes(name, "1.0.0", ""),
        );
        assert_eq!(status, 200, "{body}");
    }
    // `-` and `_` are the same in names, and match only names that hold one.
    for q in ["-", "_"] {
        let found = search(&server, q);
        assert_eq!(found["meta"]["total"], 2, "{q}: {found}");
    }
    for q in ["%", "\\", "p%n", "with\\"] {
        assert_eq!(search(&server, q)["meta"]["total"], 0, "{q}");
    }
    assert_eq!(search(&server, "plain")["meta"]["total"], 1);
}

/// Blobs of losing concurrent publishes and of aborted stages are swept;
/// published and staged blobs stay.
#[test]
fn orphan_blobs_are_swept_and_referenced_ones_kept() {
    let server = server(&["--sweep-interval-secs", "1", "--sweep-grace-secs", "2"]);
    let alice = server.token("alice", &[]);
    // Eight publishers race for one version with different bytes: one wins.
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let url = server.url.clone();
            let token = alice.clone();
            std::thread::spawn(move || {
                let body = convoy_protocol::publish::encode_publish_body(
                    &serde_json::to_vec(&meta("race", "1.0.0")).unwrap(),
                    &crate_bytes("race", "1.0.0", &i.to_string()),
                );
                http()
                    .put(format!("{url}/api/v1/crates/new"))
                    .header("Authorization", token)
                    .body(body)
                    .send()
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );

    let aborted = create_stage(&server, &alice, 600);
    stage_upload(&server, &aborted.token, "dropped", "1.0.0");
    let (status, _) = stage_call(
        &server,
        reqwest::Method::DELETE,
        &format!("/stages/{}", aborted.id),
        &alice,
    );
    assert_eq!(status, 200);
    let open = create_stage(&server, &alice, 600);
    stage_upload(&server, &open.token, "pending", "1.0.0");

    // What must stay: the winner's blob and the open stage's blob.
    let deadline = Instant::now() + Duration::from_secs(30);
    while stored_blobs(&server) != 2 {
        assert!(
            Instant::now() < deadline,
            "{} blobs left after 30 s",
            stored_blobs(&server)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let line = &index_lines(&server, "race").unwrap()[0];
    let dl = http()
        .get(format!("{}/api/v1/crates/race/1.0.0/download", server.url))
        .send()
        .unwrap();
    assert_eq!(dl.status(), 200);
    let bytes = dl.bytes().unwrap();
    assert_eq!(
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
        line["cksum"].as_str().unwrap()
    );
    // The open stage still commits with its blob.
    let (status, body) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/commit", open.id),
        &alice,
    );
    assert_eq!(status, 200, "{body}");
    let dl = http()
        .get(format!(
            "{}/api/v1/crates/pending/1.0.0/download",
            server.url
        ))
        .send()
        .unwrap();
    assert_eq!(dl.status(), 200);
}
