//! The companion rules, independent of any backend (see
//! `docs/SUBLIBRARIES.md`). A companion is a crate whose manifest says
//! `[package.metadata.convoy] sublibrary-of = "PARENT"`: a private helper
//! published with its parent. A backend gathers the facts (who the parent
//! is, who owns it) and these functions decide.

use convoy_protocol::name::canonical_name;

use crate::StoreError;

/// Whether `dependent` may depend on a companion of `parent`: the parent
/// itself, another companion of the same parent, or any crate published by
/// one of the parent's owners (a second crate of the same family). Anyone
/// else is an outsider.
pub fn dependency_allowed(
    dependent: &str,
    dependent_parent: Option<&str>,
    parent: &str,
    publisher_owns_parent: bool,
) -> bool {
    let parent = canonical_name(parent);
    canonical_name(dependent) == parent
        || dependent_parent.is_some_and(|p| canonical_name(p) == parent)
        || publisher_owns_parent
}

/// The refusal for an outsider's dependency on a companion; it names the
/// parent, which is what the outsider should depend on instead.
pub fn dependency_refused(dependency: &str, parent: &str) -> StoreError {
    StoreError::CompanionDependency {
        dependency: dependency.to_owned(),
        parent: parent.to_owned(),
    }
}

/// A new version of an existing crate must keep its kind: a companion stays
/// the companion of one parent, and an ordinary crate with versions cannot
/// turn into one (its users would lose it).
pub fn check_declaration(
    name: &str,
    recorded: Option<&str>,
    declared: Option<&str>,
    has_versions: bool,
) -> Result<(), StoreError> {
    let mismatch = |reason: String| StoreError::CompanionMismatch {
        name: name.to_owned(),
        reason,
    };
    match (recorded, declared) {
        (Some(r), Some(d)) if canonical_name(r) != canonical_name(d) => Err(mismatch(format!(
            "it is a companion of `{r}`, not of `{d}`"
        ))),
        (Some(r), None) => Err(mismatch(format!(
            "it is a companion of `{r}`; its manifest must say `sublibrary-of = \"{r}\"`"
        ))),
        (None, Some(d)) if has_versions => Err(mismatch(format!(
            "it is an ordinary crate and cannot become a companion of `{d}`; publish the companion under another name (`publish-as`)"
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_family_depends_on_a_companion() {
        assert!(dependency_allowed("app", None, "app", false));
        assert!(dependency_allowed("app-macros", Some("app"), "app", false));
        assert!(dependency_allowed("app-cli", None, "app", true));
        assert!(!dependency_allowed("outsider", None, "app", false));
        assert!(!dependency_allowed(
            "other-helper",
            Some("other"),
            "app",
            false
        ));
    }

    #[test]
    fn a_crate_keeps_its_kind() {
        assert!(check_declaration("h", None, None, true).is_ok());
        assert!(check_declaration("h", Some("app"), Some("app"), true).is_ok());
        assert!(check_declaration("h", None, Some("app"), false).is_ok());
        assert!(check_declaration("h", Some("app"), Some("other"), true).is_err());
        assert!(check_declaration("h", Some("app"), None, true).is_err());
        assert!(check_declaration("h", None, Some("app"), true).is_err());
    }
}
