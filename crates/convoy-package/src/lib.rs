//! Turns workspace members into the exact `.crate` files Convoy verifies and
//! uploads.
//!
//! Packaging runs the user's own cargo (`cargo package --no-verify`), so the
//! files are what `cargo publish` would make. Convoy then changes the
//! packaged manifest in two documented cases only:
//!
//! - **target-registry references**: a plain path dependency on a sibling
//!   crate gets `registry-index = "<target index>"`, so the published crate
//!   depends on the sibling in the registry it is published to, never on a
//!   stranger's crate of the same name on crates.io;
//! - **dev-dependency cycles**: dev-dependencies on sibling crates are
//!   removed, as cargo already does for version-less ones, because they are
//!   what make cycles such as `serde` ↔ `serde_derive` unpublishable and are
//!   never needed by a downstream build.
//!
//! - **sublibraries**: a member without a version that a published member
//!   uses by path is packaged as a *companion* of that parent (its name
//!   and version, `sublibrary-of` in its metadata), and dependents point at
//!   it with `package = "<companion>"` under the same key; cargo itself is
//!   run on temporarily edited manifests for that, see `docs/SUBLIBRARIES.md`.
//!
//! Each change is recorded in [`PackagedCrate::changes`] and shown by
//! `--dry-run`. [`content_differences`] compares a package with the
//! registry's copy through the same rules, so `cargo convoy changed` does
//! not mistake these changes (or the commit id and lock file) for edits.

use std::path::PathBuf;

use convoy_protocol::index::IndexPackage;
use convoy_protocol::publish::NewCrate;

/// One crate, packaged for one registry.
#[derive(Debug, Clone)]
pub struct PackagedCrate {
    /// Package name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The `.crate` file: the bytes that are verified and then uploaded.
    pub path: PathBuf,
    /// sha256 of that file, lower-case hex.
    pub cksum: String,
    /// The publish JSON sent with the upload.
    pub metadata: NewCrate,
    /// The index line the registry will write for it (without `pubtime`).
    /// The verification overlay serves exactly this line.
    pub index_line: IndexPackage,
    /// Sibling crates this one needs at build time (normal and build
    /// dependencies), which must be visible before it is uploaded.
    pub local_deps: Vec<String>,
    /// Manifest changes Convoy made, one sentence each.
    pub changes: Vec<String>,
}

mod companion;
mod compare;
mod error;
mod manifest;
mod metadata;
mod run;
mod tarball;

pub use compare::{CompareError, IGNORED_FILES, content_differences};
pub use run::{
    PackageError, PackageOptions, TargetRegistry, cargo_output, cargo_package, crate_files,
    finalize_packages, package, with_lockfile,
};
