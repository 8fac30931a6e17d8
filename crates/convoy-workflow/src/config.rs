//! `[workspace.metadata.convoy]` keys of the release workflow.

use semver::Version;
use serde::Serialize;

use crate::WorkflowError;

/// The default tag: one per crate, as release-plz and cargo-release name
/// them in workspaces.
pub const DEFAULT_TAG_FORMAT: &str = "{name}-v{version}";
/// The default changelog, relative to each crate's directory.
pub const DEFAULT_CHANGELOG: &str = "CHANGELOG.md";

/// What a member gets when only its dependencies moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DependentBump {
    /// At least a patch release, so the registry gets the new manifest.
    Patch,
    /// The requirement is updated in place and the version stays; the
    /// change reaches the registry with the member's next release.
    None,
}

/// The workflow's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkflowConfig {
    /// `tag-format`: `{name}` and `{version}` are replaced.
    pub tag_format: String,
    /// `changelog`: the changelog's path relative to each crate.
    pub changelog: String,
    /// `dependent-bump`.
    pub dependent_bump: DependentBump,
}

impl Default for WorkflowConfig {
    fn default() -> Self {
        Self {
            tag_format: DEFAULT_TAG_FORMAT.to_owned(),
            changelog: DEFAULT_CHANGELOG.to_owned(),
            dependent_bump: DependentBump::Patch,
        }
    }
}

impl WorkflowConfig {
    /// Reads the keys from `[workspace.metadata.convoy]` (as `cargo
    /// metadata` reports it); missing keys take their defaults, wrong ones
    /// are an error rather than a silent default.
    pub fn from_metadata(convoy: &serde_json::Value) -> Result<Self, WorkflowError> {
        let mut config = Self::default();
        let bad = |key: &str, expected: &str| WorkflowError::Config {
            reason: format!("`[workspace.metadata.convoy] {key}` must be {expected}"),
        };
        if let Some(v) = convoy.get("tag-format") {
            config.tag_format = v
                .as_str()
                .ok_or_else(|| bad("tag-format", "a string"))?
                .to_owned();
            validate_tag_format(&config.tag_format)?;
        }
        if let Some(v) = convoy.get("changelog") {
            config.changelog = v
                .as_str()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| bad("changelog", "a non-empty path"))?
                .to_owned();
        }
        if let Some(v) = convoy.get("dependent-bump") {
            config.dependent_bump = match v.as_str() {
                Some("patch") => DependentBump::Patch,
                Some("none") => DependentBump::None,
                _ => return Err(bad("dependent-bump", "\"patch\" or \"none\"")),
            };
        }
        Ok(config)
    }
}

/// A tag format must name the version, or every release would get the
/// same tag.
pub fn validate_tag_format(format: &str) -> Result<(), WorkflowError> {
    if format.contains("{version}") {
        Ok(())
    } else {
        Err(WorkflowError::Config {
            reason: format!("the tag format `{format}` has no `{{version}}`"),
        })
    }
}

/// The tag of `name` at `version` under `format`.
pub fn tag_name(format: &str, name: &str, version: &str) -> String {
    format.replace("{name}", name).replace("{version}", version)
}

/// The version a tag of `name` names under `format`, or `None` when the
/// tag is not one of `name`'s.
pub fn tag_version(format: &str, name: &str, tag: &str) -> Option<Version> {
    let format = format.replace("{name}", name);
    let (before, after) = format.split_once("{version}")?;
    let version = tag.strip_prefix(before)?.strip_suffix(after)?;
    Version::parse(version).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        let t = tag_name(DEFAULT_TAG_FORMAT, "wf-base", "0.4.0");
        assert_eq!(t, "wf-base-v0.4.0");
        assert_eq!(
            tag_version(DEFAULT_TAG_FORMAT, "wf-base", &t),
            Some(Version::new(0, 4, 0))
        );
        // `wf` must not claim `wf-base`'s tags.
        assert_eq!(tag_version(DEFAULT_TAG_FORMAT, "wf", &t), None);
        assert_eq!(
            tag_version("v{version}", "x", "v1.0.0-rc.1")
                .unwrap()
                .to_string(),
            "1.0.0-rc.1"
        );
    }

    #[test]
    fn metadata_keys() {
        let c = WorkflowConfig::from_metadata(&serde_json::json!({
            "tag-format": "{name}@{version}",
            "changelog": "CHANGES.md",
            "dependent-bump": "none",
        }))
        .unwrap();
        assert_eq!(c.tag_format, "{name}@{version}");
        assert_eq!(c.changelog, "CHANGES.md");
        assert_eq!(c.dependent_bump, DependentBump::None);
        assert_eq!(
            WorkflowConfig::from_metadata(&serde_json::Value::Null).unwrap(),
            WorkflowConfig::default()
        );
        assert!(
            WorkflowConfig::from_metadata(&serde_json::json!({"dependent-bump": "minor"})).is_err()
        );
        assert!(
            WorkflowConfig::from_metadata(&serde_json::json!({"tag-format": "{name}"})).is_err()
        );
    }
}
