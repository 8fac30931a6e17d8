//! Sublibraries and their companions (`docs/SUBLIBRARIES.md`): a helper
//! without a clear parent, a companion name someone else holds on the
//! target, and a target where privacy is only a convention.

use std::collections::BTreeMap;

use convoy_workspace::{Member, SublibraryProblem, Workspace};

use crate::diagnostic::{Code, Diagnostic};

/// What the target registry says about the companions of a release;
/// gathered by [`crate::ops::companion_facts`].
#[derive(Debug, Clone, Default)]
pub struct CompanionFacts {
    /// Whether `config.json` advertises `convoy-companions`; `None` when it
    /// could not be read (then nothing is claimed).
    pub extension: Option<bool>,
    /// Companion names that exist on the target under owners who do not
    /// own the parent, with those owners.
    pub taken: BTreeMap<String, Vec<String>>,
}

/// The diagnostics of the workspace's sublibraries and of the selected
/// companions, for the registry called `registry`.
pub fn check_sublibraries(
    ws: &Workspace,
    selected: &[&Member],
    registry: &str,
    facts: &CompanionFacts,
) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    for problem in &ws.sublibrary_problems {
        match problem {
            SublibraryProblem::Ambiguous { name, users } => out.push(Diagnostic::new(
                Code::SublibraryParentAmbiguous,
                Some(name),
                format!(
                    "sublibrary `{name}` is used by several published members ({}) and none of them is the one the others depend on",
                    users.iter().map(|u| format!("`{u}`")).collect::<Vec<_>>().join(", ")
                ),
                format!(
                    "say which one it ships with: `[package.metadata.convoy] sublibrary-of = \"{}\"` in its manifest",
                    users.first().map(String::as_str).unwrap_or("PARENT")
                ),
            )),
            SublibraryProblem::UnknownParent { name, parent } => out.push(Diagnostic::new(
                Code::SublibraryParentUnknown,
                Some(name),
                format!("`sublibrary-of = \"{parent}\"` of `{name}` names no published workspace member"),
                "name a member that is published (no `publish = false`)",
            )),
        }
    }
    for m in selected {
        let Some(c) = &m.companion else {
            continue;
        };
        if let Some(owners) = facts.taken.get(&m.name) {
            out.push(Diagnostic::new(
                Code::CompanionNameTaken,
                Some(&m.name),
                format!(
                    "companion name `{}` of `{}` already exists on `{registry}` under other owners ({})",
                    m.name,
                    c.workspace_name,
                    owners.iter().map(|o| format!("`{o}`")).collect::<Vec<_>>().join(", ")
                ),
                format!(
                    "choose another name with `[package.metadata.convoy] publish-as = \"…\"` in `{}`'s manifest",
                    c.workspace_name
                ),
            ));
        }
        if facts.extension == Some(false) {
            out.push(Diagnostic::new(
                Code::CompanionPrivacyConvention,
                Some(&m.name),
                format!(
                    "`{}` is published to `{registry}` as an ordinary crate: the registry does not offer companions, so that it is private to `{}` is only a convention there",
                    m.name, c.parent
                ),
                "anyone can depend on it; its description says it is not a public API, and Convoy pins it with `=` from its parent",
            ));
        }
    }
    out
}
