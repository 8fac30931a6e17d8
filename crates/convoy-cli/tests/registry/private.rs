//! `--auth-required`: a private registry.

use convoy_test_support::{Cargo, REGISTRY, http, manifest};

use crate::server;

#[test]
fn private_registry_end_to_end() {
    let server = server(&["--auth-required"]);
    let token = server.token("alice", &[]);

    // Without a token, every read is refused with cargo's challenge.
    let cfg = http()
        .get(format!("{}/index/config.json", server.url))
        .send()
        .unwrap();
    assert_eq!(cfg.status(), 401);
    let challenge = cfg.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(challenge, format!("Cargo login_url=\"{}/me\"", server.url));

    let mut cargo = Cargo::new(&server, Some(&token));
    cargo.env("CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS", "cargo:token");
    let lib = cargo.project(
        "secret",
        &[
            ("Cargo.toml", &manifest("secret", "1.0.0", "")),
            ("src/lib.rs", "pub fn secret() -> u8 { 7 }\n"),
        ],
    );
    cargo.ok(&lib, &["publish", "--registry", REGISTRY, "--allow-dirty"]);
    let app = cargo.project(
        "app",
        &[
            (
                "Cargo.toml",
                &format!("[package]\nname = \"app\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\nsecret = {{ version = \"1\", registry = \"{REGISTRY}\" }}\n"),
            ),
            ("src/main.rs", "fn main() { println!(\"{}\", secret::secret()); }\n"),
        ],
    );
    let out = cargo.ok(&app, &["run", "-q"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");

    for path in [
        "/index/config.json",
        "/index/se/cr/secret",
        "/index/se/cr/unknown",
        "/api/v1/crates/secret/1.0.0/download",
        "/api/v1/crates?q=secret",
    ] {
        let resp = http().get(format!("{}{path}", server.url)).send().unwrap();
        assert_eq!(resp.status(), 401, "{path}");
        assert!(resp.headers().contains_key("www-authenticate"), "{path}");
        let wrong = http()
            .get(format!("{}{path}", server.url))
            .header("Authorization", "cvy_000000000000_bad")
            .send()
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path}");
        let ok = http()
            .get(format!("{}{path}", server.url))
            .header("Authorization", &token)
            .send()
            .unwrap();
        assert_ne!(ok.status(), 401, "{path}");
    }

    // A cargo without a token cannot even resolve.
    let mut anonymous = Cargo::new(&server, None);
    anonymous.env("CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS", "cargo:token");
    let app2 = anonymous.project(
        "app2",
        &[
            (
                "Cargo.toml",
                &format!("[package]\nname = \"app2\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\nsecret = {{ version = \"1\", registry = \"{REGISTRY}\" }}\n"),
            ),
            ("src/main.rs", "fn main() {}\n"),
        ],
    );
    let err = anonymous.fails(&app2, &["generate-lockfile"]);
    assert!(err.contains("401") || err.contains("token"), "{err}");
}
