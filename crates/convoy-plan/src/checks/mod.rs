//! The preflight checks. Each module holds one family; each function pushes
//! findings at their default severity, and [`crate::CheckReport::new`]
//! applies the workspace's overrides.

mod deps;
mod files;
mod manifest;
mod sublibrary;

use std::collections::BTreeMap;

use convoy_index_client::RegistryTarget;
use convoy_workspace::{Member, Workspace};

use crate::diagnostic::{Code, Diagnostic, Severity};

pub use files::{FileEntry, SNIFF_BYTES};
pub use sublibrary::{CompanionFacts, check_sublibraries};

/// The packaged files of one package, or why they could not be listed.
pub type FileList = Result<Vec<FileEntry>, String>;

/// Everything the checks look at. Gathering it is I/O ([`crate::ops`]);
/// checking it is not.
#[derive(Debug, Clone, Copy)]
pub struct CheckContext<'a> {
    /// The workspace.
    pub workspace: &'a Workspace,
    /// The packages being released.
    pub selected: &'a [&'a Member],
    /// Where they go.
    pub target: &'a RegistryTarget,
    /// `cargo package --list` per package, with sizes. A package missing
    /// from the map is not checked for files.
    pub files: &'a BTreeMap<String, FileList>,
}

/// Runs every check on every selected package.
pub fn run_checks(cx: &CheckContext<'_>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for member in cx.selected {
        let start = out.len();
        manifest::check(member, &mut out);
        if !cx.target.is_crates_io() {
            // The category list is crates.io's rule; another registry takes
            // any slug, so there it is only worth a warning.
            for d in &mut out[start..] {
                if d.code == Code::UnknownCategory {
                    d.severity = Severity::Warning;
                }
            }
        }
        deps::check(cx, member, &mut out);
    }
    out.extend(check_files(cx.selected, cx.files));
    out
}

/// The checks of the packaged files alone, for every selected package that
/// `files` has a list for.
pub fn check_files(selected: &[&Member], files: &BTreeMap<String, FileList>) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for member in selected {
        if let Some(list) = files.get(&member.name) {
            files::check(member, list, &mut out);
        }
    }
    out
}
