//! The workspace as a publisher sees it.
//!
//! [`Workspace`] is built once from `cargo metadata --no-deps` (so workspace
//! inheritance is already resolved by cargo, and no network is needed). It
//! keeps every member with its `publish` setting and every dependency edge with
//! the facts that decide whether and when a crate can be uploaded: kind, path,
//! requirement, registry, rename, target and the optional flag.
//!
//! On top of the model:
//! - [`select`] picks packages the way `cargo publish` does (`-p`,
//!   `--exclude`, `publish = false`).
//! - [`PublishOrder`] orders the selection by normal and build edges only, in
//!   waves. Dev-dependencies never order anything: that is what lets cycles
//!   such as `serde` ↔ `serde_derive` publish at all.
//! - sublibraries (members without a `version` that a published member uses
//!   by path) are resolved to a parent at load time and appear as ordinary
//!   members under their companion name; see [`Companion`].
//! - [`process`] runs the user's cargo, with errors that carry the command,
//!   its exit status and stderr.

mod load;
mod model;
mod order;
pub mod process;
mod select;
mod sublibrary;
pub mod testing;

pub use load::{LoadError, load, package_file_list};
pub use model::{DepKind, DepSource, Dependency, Member, Publish, Workspace};
pub use order::{OrderError, Ordered, PublishOrder, is_ordering_edge};
pub use select::{SelectError, Selection, select};
pub use sublibrary::{
    Companion, SublibraryProblem, companion_description, companion_name, exact as exact_requirement,
};
