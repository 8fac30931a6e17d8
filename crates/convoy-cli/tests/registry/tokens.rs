//! Token revocation and self-service, over HTTP and through the CLI, and
//! stage tokens bounded by the token that opened their stage.

use std::process::Command;

use convoy_test_support::{Server, http};

use crate::staging::{crate_bytes, create_stage, stage_call};
use crate::validation::{assert_refused, stored_blobs};
use crate::{BIN, index_lines, meta, publish_raw, server};

fn publish(server: &Server, token: &str, name: &str, vers: &str) -> (u16, String) {
    publish_raw(
        server,
        Some(token),
        &meta(name, vers),
        &crate_bytes(name, vers, "x"),
    )
}

fn me_tokens(server: &Server, token: &str) -> (u16, serde_json::Value) {
    let resp = http()
        .get(format!("{}/api/v1/me/tokens", server.url))
        .header("Authorization", token)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or_default())
}

fn cli(server: &Server, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(["token"])
        .args(&args[..1])
        .args(server.state_args())
        .args(&args[1..])
        .output()
        .unwrap()
}

#[test]
fn a_leaked_token_revokes_itself_crates_io_style() {
    let server = server(&[]);
    let token = server.token("alice", &["--name", "laptop"]);
    let resp = http()
        .delete(format!("{}/api/v1/tokens/current", server.url))
        .header("Authorization", &token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_refused(
        &server,
        publish(&server, &token, "foo", "1.0.0"),
        401,
        "invalid or expired",
    );
    assert!(index_lines(&server, "foo").is_none());
    assert_eq!(stored_blobs(&server), 0);
    // Revoking twice is just a bad token.
    let resp = http()
        .delete(format!("{}/api/v1/tokens/current", server.url))
        .header("Authorization", &token)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
}

#[test]
fn me_tokens_lists_creates_within_bounds_and_revokes() {
    let server = server(&[]);
    let admin = server.token("alice", &["--name", "ci"]);
    let narrow = server.token(
        "alice",
        &[
            "--name",
            "narrow",
            "--scope",
            "publish-update",
            "--crate",
            "foo*",
            "--expires-days",
            "1",
        ],
    );
    let (status, _) = publish(&server, &admin, "foo", "1.0.0");
    assert_eq!(status, 200);

    let (status, list) = me_tokens(&server, &admin);
    assert_eq!(status, 200);
    let tokens = list["api_tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    let text = list.to_string();
    for secret in [&admin, &narrow] {
        let tail = secret.rsplit('_').next().unwrap();
        assert!(!text.contains(tail), "a secret is listed: {text}");
    }
    let ci = tokens.iter().find(|t| t["name"] == "ci").unwrap();
    assert!(ci["last_used_at"].is_string(), "{ci}");
    let narrow_info = tokens.iter().find(|t| t["name"] == "narrow").unwrap();
    assert_eq!(narrow_info["crate_scopes"], serde_json::json!(["foo*"]));
    assert!(narrow_info["expired_at"].is_string());

    // A token cannot grant more than it holds.
    let put = |token: &str, body: serde_json::Value| {
        let resp = http()
            .put(format!("{}/api/v1/me/tokens", server.url))
            .header("Authorization", token)
            .json(&body)
            .send()
            .unwrap();
        (
            resp.status().as_u16(),
            resp.json::<serde_json::Value>().unwrap_or_default(),
        )
    };
    for body in [
        serde_json::json!({"api_token": {"name": "x", "endpoint_scopes": ["yank"]}}),
        serde_json::json!({"api_token": {"name": "x", "crate_scopes": ["bar"]}}),
        serde_json::json!({"api_token": {"name": "x", "crate_scopes": []}}),
        serde_json::json!({"api_token": {"name": "x", "expired_at": "2999-01-01T00:00:00Z"}}),
    ] {
        let (status, reply) = put(&narrow, body.clone());
        assert_eq!(status, 403, "{body}: {reply}");
    }
    assert_eq!(
        me_tokens(&server, &admin).1["api_tokens"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let (status, created) = put(
        &narrow,
        serde_json::json!({"api_token": {"name": "child", "crate_scopes": ["foo"]}}),
    );
    assert_eq!(status, 200, "{created}");
    let child = created["api_token"]["token"].as_str().unwrap().to_owned();
    let child_id = created["api_token"]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        created["api_token"]["endpoint_scopes"],
        serde_json::json!(["publish-update"])
    );
    let (status, body) = publish(&server, &child, "foo", "1.0.1");
    assert_eq!(status, 200, "{body}");

    // Revoke by id: the child stops working, nothing else does.
    let resp = http()
        .delete(format!("{}/api/v1/me/tokens/{child_id}", server.url))
        .header("Authorization", &admin)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_refused(
        &server,
        publish(&server, &child, "foo", "1.0.2"),
        401,
        "invalid or expired",
    );
    assert_eq!(index_lines(&server, "foo").unwrap().len(), 2);
    let resp = http()
        .delete(format!("{}/api/v1/me/tokens/{child_id}", server.url))
        .header("Authorization", &admin)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
    // Bob cannot revoke Alice's tokens, nor see them.
    let bob = server.token("bob", &[]);
    let narrow_id = narrow_info["id"].as_str().unwrap();
    let resp = http()
        .delete(format!("{}/api/v1/me/tokens/{narrow_id}", server.url))
        .header("Authorization", &bob)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        me_tokens(&server, &bob).1["api_tokens"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(publish(&server, &narrow, "foo", "1.0.3").0, 200);
}

#[test]
fn cli_lists_and_revokes_tokens() {
    let server = server(&[]);
    let one = server.token("alice", &["--name", "one"]);
    let two = server.token("alice", &["--name", "two"]);
    let out = cli(&server, &["list", "--user", "alice", "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tokens = list["api_tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 2);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(one.rsplit('_').next().unwrap()));
    let one_id = tokens.iter().find(|t| t["name"] == "one").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let out = cli(&server, &["revoke", "--user", "alice", "--id", &one_id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("Revoked"));
    assert_eq!(publish(&server, &one, "foo", "1.0.0").0, 401);
    assert_eq!(publish(&server, &two, "foo", "1.0.0").0, 200);

    let out = cli(&server, &["revoke", "--user", "alice", "--id", &one_id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no token"));
    let out = cli(&server, &["revoke", "--user", "alice"]);
    assert!(!out.status.success(), "--id or --all is required");

    let out = cli(&server, &["revoke", "--user", "alice", "--all"]);
    assert!(out.status.success());
    assert_eq!(publish(&server, &two, "foo", "1.0.1").0, 401);
    assert_eq!(index_lines(&server, "foo").unwrap().len(), 1);
    let out = cli(&server, &["list", "--user", "alice"]);
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = cli(&server, &["list", "--user", "nobody"]);
    assert!(!out.status.success());
}

/// Stage tokens live no longer than the token that opened the stage:
/// revoking it ends them and discards the stage; its expiry caps the
/// stage's, on creation and on every extension.
#[test]
fn stage_tokens_are_bounded_by_their_creator() {
    let server = server(&[]);
    let creator = server.token("alice", &["--name", "creator"]);
    let stage = create_stage(&server, &creator, 3600);
    let (status, body) = publish(&server, &stage.token, "foo", "1.0.0");
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored_blobs(&server), 1);

    // Revoke the creator through the CLI: the stage token dies with it,
    // and the stage cannot be committed by anyone.
    let list = cli(&server, &["list", "--user", "alice", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = list["api_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "creator")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        cli(&server, &["revoke", "--user", "alice", "--id", &id])
            .status
            .success()
    );
    assert_eq!(publish(&server, &stage.token, "bar", "1.0.0").0, 401);
    let other = server.token("alice", &[]);
    let (status, body) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/commit", stage.id),
        &other,
    );
    assert_eq!(status, 409, "{body}");
    assert!(index_lines(&server, "foo").is_none());

    // A creator that expires in a few seconds: the stage cannot be opened
    // or extended past that, and its token stops with it.
    let short = server.token("alice", &["--expires-secs", "6"]);
    let stage = create_stage(&server, &short, 3600);
    let (status, shown) = stage_call(
        &server,
        reqwest::Method::GET,
        &format!("/stages/{}", stage.id),
        &stage.token,
    );
    assert_eq!(status, 200);
    let expires = shown["expires_at"].as_str().unwrap().to_owned();
    let (status, extended) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/extend", stage.id),
        &stage.token,
    );
    assert_eq!(status, 200, "{extended}");
    assert_eq!(extended["expires_at"].as_str().unwrap(), expires);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while publish(&server, &stage.token, "baz", "1.0.0").0 != 401 {
        assert!(
            std::time::Instant::now() < deadline,
            "stage token outlived its creator"
        );
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let (status, _) = stage_call(
        &server,
        reqwest::Method::POST,
        &format!("/stages/{}/extend", stage.id),
        &stage.token,
    );
    assert_eq!(status, 401);
    assert!(index_lines(&server, "baz").is_none());
}
