//! Verifies packaged `.crate` files before anything is uploaded.
//!
//! Every crate of a release is built from its packaged form, against the
//! packaged form of its local dependencies, resolved the way a downstream
//! user will resolve them once everything is published. Two pieces do it:
//!
//! - [`Overlay`]: an in-process sparse registry on 127.0.0.1 that serves
//!   the packaged local crates layered over the target registry (upstream
//!   lines for versions that do not exist locally, local index lines and
//!   `.crate` bytes for those that do).
//! - [`verify`]: for each package, in publish order, unpacks the `.crate`
//!   into its own workspace and runs the user's cargo (`check`, `build`,
//!   optionally `test`) with `--config` arguments that **replace the target
//!   registry's source with the overlay** ([`Overlay::cargo_config_args`]).
//!
//! Source replacement is what gives local packages the target registry's
//! identity: lock files record `source = "<target index>"` and the sha256 of
//! the exact bytes that will be uploaded, and cargo's package ids are the
//! ones a downstream build will have. The overlay never writes upstream.
//!
//! Every package is built as its users build it, alone, so features are
//! **not unified across packages**: a crate that compiles only because a
//! sibling turns on a feature of a shared dependency fails here, as it
//! would for its users. Libraries share one cargo invocation only where
//! cargo's own resolution shows that their graphs are the same together as
//! alone (`batch`). The packages share one target directory, so identical
//! dependency builds are done once per run, and the overlay keeps its URL
//! between runs, so a rerun reuses them.
//!
//! Nothing here prints; progress goes to an observer as [`VerifyEvent`]s.
//! `docs/VERIFY.md` describes the design and its measured cost.

mod batch;
mod cache;
mod consumer;
mod options;
mod overlay;
mod run;

use std::path::PathBuf;

pub use options::{Step, Strategy, VerifyEvent, VerifyMode, VerifyOptions};
pub use overlay::{OVERLAY_SOURCE, Overlay, TARGET_SOURCE, Upstream};
pub use run::{generate_lockfile, verify};

/// Why verification did not pass.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The target index is not a sparse index the overlay can read.
    #[error("index `{url}` is not a sparse index, expected `sparse+http(s)://…/`")]
    NotSparse {
        /// The URL given.
        url: String,
    },
    /// The overlay server could not start.
    #[error("failed to start the verification overlay on 127.0.0.1")]
    OverlayStart {
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The overlay was given a current-thread runtime. Such a runtime runs
    /// only inside `block_on`, and the overlay's callers block in cargo
    /// instead, so cargo's requests would never be answered.
    #[error("the verification overlay needs a multi-thread tokio runtime")]
    CurrentThreadRuntime,
    /// A package's index line could not be serialized.
    #[error("failed to serialize the index line of `{name} v{version}`")]
    IndexLine {
        /// Package name.
        name: String,
        /// Version.
        version: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// A file operation on a package's `.crate` or unpacked copy failed.
    #[error("failed to verify `{name} v{version}`, could not {action} `{}`", path.display())]
    Io {
        /// Package name.
        name: String,
        /// Version.
        version: String,
        /// What was being done (`unpack`, `read`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The `.crate` holds an entry outside `<name>-<version>/`.
    #[error(
        "failed to verify `{name} v{version}`, `{}` has entry `{entry}` outside `{name}-{version}/`",
        path.display()
    )]
    BadArchive {
        /// Package name.
        name: String,
        /// Version.
        version: String,
        /// The `.crate` file.
        path: PathBuf,
        /// The offending entry.
        entry: String,
    },
    /// Cargo could not be started at all.
    #[error("could not run `{command}`")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Cargo ran and failed: the package does not build from its packaged
    /// form (or its tests fail). Boxed because it carries whole outputs.
    #[error("{0}")]
    Cargo(Box<CargoFailure>),
    /// A build script changed the unpacked sources, which cargo's own
    /// verify also refuses: a published crate must build from what it ships.
    #[error(
        "failed to verify `{name} v{version}`, the build modified its packaged sources: {}\nhelp: build scripts should not modify anything outside of `OUT_DIR`",
        files.join(", ")
    )]
    SourcesModified {
        /// Package name.
        name: String,
        /// Version.
        version: String,
        /// Files added, removed or changed, relative to the package root.
        files: Vec<String>,
    },
}

impl VerifyError {
    /// A file operation on `pkg`'s files failed.
    pub(crate) fn io(
        pkg: &convoy_package::PackagedCrate,
        action: &'static str,
        path: &std::path::Path,
        source: std::io::Error,
    ) -> VerifyError {
        VerifyError::Io {
            name: pkg.name.clone(),
            version: pkg.version.clone(),
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// The package the error is about, when it is about one.
    pub fn package(&self) -> Option<(&str, &str)> {
        match self {
            VerifyError::IndexLine { name, version, .. }
            | VerifyError::Io { name, version, .. }
            | VerifyError::BadArchive { name, version, .. }
            | VerifyError::SourcesModified { name, version, .. } => Some((name, version)),
            VerifyError::Cargo(f) => Some((&f.name, &f.version)),
            _ => None,
        }
    }
}

/// A cargo invocation that failed while verifying a package.
#[derive(Debug, Clone)]
pub struct CargoFailure {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Which cargo command failed.
    pub step: Step,
    /// The full command line.
    pub command: String,
    /// How it exited.
    pub status: String,
    /// What cargo printed on stdout: the test harness's report for
    /// [`Step::Test`], usually empty otherwise.
    pub stdout: String,
    /// What cargo and the compiler printed on stderr.
    pub stderr: String,
    /// Failures the overlay met reading the target registry, which cargo
    /// itself only saw as 502 answers.
    pub upstream: Vec<String>,
}

impl std::fmt::Display for CargoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "failed to verify `{} v{}`, `{}` failed ({}){}\n--- stderr\n{}{}",
            self.name,
            self.version,
            self.step,
            self.status,
            stdout_note(&self.stdout),
            self.stderr.trim_end(),
            upstream_note(&self.upstream)
        )
    }
}

fn stdout_note(stdout: &str) -> String {
    let stdout = stdout.trim_end();
    if stdout.is_empty() {
        String::new()
    } else {
        format!("\n--- stdout\n{stdout}")
    }
}

fn upstream_note(upstream: &[String]) -> String {
    if upstream.is_empty() {
        return String::new();
    }
    let mut note = String::from("\n--- target registry errors seen by the overlay");
    for line in upstream {
        note.push('\n');
        note.push_str(line);
    }
    note
}
