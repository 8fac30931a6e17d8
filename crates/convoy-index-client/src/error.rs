//! The crate's errors: why a sparse index could not be read (one type for
//! the blocking and the async reader, so callers match the same variants
//! either way), why a registry could not be determined, and why a
//! credential provider gave no token. They live apart from the code that
//! raises them so that configuration, credentials and resolution can each
//! use them without importing one another in a circle.

/// Why the index could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// The URL is not `sparse+http(s)://…`.
    #[error("index `{url}` is not a sparse index, expected `sparse+http(s)://…/`")]
    NotSparse {
        /// The URL given.
        url: String,
    },
    /// The HTTP client could not be built from the network settings.
    #[error(transparent)]
    Http(#[from] crate::HttpError),
    /// `--offline`, and cargo's cache does not have it.
    #[error("`{url}` is not in cargo's cache, and `--offline` forbids fetching it")]
    Offline {
        /// What was wanted.
        url: String,
    },
    /// The request did not get an answer (DNS, connection, timeout, TLS).
    #[error("failed to fetch `{url}`")]
    Network {
        /// The URL.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The registry wants a token and none (or a rejected one) was sent.
    #[error(
        "registry at `{url}` requires authentication, pass `--token` or configure one for the registry"
    )]
    Unauthorized {
        /// The URL.
        url: String,
    },
    /// Any other unexpected status.
    #[error("failed to fetch `{url}`, the server answered {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The token cannot be sent in an HTTP header.
    #[error("the token for `{url}` contains characters not allowed in an HTTP header")]
    InvalidToken {
        /// The URL the token was to be sent to.
        url: String,
    },
    /// A download does not hash to the index's `cksum`: it is not the
    /// version the index describes, so it must not be used. Boxed, so that
    /// the error stays small for the many `Result`s that carry it.
    #[error(
        "`{}` has checksum {}, the upstream index says {}",
        .0.url, .0.actual, .0.expected
    )]
    Checksum(Box<ChecksumMismatch>),
    /// `config.json` is not what cargo expects.
    #[error("failed to parse `{url}`")]
    Config {
        /// The URL.
        url: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl IndexError {
    /// Whether retrying may help: no answer at all, 429 or 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network { .. } => true,
            Self::Status { status, .. } => crate::http::is_transient_status(*status),
            Self::NotSparse { .. }
            | Self::Http(_)
            | Self::Offline { .. }
            | Self::Unauthorized { .. }
            | Self::InvalidToken { .. }
            | Self::Checksum(_)
            | Self::Config { .. } => false,
        }
    }
}

/// The details of [`IndexError::Checksum`].
#[derive(Debug)]
#[non_exhaustive]
pub struct ChecksumMismatch {
    /// The download URL.
    pub url: String,
    /// What the bytes hash to.
    pub actual: String,
    /// The index line's `cksum`.
    pub expected: String,
}

/// Why the registry could not be determined.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// Cargo configuration could not be read.
    #[error("failed to read cargo configuration")]
    Config(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// `--registry` named something cargo config does not define.
    #[error(
        "registry `{name}` is not defined in cargo configuration, set `registries.{name}.index` or `{env}`"
    )]
    UnknownRegistry {
        /// The name given.
        name: String,
        /// The environment variable that would define it
        /// (`CARGO_REGISTRIES_<NAME>_INDEX`).
        env: String,
    },
    /// The index is not a sparse one; Convoy only speaks the sparse protocol.
    #[error("index `{index}` is not a sparse index, expected `sparse+http(s)://…/`")]
    NotSparse {
        /// The URL found.
        index: String,
    },
    /// `--registry` and `--index` were both given.
    #[error("`--registry` and `--index` cannot be used together")]
    Conflict,
    /// A `--config` argument is neither `KEY=VALUE` nor a config file.
    #[error("invalid `--config {arg}`: {reason}")]
    CliConfig {
        /// The argument, its value hidden.
        arg: String,
        /// Why.
        reason: String,
    },
    /// A credential provider failed.
    #[error("failed to get a token for registry `{registry}`")]
    Credential {
        /// The registry's name or index URL.
        registry: String,
        /// Why.
        #[source]
        source: CredentialError,
    },
}

/// Why no token could be had from a credential provider.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// The provider process could not be started.
    #[error("failed to run credential provider `{provider}`")]
    Spawn {
        /// The command.
        provider: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The provider exited unsuccessfully, or said something else than a
    /// token.
    #[error("credential provider `{provider}` failed: {reason}")]
    Failed {
        /// The command.
        provider: String,
        /// What went wrong, without the token.
        reason: String,
    },
    /// A `cargo:` provider Convoy does not implement.
    #[error(
        "credential provider `{provider}` is not supported by Convoy; use `cargo:token`, `cargo:token-from-stdout` or an external provider"
    )]
    Unsupported {
        /// The provider.
        provider: String,
    },
}
