//! Convoy's companion extension: a **companion** is a sublibrary of a
//! workspace published as its own crate, locked to its parent's version
//! and, on a registry that advertises the extension, private to it (hidden
//! from search, owned with the parent, no outside dependents, yanked with
//! the parent). `docs/SUBLIBRARIES.md` has the design.
//!
//! A registry learns that an upload is a companion from the crate's own
//! manifest, `[package.metadata.convoy] sublibrary-of = "PARENT"`, so plain
//! `cargo publish` of a Convoy-packaged companion is understood too.

use serde::{Deserialize, Serialize};

/// Version of the companion extension this crate describes.
pub const COMPANION_VERSION: u32 = 1;

/// The `[package.metadata.convoy]` key naming a companion's parent.
pub const SUBLIBRARY_OF: &str = "sublibrary-of";

/// How a registry advertises the extension in `config.json`
/// (`"convoy-companions": {"v": 1}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompanionAdvert {
    /// Version of the companion extension.
    pub v: u32,
}
