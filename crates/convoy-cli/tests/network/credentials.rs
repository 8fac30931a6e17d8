//! A token that only a credential provider knows.

use convoy_test_support::{Cargo, Server};

use crate::{BIN, cargo_publishes, convoy_publishes, index_lines, workspace};

#[test]
fn token_from_stdout_only() {
    let server = Server::start(BIN, &[]);
    let token = server.token("alice", &[]);
    // No token anywhere in the environment or in credentials.toml.
    let mut cargo = Cargo::new(&server, None);
    let script = cargo.root().join("print-token.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho {token}\n")).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&script)
        .status()
        .unwrap();
    cargo.env(
        "CARGO_REGISTRIES_CONVOY_CREDENTIAL_PROVIDER",
        &format!("cargo:token-from-stdout {}", script.display()),
    );

    cargo_publishes(&cargo, "cred-base", &[]);
    let root = workspace(&cargo, "cred");
    let (doc, stderr) = convoy_publishes(&cargo, &root, &["--verify", "none"]);
    assert!(index_lines(&server, "cred-b").is_some());
    assert!(!stderr.contains(&token), "the token is never printed");
    assert!(
        !doc.to_string().contains(&token),
        "the token is never printed"
    );
}
