//! Wire types of the Cargo registry protocol as cargo 1.95 speaks it, plus the
//! validated names that every other Convoy crate shares.
//!
//! This crate is the bottom layer: plain data with `serde` and `FromStr`, and
//! no I/O. Storage, the server and the release engine all depend on it, so a
//! field's meaning is decided once, here.
//!
//! - [`crates_io`]: which URLs and which name mean crates.io.
//! - [`index`]: lines of the sparse index, `config.json`, and the file layout.
//! - [`publish`]: the `PUT /api/v1/crates/new` body and its JSON metadata.
//! - [`api`]: the other Web API requests and responses.
//! - [`name`]: crates.io's crate-name rules and canonical form.
//! - [`scope`]: token scopes and crate globs.
//! - [`staging`]: Convoy's staged-release extension.
//! - [`companion`]: Convoy's companion extension (sublibraries).
#![deny(missing_docs)]

pub mod api;
pub mod companion;
pub mod crates_io;
pub mod index;
pub mod name;
pub mod publish;
pub mod scope;
pub mod staging;

pub use name::{CrateName, InvalidCrateName};
