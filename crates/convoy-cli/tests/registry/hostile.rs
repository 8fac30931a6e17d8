//! The attacks of issue 8 against a real server: hostile archives, index
//! bloat and route parameters that used to panic. Each asserts the refusal
//! and that nothing was stored.

use convoy_tarball::TarballBuilder;
use convoy_test_support::{Server, http};

use crate::validation::{assert_refused, stored_blobs};
use crate::{index_lines, meta, publish_raw, server};

fn nothing_stored(server: &Server, name: &str) {
    assert!(
        index_lines(server, name).is_none(),
        "{name} is in the index"
    );
    assert_eq!(stored_blobs(server), 0, "a blob was stored");
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

#[test]
fn archives_with_hidden_content_are_refused() {
    let server = server(&[]);
    let token = server.token("alice", &[]);

    // Two gzip members: cargo builds the first, `tar xzf` unpacks both.
    let mut two = TarballBuilder::minimal("foo", "1.0.0").build();
    two.extend(
        TarballBuilder::new()
            .file("foo-1.0.0/src/evil.rs", b"fn evil() {}")
            .build(),
    );
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &two),
        400,
        "after the end of its gzip stream",
    );

    // A second tar archive after the end-of-archive marker.
    let second = gunzip(
        &TarballBuilder::new()
            .file("foo-1.0.0/src/evil.rs", b"x")
            .build(),
    );
    let after_end = TarballBuilder::minimal("foo", "1.0.0")
        .after_end(&second)
        .build();
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &after_end),
        400,
        "data after the end of its tar archive",
    );
    nothing_stored(&server, "foo");

    // Zero padding after the marker is what GNU tar writes: accepted.
    let padded = TarballBuilder::minimal("foo", "1.0.0")
        .after_end(&[0; 10240])
        .build();
    let (status, body) = publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &padded);
    assert_eq!(status, 200, "{body}");
}

#[test]
fn long_names_are_bounded_and_never_echoed() {
    let server = server(&[]);
    let token = server.token("alice", &[]);
    // 256 MiB of GNU long name in a few hundred KB: the server must refuse
    // it from the header, without buffering it or quoting it back.
    let huge = vec![b'a'; 256 << 20];
    let bomb = TarballBuilder::minimal("foo", "1.0.0")
        .long_name_file(&huge, b"")
        .build();
    drop(huge);
    assert!(bomb.len() < 2 << 20, "fixture is {} bytes", bomb.len());
    let (status, body) = publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &bomb);
    assert_eq!(status, 400, "{}", &body[..body.len().min(500)]);
    assert!(body.len() < 1024, "error body is {} bytes", body.len());
    assert!(body.contains("the maximum is 4096"), "{body}");

    // A PAX header of 1 MiB, and a path just over the limit that fits in
    // one, are refused the same way.
    let pax = TarballBuilder::minimal("foo", "1.0.0")
        .pax(&[("comment", &vec![b'c'; 1 << 20])])
        .file("foo-1.0.0/x", b"")
        .build();
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &meta("foo", "1.0.0"), &pax),
        400,
        "PAX header",
    );
    let long = format!("foo-1.0.0/{}", "d/".repeat(2100));
    let (status, body) = publish_raw(
        &server,
        Some(&token),
        &meta("foo", "1.0.0"),
        &TarballBuilder::minimal("foo", "1.0.0")
            .pax(&[("path", long.as_bytes())])
            .file("foo-1.0.0/x", b"")
            .build(),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.len() < 1024, "{body}");
    nothing_stored(&server, "foo");
}

#[test]
fn colliding_and_unportable_names_are_refused() {
    let server = server(&[]);
    let token = server.token("alice", &[]);
    let base = || TarballBuilder::minimal("foo", "1.0.0");
    let cases: Vec<(TarballBuilder, &str)> = vec![
        (
            base().file("foo-1.0.0/src/lib.rs", b"two"),
            "appears more than once",
        ),
        (
            base().file("foo-1.0.0/src/LIB.rs", b""),
            "differ only by case",
        ),
        (
            base().file(
                "foo-1.0.0/Cargo.toml.",
                b"[package]\nname = \"foo\"\nversion = \"6.6.6\"\n",
            ),
            "trailing dot or space",
        ),
        (base().file("foo-1.0.0/src/lib.rs ", b""), "trailing dot"),
        (base().file("foo-1.0.0/CARGO~1.TOM", b""), "8.3 short name"),
        (base().file("foo-1.0.0/Cargo.toml::$DATA", b""), "`:`"),
        (base().file("foo-1.0.0/src/CON", b""), "device name"),
        (base().file("foo-1.0.0/nul.txt", b""), "device name"),
        (base().file("foo-1.0.0/AUX", b""), "device name"),
        (base().file("foo-1.0.0/COM1.rs", b""), "device name"),
        (base().file("foo-1.0.0/a<b", b""), "`<`"),
        (base().file("foo-1.0.0/a>b", b""), "`>`"),
        (
            base().file("foo-1.0.0/a\"b", b""),
            "which Windows does not allow",
        ),
        (base().file("foo-1.0.0/a|b", b""), "`|`"),
        (base().file("foo-1.0.0/a?b", b""), "`?`"),
        (base().file("foo-1.0.0/a*b", b""), "`*`"),
        (base().file("foo-1.0.0/a\u{1}b", b""), "`\\\\u{1}`"),
        (base().file("foo-1.0.0/src\\lib.rs", b""), "backslash"),
        (
            base().file_raw_name(b"foo-1.0.0/\xc3\x28.rs", b""),
            "not UTF-8",
        ),
    ];
    for (tarball, detail) in cases {
        let (status, body) = publish_raw(
            &server,
            Some(&token),
            &meta("foo", "1.0.0"),
            &tarball.build(),
        );
        assert_eq!(status, 400, "{detail}: {body}");
        assert!(body.contains(detail), "expected `{detail}` in {body}");
    }
    nothing_stored(&server, "foo");
}

#[test]
fn index_bloat_is_capped() {
    let server = server(&[]);
    let token = server.token("alice", &[]);
    let good = TarballBuilder::minimal("foo", "1.0.0").build();

    let mut many_features = meta("foo", "1.0.0");
    many_features["features"] = (0..301)
        .map(|i| (format!("f{i}"), serde_json::json!([])))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &many_features, &good),
        400,
        "301 features, the maximum is 300",
    );

    let mut wide_feature = meta("foo", "1.0.0");
    let values: Vec<String> = (0..301).map(|i| format!("f{i}")).collect();
    wide_feature["features"] = serde_json::json!({ "big": values });
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &wide_feature, &good),
        400,
        "lists 301 values, the maximum is 300",
    );

    let mut many_deps = meta("foo", "1.0.0");
    many_deps["deps"] = (0..501)
        .map(|i| {
            serde_json::json!({"name": format!("d{i}"), "version_req": "^1", "features": [],
                "optional": false, "default_features": true, "target": null, "kind": "normal"})
        })
        .collect::<Vec<_>>()
        .into();
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &many_deps, &good),
        400,
        "501 dependencies, the maximum is 500",
    );

    // Within every count, but a line over 256 KiB: 250 features of 250
    // long values each, under the 1 MiB metadata limit.
    let mut fat = meta("foo", "1.0.0");
    fat["features"] = (0..250)
        .map(|i| {
            let values: Vec<String> = (0..250).map(|j| format!("v{j:03}")).collect();
            (format!("feature{i:03}"), serde_json::json!(values))
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert!(serde_json::to_vec(&fat).unwrap().len() < 1 << 20);
    assert_refused(
        &server,
        publish_raw(&server, Some(&token), &fat, &good),
        400,
        "the maximum is 262144",
    );
    nothing_stored(&server, "foo");
}

/// Route parameters that used to panic the handler (byte slicing of
/// `index_path`), or that carry newlines and escape codes, get a plain 404
/// with the text quoted short, and the server keeps serving.
#[test]
fn hostile_route_parameters_never_panic() {
    let server = server(&[]);
    let token = server.token("alice", &[]);
    let get = |path: &str, token: Option<&str>| {
        let mut req = http().get(format!("{}{path}", server.url));
        if let Some(t) = token {
            req = req.header("Authorization", t);
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    for path in [
        "/index/3/x/%C3%A9a",
        "/index/3/x/x%C3%A9a",
        "/index/x/a%C3%A9",
        "/index/%C3%A9%C3%A9/%C3%A9%C3%A9/%C3%A9%C3%A9%C3%A9%C3%A9",
        "/index/2/%0A%1B",
        "/index/1/%00",
        "/api/v1/crates/%C3%A9a/1.0.0/download",
        "/api/v1/crates/a%0Ab%1B%5B31m/1.0.0/download",
        "/api/v1/crates/foo/1.0.0%0Aforged%20log%20line/download",
        "/api/v1/convoy/releases/%0A%C3%A9",
    ] {
        for token in [None, Some(token.as_str())] {
            let (status, body) = get(path, token);
            assert_eq!(status, 404, "{path}: {body}");
            assert!(!body.contains('\n') && !body.contains('\u{1b}'), "{body}");
        }
    }
    let long = format!("/api/v1/crates/{}/1.0.0/download", "a".repeat(30_000));
    let (status, body) = get(&long, None);
    assert!(status == 404 || status == 414 || status == 431, "{status}");
    assert!(body.len() < 1024, "{} bytes", body.len());
    for (method, path) in [
        (reqwest::Method::DELETE, "/api/v1/crates/%C3%A9a/1.0.0/yank"),
        (reqwest::Method::PUT, "/api/v1/crates/%C3%A9a/1.0.0/unyank"),
        (reqwest::Method::GET, "/api/v1/crates/%C3%A9a/owners"),
        (reqwest::Method::POST, "/api/v1/convoy/stages/%C3%A9/commit"),
        (reqwest::Method::DELETE, "/api/v1/convoy/stages/%0A"),
        (reqwest::Method::GET, "/stages/%C3%A9/index/3/x/%C3%A9a"),
    ] {
        let resp = http()
            .request(method, format!("{}{path}", server.url))
            .header("Authorization", &token)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
    }
    // Still serving, and still empty.
    assert_eq!(get("/index/config.json", None).0, 200);
    nothing_stored(&server, "foo");
}
