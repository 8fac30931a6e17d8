//! The read side of a Cargo registry, as cargo sees it.
//!
//! - [`resolve_registry`] turns `--registry NAME` / `--index URL` /
//!   `--token` into a [`RegistryTarget`], reading cargo's configuration
//!   (config files, `CARGO_REGISTRIES_<NAME>_INDEX`/`_TOKEN`,
//!   `registry.default`) and `credentials.toml`, so that Convoy targets the
//!   registry `cargo publish` would.
//! - [`SparseIndex`] fetches `config.json` and per-crate index files over
//!   HTTP, with cargo's status-code meanings (404/410/451 = no such crate)
//!   and its retries on 429 and 5xx; [`AsyncSparseIndex`] is the same
//!   reader for async callers (the verification overlay, the upload stage),
//!   with checked downloads and an option to bypass caches.
//!
//! Wire types come from `convoy-protocol`; nothing here redefines them. The
//! release engine adds the Web API client next to this reader.

mod async_sparse;
mod error;
mod http;
mod resolve;
mod sparse;
pub mod testing;

pub use async_sparse::{AsyncSparseIndex, AsyncSparseOptions, Fetch};
pub use error::{ChecksumMismatch, IndexError};
pub use http::{
    RetryPolicy, backoff, describe, parse_retry_after, retry_after_header, sparse_http_base,
};
pub use resolve::{
    CRATES_IO_INDEX, CRATES_IO_NAME, RegistryRequest, RegistryTarget, ResolveError,
    resolve_registry, resolve_registry_with,
};
pub use sparse::SparseIndex;
