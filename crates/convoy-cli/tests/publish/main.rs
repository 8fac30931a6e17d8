//! `cargo convoy publish` end to end: generated workspaces, the real
//! `cargo-convoy` binary, the real cargo, and the Convoy registry on
//! 127.0.0.1. Modules by feature area:
//!
//! - `shapes`: every workspace shape publishes and a consumer builds;
//! - `failures`: verification failures, resume after a failure, 429;
//! - `registries`: several registries, dry runs and the JSON result;
//! - `sublibraries`: private helpers shipped as companions of their parent.
#![allow(clippy::unwrap_used, clippy::print_stderr, clippy::print_stdout)]

#[path = "../common/mod.rs"]
mod common;
mod failures;
mod registries;
mod shapes;
mod sublibraries;

pub(crate) use common::{BIN, Fixture, consume, index_lines, lib_rs, member};
