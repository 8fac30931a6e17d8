//! `plan` + `check` on generated workspaces of growing size, without
//! `cargo metadata` or the network: the model is built in memory and the
//! registry state is given. Run with `cargo bench -p convoy-plan`.
#![allow(clippy::print_stdout, clippy::unwrap_used)]
fn main() {}
