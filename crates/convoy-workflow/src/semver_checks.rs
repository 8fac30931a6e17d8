//! cargo-semver-checks, when the user has it: the API of the working copy
//! against the registry's latest version, unpacked as the baseline.

use std::path::Path;

use convoy_workspace::Workspace;
use convoy_workspace::process::{Cmd, ProcessError};
use serde::Serialize;

use crate::bump::Level;
use crate::{WorkflowError, io_error};

/// Whether `auto` could consult cargo-semver-checks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "status")]
pub enum SemverChecks {
    /// `cargo semver-checks` is not installed; levels come from commits
    /// only.
    NotInstalled,
    /// It is installed, in this version.
    Installed {
        /// What `--version` printed.
        version: String,
    },
    /// `auto` was not asked for.
    NotUsed,
}

/// Whether `cargo semver-checks` runs at all.
pub fn detect() -> SemverChecks {
    match Cmd::cargo().args(["semver-checks", "--version"]).stdout() {
        Ok(v) => SemverChecks::Installed {
            version: v.trim().to_owned(),
        },
        Err(_) => SemverChecks::NotInstalled,
    }
}

/// The level cargo-semver-checks requires for `name` against `baseline`
/// (the registry's `.crate`), `None` when it finds nothing to raise.
pub(crate) fn required_level(
    ws: &Workspace,
    name: &str,
    baseline_crate: &[u8],
) -> Result<Option<Level>, WorkflowError> {
    let dir = crate::work_dir(ws, "semver-checks").join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(io_error("clean", &dir))?;
    }
    std::fs::create_dir_all(&dir).map_err(io_error("create", &dir))?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(baseline_crate));
    archive
        .unpack(&dir)
        .map_err(io_error("unpack the baseline into", &dir))?;
    let root = first_dir(&dir)?;
    let result = Cmd::cargo()
        .args(["semver-checks", "check-release", "--package", name])
        .arg("--manifest-path")
        .arg(ws.root.join("Cargo.toml"))
        .arg("--baseline-root")
        .arg(&root)
        .cwd(&ws.root)
        .output();
    let text = match &result {
        Ok(out) => {
            String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr)
        }
        Err(ProcessError::Failed { stdout, stderr, .. }) => format!("{stdout}{stderr}"),
        Err(e) => {
            return Err(WorkflowError::SemverChecks {
                name: name.to_owned(),
                reason: e.to_string(),
            });
        }
    };
    let level = if text.contains("new major version") {
        Some(Level::Major)
    } else if text.contains("new minor version") {
        Some(Level::Minor)
    } else {
        None
    };
    if result.is_err() && level.is_none() {
        // It failed without naming a level: a build error, say. Reading that
        // as "compatible" is the mistake users report about other tools.
        return Err(WorkflowError::SemverChecks {
            name: name.to_owned(),
            reason: text.trim().lines().last().unwrap_or("no output").to_owned(),
        });
    }
    Ok(level)
}

fn first_dir(dir: &Path) -> Result<std::path::PathBuf, WorkflowError> {
    let entries = std::fs::read_dir(dir).map_err(io_error("read", dir))?;
    for entry in entries.flatten() {
        if entry.path().is_dir() {
            return Ok(entry.path());
        }
    }
    Err(WorkflowError::Io {
        action: "find the package in",
        path: dir.to_owned(),
        source: std::io::Error::other("the baseline archive is empty"),
    })
}
