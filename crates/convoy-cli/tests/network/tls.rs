//! A registry behind HTTPS with a CA made for the test: trusted only
//! through `http.cainfo`, then only through `SSL_CERT_FILE`.

use convoy_test_support::net::TlsFront;
use convoy_test_support::{Cargo, REGISTRY, Server};

use crate::{BIN, cargo_publishes, convoy_ok, convoy_publishes, index_lines, workspace};

#[test]
fn registry_behind_tls_with_a_private_ca() {
    let front = TlsFront::bind();
    let server = Server::start(BIN, &["--public-url", &front.url]);
    front.forward_to(&server.url);
    let token = server.token("alice", &[]);
    let mut cargo = Cargo::new(&server, Some(&token));
    let index = format!("sparse+{}/index/", front.url);
    cargo.env("CARGO_REGISTRIES_CONVOY_INDEX", &index);
    let ca = front.ca_file().display().to_string();

    // Not trusted at all: Convoy cannot read the registry, so the CA is
    // really trusted only through the settings below.
    let root = workspace(&cargo, "tls-untrusted");
    let out = convoy_ok(
        &cargo,
        &root,
        &[
            "plan",
            "--registry",
            REGISTRY,
            "--format",
            "json",
            "--no-content-check",
        ],
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["registry"]["checked"], false, "{plan:#}");

    // `http.cainfo`.
    cargo.env("CARGO_HTTP_CAINFO", &ca);
    cargo_publishes(&cargo, "tls-base-cainfo", &[]);
    let root = workspace(&cargo, "tls-cainfo");
    convoy_publishes(&cargo, &root, &[]);
    assert!(index_lines(&server, "tls-cainfo-b").is_some());

    // `SSL_CERT_FILE`, without `http.cainfo`.
    cargo.env_remove("CARGO_HTTP_CAINFO");
    cargo.env("SSL_CERT_FILE", &ca);
    cargo_publishes(&cargo, "tls-base-certfile", &[]);
    let root = workspace(&cargo, "tls-certfile");
    convoy_publishes(&cargo, &root, &[]);
    assert!(index_lines(&server, "tls-certfile-b").is_some());
}
