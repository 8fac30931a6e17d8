//! `plan` reads crates.io's index wherever cargo does. Reading only:
//! nothing is ever published to crates.io.

use convoy_test_support::{Cargo, Server};

use crate::{BIN, command, convoy_ok, workspace};

#[test]
fn plan_reads_crates_io() {
    let server = Server::start(BIN, &[]);
    let cargo = Cargo::new(&server, None);
    // The baseline: cargo resolves a crates.io dependency from the index.
    let probe = cargo.project(
        "probe",
        &[
            (
                "Cargo.toml",
                "[package]\nname = \"probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[dependencies]\nitoa = \"1\"\n",
            ),
            ("src/lib.rs", ""),
        ],
    );
    let program = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = command(&cargo, &program, &probe, &["generate-lockfile"])
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "skipped: plain cargo cannot read crates.io's index here, so neither can Convoy be asked to:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }

    let root = workspace(&cargo, "convoy-net-probe");
    let out = convoy_ok(
        &cargo,
        &root,
        &["plan", "--format", "json", "--no-content-check"],
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["registry"]["checked"], true, "{plan:#}");
    assert_eq!(plan["registry"]["name"], "crates-io", "{plan:#}");
}
