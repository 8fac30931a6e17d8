//! The read side of a Cargo registry, as cargo sees it.
//!
//! - [`resolve_registry`] turns `--registry NAME` / `--index URL` /
//!   `--token` into a [`RegistryTarget`], reading cargo's configuration
//!   (config files, `CARGO_REGISTRIES_<NAME>_INDEX`/`_TOKEN`,
//!   `registry.default`) and `credentials.toml`, so that Convoy targets the
//!   registry `cargo publish` would.
//! - [`SparseIndex`] fetches `config.json` and per-crate index files over
//!   HTTP, with cargo's status-code meanings (404/410/451 = no such crate)
//!   and its retries on 429 and 5xx.
//!
//! Wire types come from `convoy-protocol`; nothing here redefines them. The
//! release engine adds the Web API client next to this reader.

mod resolve;
mod sparse;
pub mod testing;

pub use resolve::{
    CRATES_IO_INDEX, CRATES_IO_NAME, RegistryRequest, RegistryTarget, ResolveError,
    resolve_registry, resolve_registry_with,
};
pub use sparse::{IndexError, SparseIndex};
