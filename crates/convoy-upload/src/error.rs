//! Why an upload failed.
//!
//! Messages follow cargo's style: lowercase, no trailing period, values in
//! backticks, the reason after a comma. The report carries the whole cause
//! chain as one string (see [`describe`]).

use std::path::PathBuf;

use convoy_index_client::IndexError;
use std::time::Duration;

/// Why one crate (or the whole run) could not be uploaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The registry has this version already, but not these bytes. Never
    /// uploaded: a registry never replaces a version, and a user expecting
    /// the local content would silently get the other one.
    #[error(
        "`{name}@{version}` is already on `{registry}` with different content (cksum {remote}, local {local})"
    )]
    ContentMismatch {
        /// Crate name.
        name: String,
        /// Local version.
        version: String,
        /// Registry label.
        registry: String,
        /// The index's cksum.
        remote: String,
        /// The local `.crate`'s cksum.
        local: String,
    },
    /// A 4xx other than 429, or a 2xx with an `errors` body: retrying the
    /// same bytes would get the same answer.
    #[error("`{registry}` rejected `{name}@{version}` with status {status}, {detail}")]
    Rejected {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Registry label.
        registry: String,
        /// HTTP status.
        status: u16,
        /// The registry's `detail`s, or the start of its body.
        detail: String,
    },
    /// The registry asked to wait longer than
    /// [`UploadOptions::max_rate_limit_wait`](crate::UploadOptions) allows.
    #[error(
        "`{registry}` is rate-limiting uploads of `{name}@{version}` for {}s more than allowed, {detail}",
        after.as_secs()
    )]
    RateLimited {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Registry label.
        registry: String,
        /// The wait that was refused.
        after: Duration,
        /// The registry's message.
        detail: String,
    },
    /// Transient failures outlasted the retries.
    #[error(
        "failed to upload `{name}@{version}` to `{registry}` after {attempts} attempts, {last}"
    )]
    GaveUp {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Registry label.
        registry: String,
        /// `PUT`s sent.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// Uploaded, but the index did not show it in time; dependents would
    /// fail to resolve it, so they are not uploaded.
    #[error(
        "`{name}@{version}` was uploaded but did not appear in the index of `{registry}` within {}s",
        timeout.as_secs_f64()
    )]
    NotVisible {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// Registry label.
        registry: String,
        /// The configured timeout.
        timeout: Duration,
    },
    /// The `.crate` file could not be read.
    #[error("failed to read `{}`", path.display())]
    ReadCrate {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The `.crate` file is not the one that was packaged and verified.
    #[error(
        "`{}` changed since it was packaged (cksum {actual}, expected {expected})",
        path.display()
    )]
    CrateChanged {
        /// The file.
        path: PathBuf,
        /// What the file hashes to now.
        actual: String,
        /// What packaging recorded.
        expected: String,
    },
    /// The publish metadata could not be serialized.
    #[error("failed to encode the publish metadata of `{name}@{version}`")]
    Metadata {
        /// Crate name.
        name: String,
        /// Version.
        version: String,
        /// The serializer's error.
        #[source]
        source: serde_json::Error,
    },
    /// The crate's index file could not be read, so whether it is already
    /// published is unknown; uploading blind could hide a content mismatch.
    #[error("failed to read the index entry of `{name}` on `{registry}`")]
    Index {
        /// Crate name.
        name: String,
        /// Registry label.
        registry: String,
        /// What went wrong.
        #[source]
        source: IndexError,
    },
    /// `config.json` could not be read.
    #[error("failed to read the index configuration of `{registry}`")]
    Config {
        /// Registry label.
        registry: String,
        /// What went wrong.
        #[source]
        source: IndexError,
    },
    /// `config.json` has no `api` key, so the registry cannot be published
    /// to.
    #[error("registry `{registry}` has no Web API (`api` is missing from its `config.json`)")]
    NoApi {
        /// Registry label.
        registry: String,
    },
    /// The index URL is not `sparse+http(s)://…`.
    #[error("index `{index}` is not a sparse index, expected `sparse+http(s)://…/`")]
    NotSparse {
        /// The URL given.
        index: String,
    },
    /// The token cannot be sent in an HTTP header.
    #[error(
        "the token for registry `{registry}` contains characters not allowed in an HTTP header"
    )]
    InvalidToken {
        /// Registry label.
        registry: String,
    },
    /// No token was configured for a run that uploads.
    #[error(
        "no token found for registry `{registry}`, pass `--token` or run `cargo login --registry <name>`"
    )]
    NoToken {
        /// Registry label.
        registry: String,
    },
    /// The HTTP client could not be built from the network settings
    /// (`http.cainfo`, a proxy, TLS).
    #[error(transparent)]
    Client(#[from] convoy_index_client::HttpError),
    /// The same crate name was listed twice.
    #[error("`{name}` is listed more than once in the upload")]
    Duplicate {
        /// Crate name.
        name: String,
    },
    /// The local dependency edges form a cycle, so no order exists.
    #[error("`{name}` is part of, or depends on, a dependency cycle among {cycle}")]
    Cycle {
        /// Crate name.
        name: String,
        /// The crates left unordered, in backticks.
        cycle: String,
    },
    /// A task of the run ended abnormally (a bug).
    #[error("internal error while uploading `{name}`, {detail}")]
    Internal {
        /// Crate name.
        name: String,
        /// What happened.
        detail: String,
    },
}

/// An error and its causes as one line, `outer: cause: root`, for the
/// report and the CLI's JSON document.
pub use convoy_index_client::describe;
