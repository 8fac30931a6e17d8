//! Every upload the registry must refuse, each with its status and nothing
//! stored.

use convoy_tarball::TarballBuilder;

use crate::{index_lines, meta, publish_raw, send_publish, server};

pub(crate) fn stored_blobs(server: &convoy_test_support::Server) -> usize {
    let root = server.data().join("crates");
    std::fs::read_dir(&root)
        .map(|dirs| {
            dirs.flatten()
                .map(|d| std::fs::read_dir(d.path()).map(|f| f.count()).unwrap_or(0))
                .sum()
        })
        .unwrap_or(0)
}

pub(crate) fn assert_refused(
    server: &convoy_test_support::Server,
    (status, body): (u16, String),
    expected: u16,
    detail: &str,
) {
    assert_eq!(status, expected, "{body}");
    let json: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("JSON error body: {body}"));
    let text = json["errors"][0]["detail"].as_str().unwrap();
    assert!(text.contains(detail), "expected `{detail}` in `{text}`");
    let _ = server;
}

#[test]
fn every_invalid_upload_is_refused_and_nothing_is_stored() {
    let server = server(&["--max-upload-bytes", "4096"]);
    let token = server.token("alice", &[]);
    let bob = server.token("bob", &[]);
    let yank_only = server.token("alice", &["--scope", "yank"]);
    let other_crates = server.token("alice", &["--crate", "other-*"]);
    let expired = server.token("alice", &["--expires-days", "0"]);
    let good = |name: &str, vers: &str| TarballBuilder::minimal(name, vers).build();

    // Malformed and truncated bodies.
    assert_refused(
        &server,
        send_publish(&server, Some(&token), b"garbage".to_vec()),
        400,
        "truncated",
    );
    let mut body = convoy_protocol::publish::encode_publish_body(
        &serde_json::to_vec(&meta("foo", "1.0.0")).unwrap(),
        &good("foo", "1.0.0"),
    );
    body.truncate(body.len() - 10);
    assert_refused(
        &server,
        send_publish(&server, Some(&token), body),
        400,
        "truncated",
    );
    let body = convoy_protocol::publish::encode_publish_body(b"{not json", &good("foo", "1.0.0"));
    assert_refused(
        &server,
        send_publish(&server, Some(&token), body),
        400,
        "invalid publish metadata",
    );

    // Oversized: incompressible bytes past the 4 KiB limit.
    let noise: Vec<u8> = (0..700u32)
        .flat_map(|i| <sha2::Sha256 as sha2::Digest>::digest(i.to_le_bytes()))
        .collect();
    let big = TarballBuilder::minimal("foo", "1.0.0")
        .file("foo-1.0.0/noise.bin", &noise)
        .build();
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &big),
        413,
        "limit",
    );

    // Tarball shape.
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            TarballBuilder::minimal("foo", "1.0.0")
                .file("foo-1.0.0/../../evil", b"x")
                .build(),
            "invalid path",
        ),
        (
            TarballBuilder::minimal("foo", "1.0.0")
                .file("/etc/evil", b"x")
                .build(),
            "invalid path",
        ),
        (
            TarballBuilder::minimal("foo", "1.0.0")
                .symlink("foo-1.0.0/link", "/etc/passwd")
                .build(),
            "symlink",
        ),
        (
            TarballBuilder::minimal("foo", "1.0.0")
                .hardlink("foo-1.0.0/hard", "/etc/passwd")
                .build(),
            "hard link",
        ),
        (
            TarballBuilder::minimal("bar", "1.0.0").build(),
            "invalid path",
        ),
        (
            TarballBuilder::minimal("foo", "1.0.0")
                .file(
                    "foo-1.0.0/cargo.toml",
                    b"[package]\nname = \"foo\"\nversion = \"1.0.0\"\n",
                )
                .build(),
            "more than one `Cargo.toml`",
        ),
        (
            TarballBuilder::minimal("foo", "1.0.0")
                .file_with_pax_size("foo-1.0.0/x", b"abc", 0)
                .build(),
            "PAX size",
        ),
        (
            TarballBuilder::minimal("foo", "2.0.0").build(),
            "invalid path",
        ),
        (b"not a tarball".to_vec(), "not a valid gzip"),
    ];
    for (tarball, detail) in cases {
        assert_refused(
            &server,
            publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &tarball),
            400,
            detail,
        );
    }
    // Manifest disagreeing with the metadata.
    let lying = TarballBuilder::new()
        .file(
            "foo-1.0.0/Cargo.toml",
            b"[package]\nname = \"foo\"\nversion = \"9.9.9\"\n",
        )
        .build();
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &lying),
        400,
        "Cargo.toml says",
    );

    // Names and versions.
    for (name, detail) in [
        ("1bad", "must start with"),
        ("std", "reserved"),
        ("a.b", "invalid character"),
    ] {
        assert_refused(
            &server,
            publish_raw(
                &server,
                Some(&token),
                &meta(name, "1.0.0"),
                &good(name, "1.0.0"),
            ),
            400,
            detail,
        );
    }
    assert_refused(
        &server,
        publish_raw(
            &server,
            Some(&token),
            &meta("foo", "1.0"),
            &good("foo", "1.0"),
        ),
        400,
        "invalid version",
    );
    let mut wild = meta("foo", "1.0.0");
    wild["deps"] = serde_json::json!([{"name": "foo2", "version_req": "*", "features": [], "optional": false, "default_features": true, "target": null, "kind": "normal"}]);
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &wild, &good("foo", "1.0.0")),
        400,
        "wildcard",
    );
    let mut unknown = meta("foo", "1.0.0");
    unknown["deps"] = serde_json::json!([{"name": "ghost", "version_req": "^1", "features": [], "optional": false, "default_features": true, "target": null, "kind": "normal"}]);
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &unknown, &good("foo", "1.0.0")),
        400,
        "no known crate named `ghost`",
    );

    // Tokens.
    assert_refused(
        &server,
        publish_raw(&server, None, &meta("foo", "1.0.0"), &good("foo", "1.0.0")),
        401,
        "requires a token",
    );
    assert_refused(
        &server,
        publish_raw(
            &server,
            Some("cvy_0123456789ab_nope"),
            &meta("foo", "1.0.0"),
            &good("foo", "1.0.0"),
        ),
        401,
        "invalid or expired",
    );
    assert_refused(
        &server,
        publish_raw(
            &server,
            Some(&expired),
            &meta("foo", "1.0.0"),
            &good("foo", "1.0.0"),
        ),
        401,
        "invalid or expired",
    );
    assert_refused(
        &server,
        publish_raw(
            &server,
            Some(&yank_only),
            &meta("foo", "1.0.0"),
            &good("foo", "1.0.0"),
        ),
        403,
        "does not allow",
    );
    assert_refused(
        &server,
        publish_raw(
            &server,
            Some(&other_crates),
            &meta("foo", "1.0.0"),
            &good("foo", "1.0.0"),
        ),
        403,
        "does not allow",
    );

    // Nothing above was stored.
    assert!(index_lines(&server, "foo").is_none());
    assert_eq!(stored_blobs(&server), 0);

    // A valid publish, then the refusals that need an existing crate.
    let (status, body) = publish_raw(
        &server,
        Some(&token),
        &meta("foo", "1.0.0"),
        &good("foo", "1.0.0"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(stored_blobs(&server), 1);
    let different = TarballBuilder::minimal("foo", "1.0.0")
        .file("foo-1.0.0/README", b"changed")
        .build();
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &different),
        409,
        "already uploaded",
    );
    assert_refused(
        &server,
        publish_raw(
            &server,
            Some(&bob),
            &meta("foo", "1.0.1"),
            &good("foo", "1.0.1"),
        ),
        403,
        "not an owner",
    );
    assert_refused(
        &server,
        publish_raw(
            &server,
            Some(&token),
            &meta("Foo", "1.0.1"),
            &good("Foo", "1.0.1"),
        ),
        409,
        "previously named `foo`",
    );
    assert_eq!(index_lines(&server, "foo").unwrap().len(), 1);
    assert_eq!(stored_blobs(&server), 1);

    // Yank and owners enforce owners and scopes too.
    let http = convoy_test_support::http();
    let yank = |t: &str| {
        http.delete(format!("{}/api/v1/crates/foo/1.0.0/yank", server.url))
            .header("Authorization", t)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(yank(&bob), 403);
    assert_eq!(yank(&other_crates), 403);
    let owners = http
        .put(format!("{}/api/v1/crates/foo/owners", server.url))
        .header("Authorization", &yank_only)
        .body(r#"{"users":["bob"]}"#)
        .send()
        .unwrap();
    assert_eq!(owners.status(), 403);
    assert_eq!(yank(&yank_only), 200);
    let missing = http
        .get(format!("{}/api/v1/crates/foo/9.9.9/download", server.url))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[test]
fn index_answers_conditional_requests() {
    let server = server(&[]);
    let token = server.token("alice", &[]);
    let (status, _) = publish_raw(
        &server,
        Some(&token),
        &meta("cond", "1.0.0"),
        &TarballBuilder::minimal("cond", "1.0.0").build(),
    );
    assert_eq!(status, 200);
    let http = convoy_test_support::http();
    let url = format!("{}/index/co/nd/cond", server.url);
    let first = http.get(&url).send().unwrap();
    let etag = first.headers()["etag"].to_str().unwrap().to_owned();
    let modified = first.headers()["last-modified"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        http.get(&url)
            .header("If-None-Match", &etag)
            .send()
            .unwrap()
            .status(),
        304
    );
    assert_eq!(
        http.get(&url)
            .header("If-Modified-Since", &modified)
            .send()
            .unwrap()
            .status(),
        304
    );
    assert_eq!(
        http.get(&url)
            .header("If-None-Match", "\"other\"")
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http.get(format!("{}/index/co/nd/nope", server.url))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http.get(format!("{}/index/xx/yy/cond", server.url))
            .send()
            .unwrap()
            .status(),
        404
    );
    // Read-your-writes: a new version shows at once and changes the ETag.
    let (status, _) = publish_raw(
        &server,
        Some(&token),
        &meta("cond", "1.0.1"),
        &TarballBuilder::minimal("cond", "1.0.1").build(),
    );
    assert_eq!(status, 200);
    let after = http
        .get(&url)
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(after.status(), 200);
    assert_eq!(after.text().unwrap().lines().count(), 2);
}

#[test]
fn publishing_too_fast_gets_429_with_retry_after() {
    let server = server(&["--publish-burst", "1", "--publish-refill-secs", "3600"]);
    let token = server.token("alice", &[]);
    let tarball = |v: &str| TarballBuilder::minimal("fast", v).build();
    let (status, body) = publish_raw(
        &server,
        Some(&token),
        &meta("fast", "1.0.0"),
        &tarball("1.0.0"),
    );
    assert_eq!(status, 200, "{body}");
    let body = convoy_protocol::publish::encode_publish_body(
        &serde_json::to_vec(&meta("fast", "1.0.1")).unwrap(),
        &tarball("1.0.1"),
    );
    let resp = convoy_test_support::http()
        .put(format!("{}/api/v1/crates/new", server.url))
        .header("Authorization", &token)
        .body(body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 429);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&retry), "{retry}");
    assert!(resp.text().unwrap().contains("try again"));
    assert_eq!(index_lines(&server, "fast").unwrap().len(), 1);
}
