//! Choosing what to publish, the way `cargo publish` does.

use std::collections::BTreeSet;

use crate::model::{Member, Publish, Workspace};

/// The packages asked for on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `-p/--package`, repeatable. Empty means "every publishable member".
    pub packages: Vec<String>,
    /// `--exclude`, repeatable; removes members from the selection.
    pub exclude: Vec<String>,
}

/// Why a selection is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// `-p` or `--exclude` named something that is not a member.
    #[error("package `{name}` is not a member of the workspace")]
    NotAMember {
        /// The name given.
        name: String,
    },
    /// `-p` named a member with `publish = false`; silently dropping it would
    /// hide a mistake, so this is an error as in cargo.
    #[error("package `{name}` cannot be published, it has `publish = false`")]
    Unpublishable {
        /// The name given.
        name: String,
    },
    /// Nothing is left to publish.
    #[error("no package to publish, every selected member has `publish = false` or is excluded")]
    Empty,
}

/// The selected members, sorted by name.
///
/// Without `-p`, every member whose `publish` is not `false` is selected
/// (virtual or not: Convoy publishes workspaces, so the root package does not
/// stand for the whole). Members with a `publish` allow-list are selected
/// too; whether the target registry is on the list is a check, not a
/// selection rule, so that the user hears about it. A companion goes
/// wherever its parent goes: `-p parent` selects it, `--exclude parent`
/// drops it.
pub fn select<'ws>(ws: &'ws Workspace, sel: &Selection) -> Result<Vec<&'ws Member>, SelectError> {
    for name in sel.packages.iter().chain(&sel.exclude) {
        if ws.member(name).is_none() {
            return Err(SelectError::NotAMember { name: name.clone() });
        }
    }
    let excluded: BTreeSet<&str> = sel.exclude.iter().map(String::as_str).collect();
    let chosen: Vec<&Member> = if sel.packages.is_empty() {
        ws.members
            .iter()
            .filter(|m| m.publish != Publish::Never)
            .collect()
    } else {
        let wanted: BTreeSet<&str> = sel.packages.iter().map(String::as_str).collect();
        let mut chosen = Vec::new();
        for m in &ws.members {
            let with_parent = m
                .companion
                .as_ref()
                .is_some_and(|c| wanted.contains(c.parent.as_str()));
            if wanted.contains(m.name.as_str()) || with_parent {
                if m.publish == Publish::Never {
                    return Err(SelectError::Unpublishable {
                        name: m.name.clone(),
                    });
                }
                chosen.push(m);
            }
        }
        chosen
    };
    let chosen: Vec<&Member> = chosen
        .into_iter()
        .filter(|m| {
            !excluded.contains(m.name.as_str())
                && !m
                    .companion
                    .as_ref()
                    .is_some_and(|c| excluded.contains(c.parent.as_str()))
        })
        .collect();
    if chosen.is_empty() {
        return Err(SelectError::Empty);
    }
    Ok(chosen)
}
