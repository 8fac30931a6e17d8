//! Release planning and preflight checks: what `cargo convoy plan` and
//! `cargo convoy check` compute, and what the release engine starts from.
//!
//! The work is split so that the expensive, impure steps stay at the edge:
//!
//! 1. [`ops::plan`] / [`ops::check`] load the workspace (`cargo metadata`),
//!    resolve the target registry, read its sparse index, list packaged files
//!    (`cargo package --list`) and package already-published versions to
//!    compare checksums.
//! 2. [`build_plan`] and [`run_checks`] are pure functions over those
//!    inputs, linear in the size of the workspace; the benchmark measures
//!    them.
//! 3. [`render`] turns a [`Plan`] or a [`CheckReport`] into cargo-style text,
//!    stable JSON, Graphviz dot or Mermaid.
//!
//! Every finding is a [`Diagnostic`] with a stable kebab-case [`Code`], a
//! [`Severity`] that `[workspace.metadata.convoy.lints]` can change, the
//! package, a one-line message and a hint. `docs/PLANNING.md` lists them.

mod checks;
mod diagnostic;
pub mod ops;
mod plan;
pub mod render;

pub use checks::{
    CheckContext, CompanionFacts, FileEntry, FileList, check_files, check_sublibraries, run_checks,
};
pub use diagnostic::{CheckReport, Code, Diagnostic, LintConfig, Severity};
pub use plan::{
    Action, Content, Plan, PlannedPackage, RegistryInfo, RegistryState, RegistryView, build_plan,
};
