//! The read side of a Cargo registry, as cargo sees it.
//!
//! - [`CargoConfig`] reads cargo's configuration once, with cargo's
//!   precedence (`--config`, `CARGO_*` variables, config files), and holds
//!   the [`HttpConfig`] every HTTP client of Convoy is built from: proxies,
//!   the platform trust store plus `http.cainfo`, `http.timeout`,
//!   `net.retry`, `http.user-agent`.
//! - [`CargoConfig::resolve`] (or [`resolve_registry`]) turns `--registry
//!   NAME` / `--index URL` / `--token` into a [`RegistryTarget`], with the
//!   token from cargo's credential-provider chain, so that Convoy targets
//!   the registry `cargo publish` would, as that user.
//! - [`AsyncSparseIndex`] fetches `config.json` and per-crate index files
//!   over HTTP, with cargo's status-code meanings (404/410/451 = no such
//!   crate) and its retries on 429, 5xx and no answer, with checked
//!   downloads and an option to bypass caches; [`SparseIndex`] is the same
//!   reader for synchronous callers, each read a `block_on` on the runtime
//!   the caller hands it (Convoy builds no runtime of its own: the CLI owns
//!   the one runtime of the process).
//!
//! Wire types come from `convoy-protocol`; nothing here redefines them. The
//! release engine adds the Web API client next to this reader.

mod async_sparse;
mod cache;
mod config;
mod credential;
mod error;
mod http;
mod resolve;
mod sparse;
pub mod testing;

pub use async_sparse::{AsyncSparseIndex, AsyncSparseOptions, Fetch};
pub use config::{CargoConfig, ConfigOptions};
pub use error::{ChecksumMismatch, CredentialError, IndexError, ResolveError};
pub use http::{
    DEFAULT_USER_AGENT, HttpConfig, HttpError, RetryPolicy, backoff, describe, parse_retry_after,
    retry_after_header, sparse_http_base,
};
pub use resolve::{RegistryRequest, RegistryTarget, resolve_registry, resolve_registry_with};
pub use sparse::SparseIndex;
