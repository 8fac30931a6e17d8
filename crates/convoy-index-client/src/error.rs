//! Why a sparse index could not be read: one error type for the blocking
//! and the async reader, so callers match the same variants either way.

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
