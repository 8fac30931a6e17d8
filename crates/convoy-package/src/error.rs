//! Why packaging failed: one error type for the whole crate, below every
//! module that raises it.

use std::path::PathBuf;

use convoy_workspace::process::ProcessError;

/// Why packaging failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// `cargo package` failed.
    #[error("failed to package the selected crates")]
    Cargo(#[source] ProcessError),
    /// Reading or writing a file failed.
    #[error("failed to {action} `{}`", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Uncommitted changes, and no `--allow-dirty`. Raised by Convoy when it
    /// must pass `--allow-dirty` to cargo itself (sublibraries).
    #[error(
        "{} files in the working directory contain changes that were not yet committed into git: {}; commit them or pass `--allow-dirty`",
        files.len(),
        files.join(", ")
    )]
    Dirty {
        /// The files, relative to the workspace root.
        files: Vec<String>,
    },
    /// The `.crate` cargo made could not be read back.
    #[error("cargo's package `{}` is not what Convoy expected: {reason}", path.display())]
    Unexpected {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}
